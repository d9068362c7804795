namespace FenceCore.Benchmarks.Peers;

/// <summary>
/// The 2021 kernel's <c>dma_resv</c> (before v5.19): fixed, pre-reserved slots written in place by
/// writers that hold the object's lock and bump a sequence count around the write (odd while writing);
/// readers take no lock but retry when the count was odd or changed under them
/// (<c>read_seqcount_begin</c>/<c>read_seqcount_retry</c>). Writers follow the kernel's slot rule.
/// </summary>
public sealed class SeqCountReservation
{
    private const int Capacity = 16; // reserved up front, as dma_resv_reserve_fences does

    /// <summary>Serializes writers (the kernel's ww_mutex). Readers never take it.</summary>
    private readonly Lock _writer = new();

    /// <summary>Slot i's fence: written in place by the lock holder inside an odd count; read with Volatile.Read.</summary>
    private readonly Fence?[] _fences = new Fence?[Capacity];

    /// <summary>Slot i's usage, as <see cref="_fences"/>.</summary>
    private readonly int[] _usages = new int[Capacity];

    /// <summary>Entries in use; written by the lock holder inside an odd count; read with Volatile.Read.</summary>
    private int _count;

    /// <summary>The sequence count: odd while a writer is inside. Bumped by the lock holder only.</summary>
    private int _sequence;

    public void AddFence(Fence fence, FenceUsage usage)
    {
        lock (_writer)
        {
            int slot = -1;
            for (int i = 0; i < _count; i++)
            {
                Fence existing = _fences[i]!;
                if (existing.IsSignaled ||
                    (existing.Context == fence.Context && _usages[i] >= (int)usage && Fence.IsLaterOrSame(fence, existing)))
                {
                    slot = i;
                    break;
                }
            }

            // write_seqcount_begin: the full fence orders "count is odd" before the slot stores.
            Interlocked.Increment(ref _sequence);
            if (slot < 0)
            {
                slot = _count;
                Volatile.Write(ref _count, _count + 1);
            }

            Volatile.Write(ref _fences[slot], fence);
            Volatile.Write(ref _usages[slot], (int)usage);

            // write_seqcount_end: release, the slot stores precede "count is even again".
            Volatile.Write(ref _sequence, _sequence + 1);
        }
    }

    public bool TestSignaled(FenceUsage usage)
    {
        var spin = default(SpinWait);
        while (true)
        {
            int begin = Volatile.Read(ref _sequence); // acquire: slot loads stay after it
            if ((begin & 1) != 0)
            {
                spin.SpinOnce(); // a writer is inside: the kernel spins here too
                continue;
            }

            bool signaled = true;
            int count = Math.Min(Volatile.Read(ref _count), Capacity);
            for (int i = 0; i < count; i++)
            {
                // Acquire loads: each stays before the re-read of the count below.
                Fence? fence = Volatile.Read(ref _fences[i]);
                if (Volatile.Read(ref _usages[i]) <= (int)usage && fence is not null && !fence.IsSignaled)
                {
                    signaled = false;
                    break;
                }
            }

            if (Volatile.Read(ref _sequence) == begin)
            {
                return signaled;
            }
        }
    }
}
