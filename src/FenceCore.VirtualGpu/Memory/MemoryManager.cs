namespace FenceCore.VirtualGpu;

/// <summary>
/// The memory manager (the kernel's TTM: <c>ttm_bo.c</c>, <c>ttm_resource.c</c>): places buffers in device
/// memory on first use (a clear) or after an eviction (a move back), evicts the least recently used
/// unpinned buffer when memory is short, and runs every clear, move and eviction as a kernel job on a copy
/// engine whose finished fence is the buffer's KERNEL fence.
/// </summary>
/// <remarks>Owns one lock, <see cref="_gate"/>: placement, the LRU, pins and the accounting change under it.
/// Kernel jobs are submitted under it (their events are raised there); no fence is signalled under it.</remarks>
internal sealed class MemoryManager(Gpu gpu)
{
    private readonly Gpu _gpu = gpu;
    private readonly object _gate = new();

    /// <summary>Resident buffers, least recently used first. Under <see cref="_gate"/>.</summary>
    private readonly LinkedList<GpuBuffer> _lru = new();

    /// <summary>Bytes placed: written under <see cref="_gate"/> with Interlocked, read lock-free with Interlocked.Read.</summary>
    private long _usedBytes;

    /// <summary>The highest <see cref="_usedBytes"/>: written under <see cref="_gate"/>, read with Interlocked.Read.</summary>
    private long _peakUsedBytes;

    public long Used => Interlocked.Read(ref _usedBytes);

    public long PeakUsed => Interlocked.Read(ref _peakUsedBytes);

    /// <summary>Makes every buffer of a submission resident and pins it until the job's fence is in its
    /// reservation; returns, per access, the fence of the move or clear that established its storage. A
    /// placement that fails unpins what it pinned and throws.</summary>
    public Fence?[] PinResident(BufferAccess[] accesses)
    {
        if (accesses.Length == 0)
        {
            return [];
        }

        var storage = new Fence?[accesses.Length];

        lock (_gate)
        {
            int pinned = 0;
            try
            {
                for (; pinned < accesses.Length; pinned++)
                {
                    EnsureResident(accesses[pinned].Buffer, accesses);
                    accesses[pinned].Buffer.PinCount++;
                    storage[pinned] = accesses[pinned].Buffer.StorageFence;
                }
            }
            catch
            {
                for (int i = 0; i < pinned; i++)
                {
                    accesses[i].Buffer.PinCount--; // a rejected submission leaves no buffer pinned
                }

                throw;
            }
        }

        return storage;
    }

    /// <summary>
    /// The start of a CPU access, atomic with placement: under this manager's lock, either registers
    /// <paramref name="retry"/> on the fence the access must wait for (<see cref="CpuAccessCallback.WaitForBuffer"/>;
    /// returns false: still busy), or pins
    /// the buffer (no eviction can move it while the CPU touches it) and reports whether its storage is
    /// still being moved or cleared. Before, the wait and the storage were read with no lock, so in threads
    /// mode an eviction on another worker could start between the two reads.
    /// </summary>
    internal bool BeginCpuAccess(GpuBuffer buffer, CpuAccessCallback retry, out bool storagePending)
    {
        lock (_gate)
        {
            if (retry.WaitForBuffer())
            {
                storagePending = false;
                return false; // still busy: the callback tries again when it signals
            }

            buffer.PinCount++;
            storagePending = buffer.StorageFence is { } move && !move.Poll();
            return true;
        }
    }

    /// <summary>The end of a CPU access: the buffer may move again.</summary>
    internal void EndCpuAccess(GpuBuffer buffer)
    {
        lock (_gate)
        {
            buffer.PinCount--;
        }
    }

    internal void Unpin(BufferAccess[] accesses)
    {
        if (accesses.Length > 0)
        {
            lock (_gate)
            {
                foreach (BufferAccess a in accesses)
                {
                    a.Buffer.PinCount--;
                }
            }
        }
    }

    private void EnsureResident(GpuBuffer buffer, BufferAccess[] pinnedByCaller)
    {
        if (buffer.Placement == BufferPlacement.Device)
        {
            _lru.Remove(buffer.LruNode!);
            _lru.AddLast(buffer.LruNode!);
            return;
        }

        List<Fence>? evictions = null;
        while (_usedBytes + buffer.Size > _gpu.Config.DeviceMemoryBytes)
        {
            GpuBuffer? victim = null;
            for (LinkedListNode<GpuBuffer>? n = _lru.First; n is not null; n = n.Next)
            {
                if (n.Value.PinCount == 0 && !pinnedByCaller.Any(a => ReferenceEquals(a.Buffer, n.Value)))
                {
                    victim = n.Value;
                    break;
                }
            }

            if (victim is null)
            {
                throw new InvalidOperationException(
                    $"Device memory exhausted: {_usedBytes} of {_gpu.Config.DeviceMemoryBytes} bytes are held by buffers pinned by submissions in flight; {buffer.Name} ({buffer.Size} bytes) cannot be placed.");
            }

            // Evict: copy out after everything that uses the victim (BOOKKEEP level), as a KERNEL fence.
            GpuJob evict = _gpu.Submission.SubmitKernelJob(victim, null, $"evict {victim.Name}");
            (evictions ??= []).Add(evict.Finished);
            victim.Placement = BufferPlacement.System;
            _lru.Remove(victim.LruNode!);
            Interlocked.Add(ref _usedBytes, -victim.Size);
        }

        // Move in (or clear on first placement) into the space the evictions free.
        GpuJob move = _gpu.Submission.SubmitKernelJob(buffer, evictions, buffer.StorageFence is null ? $"clear {buffer.Name}" : $"move {buffer.Name}");
        buffer.StorageFence = move.Finished;
        buffer.Placement = BufferPlacement.Device;
        buffer.LruNode ??= new LinkedListNode<GpuBuffer>(buffer);
        _lru.AddLast(buffer.LruNode);
        long used = Interlocked.Add(ref _usedBytes, buffer.Size);
        if (used > _peakUsedBytes)
        {
            Interlocked.Exchange(ref _peakUsedBytes, used);
        }
    }
}
