using System.Collections.Immutable;

namespace FenceCore.Benchmarks.Peers;

/// <summary>
/// A reservation on <see cref="ImmutableArray{T}"/> swapped with
/// <see cref="ImmutableInterlocked.Update{T, TArg}(ref ImmutableArray{T}, Func{ImmutableArray{T}, TArg, ImmutableArray{T}}, TArg)"/>:
/// the BCL's copy-on-write primitive. Writers follow the kernel's slot rule (<see cref="KernelRules"/>):
/// <c>SetItem</c> or <c>Add</c>, one new array per attempt.
/// </summary>
public sealed class ImmutableReservation
{
    /// <summary>Replaced only by <c>ImmutableInterlocked.Update</c> (CAS on the inner array); read by a
    /// plain read of the one-reference struct (atomic; the GC-published array is immutable).</summary>
    private ImmutableArray<ReservationEntry> _entries = [];

    public void AddFence(Fence fence, FenceUsage usage) =>
        ImmutableInterlocked.Update(
            ref _entries,
            static (old, arg) =>
            {
                int slot = KernelRules.FindSlot(old.AsSpan(), arg.Fence, arg.Usage);
                return slot >= 0 ? old.SetItem(slot, arg) : old.Add(arg);
            },
            new ReservationEntry(fence, usage));

    public bool TestSignaled(FenceUsage usage)
    {
        foreach (ReservationEntry e in _entries)
        {
            if (e.Usage <= usage && !e.Fence.IsSignaled)
            {
                return false;
            }
        }

        return true;
    }

    public Fence[] GetFences(FenceUsage usage)
    {
        ImmutableArray<ReservationEntry> snapshot = _entries;
        var result = new List<Fence>(snapshot.Length);
        foreach (ReservationEntry e in snapshot)
        {
            if (e.Usage <= usage && !e.Fence.IsSignaled)
            {
                result.Add(e.Fence);
            }
        }

        return [.. result];
    }
}
