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
                    GpuBuffer buffer = accesses[pinned].Buffer;
                    if (buffer.IsImported)
                    {
                        continue; // mapped on its exporter afterwards (MapImports), never under this lock
                    }

                    EnsureResident(buffer, accesses);
                    buffer.PinCount++;
                    storage[pinned] = buffer.StorageFence;
                }
            }
            catch
            {
                for (int i = 0; i < pinned; i++)
                {
                    if (!accesses[i].Buffer.IsImported)
                    {
                        accesses[i].Buffer.PinCount--; // a rejected submission leaves no buffer pinned
                    }
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
                    if (!a.Buffer.IsImported)
                    {
                        a.Buffer.PinCount--;
                    }
                }
            }
        }
    }

    /// <summary>The buffer's dma-buf, created on its first export; it shares the buffer's reservation.</summary>
    internal DmaBuf ExportOf(GpuBuffer buffer)
    {
        lock (_gate)
        {
            return buffer.Export ??= new DmaBuf(buffer.Reservation, buffer.Name);
        }
    }

    /// <summary>
    /// Maps the imports among <paramref name="accesses"/> (buffers of other devices) on their exporters and
    /// pins each there for the submission, filling their slots of <paramref name="storage"/>. Called after
    /// <see cref="PinResident"/> returned, so no two memory managers' locks are ever held together. On a
    /// failure nothing stays pinned: the caller unpins what this pinned (<see cref="UnmapImports"/>) with
    /// the count returned through <paramref name="mapped"/>.
    /// </summary>
    internal static void MapImports(BufferAccess[] accesses, Fence?[] storage, out int mapped)
    {
        mapped = 0;
        for (int i = 0; i < accesses.Length; i++)
        {
            if (accesses[i].Buffer.IsImported)
            {
                GpuBuffer import = accesses[i].Buffer;
                storage[i] = import.Origin.Device.Memory.MapForImport(import, accesses);
            }

            mapped = i + 1;
        }
    }

    /// <summary>Unpins, on their exporters, the imports among the first <paramref name="count"/> accesses.</summary>
    internal static void UnmapImports(BufferAccess[] accesses, int count)
    {
        for (int i = 0; i < count; i++)
        {
            if (accesses[i].Buffer.IsImported)
            {
                GpuBuffer origin = accesses[i].Buffer.Origin;
                MemoryManager exporter = origin.Device.Memory;
                lock (exporter._gate)
                {
                    origin.PinCount--;
                }
            }
        }
    }

    /// <summary>
    /// The exporter's side of an importer's map (<c>map_dma_buf</c>): the storage is placed where the
    /// importer reaches it, and pinned for the importer's submission. A peer-to-peer import reaches device
    /// memory, so the buffer is made resident as for a job of this device; an import without it reaches
    /// only system memory, so a buffer in device memory is moved out first (the bounce, itself a fenced
    /// KERNEL move). A buffer pinned by a pinned import stays where it is. A lost exporter moves nothing:
    /// the mapping keeps working with undefined contents, as the kernel's hot-unplug rules ask.
    /// </summary>
    /// <returns>The storage fence the importer's job must find signalled when it starts.</returns>
    private Fence? MapForImport(GpuBuffer import, BufferAccess[] accesses)
    {
        GpuBuffer origin = import.Origin;
        lock (_gate)
        {
            if (!_gpu.IsLost && origin.ImportPins == 0)
            {
                if (import.PeerToPeer)
                {
                    EnsureResident(origin, accesses);
                }
                else if (origin.Placement == BufferPlacement.Device)
                {
                    MoveToSystem(origin, $"bounce {origin.Name} to system memory for {import.Device.Name}");
                }
            }

            origin.PinCount++;
            import.Mapped = true;
            return origin.StorageFence;
        }
    }

    /// <summary>
    /// Attaches an import of one of this device's buffers (<c>dma_buf_attach</c>). A pinned import pins the
    /// buffer for its lifetime: in device memory when it reaches it peer-to-peer (which may evict others, and
    /// fails with -ENOMEM when nothing can be evicted, leaving everything as it was), in system memory
    /// otherwise (moved out if it was in device memory). A dynamic import is only recorded, to be told of
    /// moves.
    /// </summary>
    internal void Attach(GpuBuffer import)
    {
        GpuBuffer origin = import.Origin;
        lock (_gate)
        {
            if (import.Mode == ImportMode.Dynamic)
            {
                (origin.DynamicImports ??= []).Add(import);
                return;
            }

            if (origin.ImportPins == 0)
            {
                if (import.PeerToPeer)
                {
                    EnsureResident(origin, []);
                }
                else if (origin.Placement == BufferPlacement.Device)
                {
                    MoveToSystem(origin, $"move {origin.Name} to system memory to pin it for {import.Device.Name}");
                }
            }

            origin.ImportPins++;
            origin.PinCount++;
            import.Mapped = true;
        }
    }

    /// <summary>Detaches an import (<c>dma_buf_detach</c>): a pinned import's pin is dropped, so the exporter
    /// may move the buffer again; a dynamic import is told of no more moves.</summary>
    internal void Detach(GpuBuffer import)
    {
        GpuBuffer origin = import.Origin;
        lock (_gate)
        {
            if (import.Mode == ImportMode.Dynamic)
            {
                origin.DynamicImports?.Remove(import);
            }
            else
            {
                origin.ImportPins--;
                origin.PinCount--;
            }

            import.Mapped = false;
        }
    }

    /// <summary>Moves a resident buffer out of device memory (eviction or bounce): a KERNEL job after
    /// everything that uses it, and a move notification to its dynamic importers.</summary>
    private GpuFence MoveToSystem(GpuBuffer buffer, string label)
    {
        GpuJob evict = _gpu.Submission.SubmitKernelJob(buffer, null, label);
        buffer.StorageFence = evict.Finished;
        buffer.Placement = BufferPlacement.System;
        _lru.Remove(buffer.LruNode!);
        Interlocked.Add(ref _usedBytes, -buffer.Size);
        NotifyMove(buffer);
        return evict.Finished;
    }

    /// <summary><c>dma_buf_move_notify</c>: every dynamic import of <paramref name="buffer"/> drops its mapping;
    /// its next job maps again and waits for the move's KERNEL fence.</summary>
    private void NotifyMove(GpuBuffer buffer)
    {
        if (buffer.DynamicImports is not { Count: > 0 } imports)
        {
            return;
        }

        foreach (GpuBuffer import in imports)
        {
            import.NoteMoveNotification();
            import.Device.Hub.Raise(new GpuEvent(GpuEventKind.MoveNotified, _gpu.NowNs, null, null, 0, import));
        }
    }

    private void EnsureResident(GpuBuffer buffer, BufferAccess[] pinnedByCaller)
    {
        if (buffer.ImportPins > 0 && buffer.Placement == BufferPlacement.System)
        {
            return; // pinned in system memory by an importer: this device's jobs use it there too
        }

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
                if (n.Value.PinCount == 0 && !pinnedByCaller.Any(a => ReferenceEquals(a.Buffer.Origin, n.Value)))
                {
                    victim = n.Value;
                    break;
                }
            }

            if (victim is null)
            {
                // TTM's answer when every candidate is pinned (ttm_bo_validate turns -ENOSPC into -ENOMEM).
                throw new FenceErrnoException(-Errno.ENOMEM,
                    $"Device memory exhausted on {_gpu.Name}: {_usedBytes} of {_gpu.Config.DeviceMemoryBytes} bytes are held by pinned buffers (submissions in flight or pinned imports); {buffer.Name} ({buffer.Size} bytes) cannot be placed");
            }

            // Evict: copy out after everything that uses the victim (BOOKKEEP level), as a KERNEL fence.
            (evictions ??= []).Add(MoveToSystem(victim, $"evict {victim.Name}"));
        }

        // Move in (or clear on first placement) into the space the evictions free.
        GpuJob move = _gpu.Submission.SubmitKernelJob(buffer, evictions, buffer.StorageFence is null ? $"clear {buffer.Name}" : $"move {buffer.Name}");
        buffer.StorageFence = move.Finished;
        buffer.Placement = BufferPlacement.Device;
        buffer.LruNode ??= new LinkedListNode<GpuBuffer>(buffer);
        _lru.AddLast(buffer.LruNode);
        NotifyMove(buffer);
        long used = Interlocked.Add(ref _usedBytes, buffer.Size);
        if (used > _peakUsedBytes)
        {
            Interlocked.Exchange(ref _peakUsedBytes, used);
        }
    }
}
