namespace FenceCore.VirtualGpu;

/// <summary>
/// A CPU access: it begins only when nothing its direction must wait for is pending. Fences found
/// pending are waited for and the reservation is read again, because a move (an eviction and a move
/// back) may have been added meanwhile; the access happens in the same step as the final check.
/// </summary>
internal sealed class CpuAccessCallback(Gpu gpu, GpuBuffer buffer, bool write, Action<GpuBuffer>? onAccess) : FenceCallback
{
    protected override void Invoke(Fence fence) => gpu.Dispatcher.Post(static s => ((CpuAccessCallback)s!).Run(), this);

    public void Run()
    {
        Fence? wait = buffer.Reservation.GetSingleton(FenceUsages.WaitLevelFor(write));
        if (wait is not null && wait.AddCallback(this))
        {
            return; // still busy: try again when it signals
        }

        if (buffer.StorageFence is { } move && !move.Poll())
        {
            gpu.Leaks.RecordLeak(null, buffer);
        }

        gpu.Hub.Raise(new GpuEvent(GpuEventKind.CpuAccess, gpu.NowNs, null, null, 0, buffer));
        try
        {
            onAccess?.Invoke(buffer);
        }
#pragma warning disable CA1031 // the caller's action is a consumer: its exception must not reach the scheduler
        catch (Exception ex)
#pragma warning restore CA1031
        {
            gpu.ReportConsumerFailure(ex);
        }
    }
}
