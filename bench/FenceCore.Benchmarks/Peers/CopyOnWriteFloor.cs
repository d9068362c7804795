namespace FenceCore.Benchmarks.Peers;

/// <summary>
/// The hand-written copy-on-write floor for a reservation add: read the array, copy it with one slot
/// replaced (or one appended), publish by compare-and-swap, retry on conflict. It has the shape of
/// Disruptor-net's <c>SequenceGroups.AddSequences</c> and none of the kernel's rules beyond "one slot
/// per context": no usage levels, no "never replace a newer point" check, no pruning of signalled
/// entries. <see cref="Reservation.AddFence(Fence, FenceUsage)"/> is measured against it.
/// </summary>
public sealed class CopyOnWriteFloor
{
    /// <summary>Replaced only by CAS; read with Volatile.Read; never mutated after it is published.</summary>
    private ReservationEntry[] _entries = [];

    public void AddFence(Fence fence, FenceUsage usage)
    {
        while (true)
        {
            ReservationEntry[] old = Volatile.Read(ref _entries);
            int slot = -1;
            for (int i = 0; i < old.Length; i++)
            {
                if (old[i].Fence.Context == fence.Context)
                {
                    slot = i;
                    break;
                }
            }

            // A new array and a span copy (Array.Clone is a slower, general member-wise copy).
            var updated = new ReservationEntry[slot >= 0 ? old.Length : old.Length + 1];
            old.AsSpan().CopyTo(updated);
            updated[slot >= 0 ? slot : old.Length] = new ReservationEntry(fence, usage);

            // The CAS is the linearization point of the add.
            if (ReferenceEquals(Interlocked.CompareExchange(ref _entries, updated, old), old))
            {
                return;
            }
        }
    }

    /// <summary>The read floor: one acquire load of the array and a scan.</summary>
    public bool TestSignaled(FenceUsage usage)
    {
        foreach (ReservationEntry e in Volatile.Read(ref _entries))
        {
            if (e.Usage <= usage && !e.Fence.IsSignaled)
            {
                return false;
            }
        }

        return true;
    }
}
