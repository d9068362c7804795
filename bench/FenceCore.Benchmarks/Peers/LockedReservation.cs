namespace FenceCore.Benchmarks.Peers;

/// <summary>
/// A reservation as a .NET developer would first write it: a <see cref="List{T}"/> guarded by
/// <c>lock</c>, readers and writers alike. Writers follow the kernel's slot rule
/// (<see cref="KernelRules"/>) and replace in place, so steady-state adds allocate nothing.
/// </summary>
public sealed class LockedReservation
{
    private readonly Lock _gate = new();

    /// <summary>Read and written only under <see cref="_gate"/>.</summary>
    private readonly List<ReservationEntry> _entries = [];

    public void AddFence(Fence fence, FenceUsage usage)
    {
        lock (_gate)
        {
            int slot = KernelRules.FindSlot(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_entries), fence, usage);
            if (slot >= 0)
            {
                _entries[slot] = new ReservationEntry(fence, usage);
            }
            else
            {
                _entries.Add(new ReservationEntry(fence, usage));
            }
        }
    }

    public bool TestSignaled(FenceUsage usage)
    {
        lock (_gate)
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
    }

    public Fence[] GetFences(FenceUsage usage)
    {
        lock (_gate)
        {
            var result = new List<Fence>(_entries.Count);
            foreach (ReservationEntry e in _entries)
            {
                if (e.Usage <= usage && !e.Fence.IsSignaled)
                {
                    result.Add(e.Fence);
                }
            }

            return [.. result];
        }
    }
}
