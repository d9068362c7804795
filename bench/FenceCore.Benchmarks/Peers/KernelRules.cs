namespace FenceCore.Benchmarks.Peers;

/// <summary>
/// The slot rule of <c>dma_resv_add_fence</c>, shared by the peer reservations so they do the same work
/// as <see cref="Reservation"/>: reuse the first slot whose fence has signalled, or has the same context,
/// an equal-or-stronger usage and is not later than the new fence; otherwise append.
/// </summary>
internal static class KernelRules
{
    public static int FindSlot(ReadOnlySpan<ReservationEntry> entries, Fence fence, FenceUsage usage)
    {
        for (int i = 0; i < entries.Length; i++)
        {
            Fence existing = entries[i].Fence;
            if (existing.IsSignaled ||
                (existing.Context == fence.Context && entries[i].Usage >= usage && Fence.IsLaterOrSame(fence, existing)))
            {
                return i;
            }
        }

        return -1;
    }
}
