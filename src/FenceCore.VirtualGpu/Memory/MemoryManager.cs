namespace FenceCore.VirtualGpu;

/// <summary>
/// The memory manager (the kernel's TTM: <c>ttm_bo.c</c>, <c>ttm_resource.c</c>): places buffers in device
/// memory on first use (a clear) or after an eviction (a move back), evicts the least recently used
/// unpinned buffer when memory is short, and runs every clear, move and eviction as a kernel job on a copy
/// engine whose finished fence is the buffer's KERNEL fence.
/// </summary>
/// <remarks>Owns one lock, <see cref="_gate"/>: placement, the LRU, pins and the accounting change under it.
/// Kernel jobs are submitted under it (their events are raised there); no fence is signalled under it. Waits
/// for another thread's pins (<see cref="WaitForInFlightPins"/>) happen outside it, holding no pin.</remarks>
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
    /// reservation; returns, per access, the fence of the move or clear that established its storage.
    /// Whether every placement fits is decided first (<see cref="EnsureFits(BufferAccess[])"/>): a submission that cannot be
    /// placed throws -ENOMEM having evicted, moved and pinned nothing.</summary>
    public Fence?[] PinResident(BufferAccess[] accesses)
    {
        if (accesses.Length == 0)
        {
            return [];
        }

        var storage = new Fence?[accesses.Length];

        lock (_gate)
        {
            EnsureFits(accesses); // fails before any eviction, move or pin: a rejected submission changes nothing
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

    /// <summary>The end of a submission's placement (its fence is in every reservation, or it failed): this
    /// device's buffers, and the imports on their exporters, may move again.</summary>
    internal void UnpinSubmission(BufferAccess[] accesses)
    {
        Unpin(accesses);
        UnmapImports(accesses, accesses.Length);
    }

    /// <summary>Unpins this device's own buffers among <paramref name="accesses"/>.</summary>
    private void Unpin(BufferAccess[] accesses)
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
    /// Pins everything a submission touches: this device's buffers (<see cref="PinResident"/>), then the
    /// imports on their exporters (<see cref="MapImports"/>), after this device's lock is released, so no two
    /// memory managers' locks are ever held together. The imports are checked first
    /// (<see cref="CheckImports"/>), so an import that cannot be mapped fails before anything moves. An
    /// import whose bounce finds its buffer pinned by work in flight on another thread (threads mode) backs
    /// off, as a wait-die acquire does: everything pinned is unpinned, the wait happens holding nothing (two
    /// submissions that each pin what the other must bounce cannot deadlock), and the placement starts again.
    /// Returns, per access, the storage fence its job must find signalled; on a failure nothing stays pinned.
    /// </summary>
    /// <exception cref="FenceErrnoException">-ENOMEM, or -EBUSY (see <see cref="TryMapForImport"/>).</exception>
    internal Fence?[] PinForSubmission(BufferAccess[] accesses)
    {
        CheckImports(accesses);
        long deadline = 0;
        while (true)
        {
            Fence?[] storage = PinResident(accesses);
            int mapped = 0;
            GpuBuffer? busy;
            try
            {
                busy = MapImports(accesses, storage, out mapped);
            }
            catch
            {
                UnmapImports(accesses, mapped);
                Unpin(accesses);
                throw;
            }

            if (busy is null)
            {
                return storage;
            }

            UnmapImports(accesses, mapped);
            Unpin(accesses);
            busy.Origin.Device.Memory.WaitForInFlightPins(busy.Origin, busy, ref deadline);
        }
    }

    /// <summary>Fails, before anything moves, a submission with an import its exporter cannot map (see
    /// <see cref="TryMapForImport"/>): pinned in device memory for an importer without peer-to-peer, pinned by
    /// work in flight in virtual mode, or too big for the exporter's device memory. Takes each exporter's
    /// lock in turn.</summary>
    private static void CheckImports(BufferAccess[] accesses)
    {
        foreach (BufferAccess a in accesses)
        {
            if (a.Buffer.IsImported)
            {
                GpuBuffer origin = a.Buffer.Origin;
                MemoryManager exporter = origin.Device.Memory;
                lock (exporter._gate)
                {
                    if (exporter.CheckMappable(origin, a.Buffer, accesses) && exporter._gpu.Config.Mode == GpuTimeMode.Virtual)
                    {
                        exporter.ThrowPinnedInFlight(origin, a.Buffer);
                    }
                }
            }
        }
    }

    /// <summary>
    /// Maps the imports among <paramref name="accesses"/> (buffers of other devices) on their exporters and
    /// pins each there for the submission, filling their slots of <paramref name="storage"/>. Stops at an
    /// import whose buffer must be bounced but is pinned by work in flight, and returns it (null when all
    /// are mapped). The caller unpins what this pinned (<see cref="UnmapImports"/>) with the count returned
    /// through <paramref name="mapped"/>, on a failure or a stop.
    /// </summary>
    private static GpuBuffer? MapImports(BufferAccess[] accesses, Fence?[] storage, out int mapped)
    {
        mapped = 0;
        for (int i = 0; i < accesses.Length; i++)
        {
            if (accesses[i].Buffer.IsImported)
            {
                GpuBuffer import = accesses[i].Buffer;
                if (!import.Origin.Device.Memory.TryMapForImport(import, accesses, out storage[i]))
                {
                    return import;
                }
            }

            mapped = i + 1;
        }

        return null;
    }

    /// <summary>Unpins, on their exporters, the imports among the first <paramref name="count"/> accesses.</summary>
    private static void UnmapImports(BufferAccess[] accesses, int count)
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
    /// <remarks>A bounce moves the buffer, so it obeys eviction's rule: nothing may pin it. A buffer pinned
    /// in device memory by a pinned import cannot be mapped by an importer without peer-to-peer: -EBUSY,
    /// the answer amdgpu_dma_buf_map gave for a pinned buffer outside GTT. Recent kernels dropped that check
    /// from the map when amdgpu_dma_buf_pin began to pin in GTT whenever an attachment lacks peer-to-peer
    /// (commit f5e7fabd1f5c); this model keeps it, so an importer attached after the pin is not handed
    /// memory it cannot reach. A buffer pinned only by work in flight (a submission being placed, a CPU
    /// access) returns false: the caller backs off and waits (<see cref="PinForSubmission"/>), as the
    /// kernel's importer waits for the exporter's reservation lock; in virtual mode
    /// <see cref="CheckImports"/> has already failed it with -EBUSY.</remarks>
    /// <param name="import">The importer's handle.</param>
    /// <param name="accesses">The submission's accesses: their buffers are never evicted for this one.</param>
    /// <param name="storage">The storage fence the importer's job must find signalled when it starts.</param>
    /// <exception cref="FenceErrnoException">-EBUSY: pinned in device memory by a pinned import, for an
    /// import without peer-to-peer; -ENOMEM: a peer-to-peer placement found too little to evict.</exception>
    private bool TryMapForImport(GpuBuffer import, BufferAccess[] accesses, out Fence? storage)
    {
        GpuBuffer origin = import.Origin;
        lock (_gate)
        {
            if (CheckMappable(origin, import, accesses))
            {
                storage = null;
                return false;
            }

            if (NeedsBounce(origin, import))
            {
                MoveToSystem(origin, $"bounce {origin.Name} to system memory for {import.Device.Name}");
            }
            else if (NeedsPeerToPeerPlacement(origin, import))
            {
                EnsureResident(origin, accesses);
            }

            storage = PinForImport(origin, import);
            return true;
        }
    }

    /// <summary>Checks that <paramref name="import"/> can be mapped now, under <see cref="_gate"/>: throws
    /// -EBUSY (pinned in device memory by a pinned import, for an import without peer-to-peer) or -ENOMEM
    /// (a peer-to-peer placement that does not fit, <see cref="EnsureFits(GpuBuffer, BufferAccess[])"/>);
    /// returns true when a bounce is needed but work in flight pins the buffer.</summary>
    private bool CheckMappable(GpuBuffer origin, GpuBuffer import, BufferAccess[] accesses)
    {
        if (NeedsBounce(origin, import))
        {
            if (origin.ImportPins > 0)
            {
                throw new FenceErrnoException(-Errno.EBUSY,
                    $"{origin.Name} is pinned in device memory on {_gpu.Name} by a pinned import that reaches it peer to peer; {import.Name} has no peer-to-peer access and cannot map it there (amdgpu_dma_buf_map: a pinned buffer outside system memory)");
            }

            return origin.PinCount > 0;
        }

        if (NeedsPeerToPeerPlacement(origin, import))
        {
            EnsureFits(origin, accesses);
        }

        return false;
    }

    /// <summary>A peer-to-peer import of a buffer no pinned import holds: placed in device memory as for a
    /// job of this device (on a device not lost). Under <see cref="_gate"/>.</summary>
    private bool NeedsPeerToPeerPlacement(GpuBuffer origin, GpuBuffer import) =>
        !_gpu.IsLost && import.PeerToPeer && origin.ImportPins == 0;

    /// <summary>Pins the exporter's buffer for an importer's submission and marks the import mapped; the
    /// storage fence is the one the importer's job waits for. Under <see cref="_gate"/>.</summary>
    private static Fence? PinForImport(GpuBuffer origin, GpuBuffer import)
    {
        origin.PinCount++;
        import.Mapped = true;
        return origin.StorageFence;
    }

    /// <summary>An import that cannot reach device memory finds the buffer there (on a device not lost):
    /// it must be bounced to system memory first. Under <see cref="_gate"/>.</summary>
    private bool NeedsBounce(GpuBuffer origin, GpuBuffer import) =>
        !_gpu.IsLost && !import.PeerToPeer && origin.Placement == BufferPlacement.Device;

    /// <summary>
    /// Waits, outside <see cref="_gate"/> and holding no pin, for the in-flight pins of a buffer that must be
    /// bounced (a submission being placed on another thread, a CPU access) to go, as the kernel's importer
    /// waits for the exporter's reservation lock; one step of the wait per call. In virtual mode a pin is only ever held by a call further up this
    /// thread's stack (a submission or a CPU access callback that imports), which waiting cannot release:
    /// -EBUSY at once. In threads mode the wait ends by <see cref="GpuConfig.DependencyTimeout"/>, with -EBUSY.
    /// </summary>
    /// <param name="origin">The exporter's buffer to bounce.</param>
    /// <param name="import">The import it is bounced for.</param>
    /// <param name="deadline">0 on the first call; then the wait's end, in <see cref="Environment.TickCount64"/> ms.</param>
    private void WaitForInFlightPins(GpuBuffer origin, GpuBuffer import, ref long deadline)
    {
        long now = Environment.TickCount64;
        if (deadline == 0)
        {
            deadline = now + (long)_gpu.Config.DependencyTimeout.TotalMilliseconds;
        }

        if (_gpu.Config.Mode == GpuTimeMode.Virtual || now > deadline)
        {
            ThrowPinnedInFlight(origin, import);
        }

        Thread.Yield();
    }

    /// <summary>-EBUSY for a bounce that work in flight keeps from moving the buffer.</summary>
    private void ThrowPinnedInFlight(GpuBuffer origin, GpuBuffer import) =>
        throw new FenceErrnoException(-Errno.EBUSY,
            $"{origin.Name} is pinned in device memory on {_gpu.Name} by a submission or CPU access in progress; it cannot be bounced to system memory for {import.Name} until that ends");

    /// <summary>
    /// Attaches an import of one of this device's buffers (<c>dma_buf_attach</c>). A pinned import pins the
    /// buffer for its lifetime (<c>amdgpu_dma_buf_pin</c>): in device memory when every attachment reaches
    /// it peer-to-peer, this one and the dynamic ones (which may evict others, and fails with -ENOMEM when
    /// too little can be evicted), in system memory otherwise (moved out if it was in device memory, once
    /// no work in flight pins it). A buffer already pinned stays where it is; a pinned import that cannot
    /// reach it there fails with -EINVAL (<c>amdgpu_bo_pin</c> on a pinned buffer outside the domains asked
    /// for). A dynamic import is only recorded, to be told of moves.
    /// </summary>
    /// <exception cref="FenceErrnoException">-ENOMEM, -EINVAL, or -EBUSY (see <see cref="WaitForInFlightPins"/>).
    /// Nothing changed.</exception>
    internal void Attach(GpuBuffer import)
    {
        GpuBuffer origin = import.Origin;
        long deadline = 0;
        while (true)
        {
            lock (_gate)
            {
                if (TryAttach(origin, import))
                {
                    return;
                }
            }

            WaitForInFlightPins(origin, import, ref deadline);
        }
    }

    /// <summary>One attempt of <see cref="Attach"/>, under <see cref="_gate"/>: false when a bounce must wait
    /// for pins in flight (nothing changed then).</summary>
    private bool TryAttach(GpuBuffer origin, GpuBuffer import)
    {
        if (import.Mode == ImportMode.Dynamic)
        {
            (origin.DynamicImports ??= []).Add(import);
            return true;
        }

        if (origin.ImportPins > 0)
        {
            if (NeedsBounce(origin, import))
            {
                throw new FenceErrnoException(-Errno.EINVAL,
                    $"{origin.Name} is pinned in device memory on {_gpu.Name} by a pinned import that reaches it peer to peer; {import.Name} has no peer-to-peer access, and a pinned buffer cannot move to system memory for it (amdgpu_bo_pin: pinned outside the domains asked for)");
            }
        }
        else if (import.PeerToPeer && (origin.DynamicImports?.TrueForAll(d => d.PeerToPeer) ?? true))
        {
            EnsureFits(origin, []);
            EnsureResident(origin, []);
        }
        else if (origin.Placement == BufferPlacement.Device && !_gpu.IsLost)
        {
            if (origin.PinCount > 0)
            {
                return false;
            }

            MoveToSystem(origin, $"move {origin.Name} to system memory to pin it for {import.Device.Name}");
        }

        origin.ImportPins++;
        origin.PinCount++;
        import.Mapped = true;
        return true;
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

    /// <summary>A buffer that a job of this device would have to move into device memory: not there yet,
    /// and not pinned in system memory by an importer. Under <see cref="_gate"/>.</summary>
    private static bool NeedsPlacement(GpuBuffer buffer) =>
        buffer.Placement != BufferPlacement.Device && buffer.ImportPins == 0;

    /// <summary>
    /// Decides, before anything moves, that every buffer of a submission this device must place fits:
    /// each one's victims are chosen as <see cref="EnsureResident"/> will choose them (least recently used
    /// first, never a pinned buffer nor one of the submission's), on a copy of the accounting. Throws -ENOMEM
    /// when they do not, with nothing evicted, moved or notified. TTM's ttm_bo_validate evicts one victim at
    /// a time and keeps what it evicted when it then fails; this model decides first, so that a rejected
    /// submission leaves state as it was. Under <see cref="_gate"/>.
    /// </summary>
    private void EnsureFits(BufferAccess[] accesses)
    {
        long used = _usedBytes;
        List<GpuBuffer>? planned = null;
        foreach (BufferAccess a in accesses)
        {
            if (!a.Buffer.IsImported)
            {
                used = Plan(a.Buffer, accesses, used, ref planned);
            }
        }
    }

    /// <summary><see cref="EnsureFits(BufferAccess[])"/> for one buffer.</summary>
    private void EnsureFits(GpuBuffer buffer, BufferAccess[] pinnedByCaller)
    {
        List<GpuBuffer>? planned = null;
        Plan(buffer, pinnedByCaller, _usedBytes, ref planned);
    }

    /// <summary>Plans one placement on the accounting <paramref name="used"/>, adding its victims to
    /// <paramref name="planned"/>; returns the bytes used after it, or throws -ENOMEM.</summary>
    private long Plan(GpuBuffer buffer, BufferAccess[] pinnedByCaller, long used, ref List<GpuBuffer>? planned)
    {
        if (!NeedsPlacement(buffer))
        {
            return used;
        }

        while (used + buffer.Size > _gpu.Config.DeviceMemoryBytes)
        {
            GpuBuffer? victim = NextVictim(pinnedByCaller, planned);
            if (victim is null)
            {
                // TTM's answer when every candidate is pinned (ttm_bo_validate turns -ENOSPC into -ENOMEM).
                throw new FenceErrnoException(-Errno.ENOMEM,
                    $"Device memory exhausted on {_gpu.Name}: {_usedBytes} of {_gpu.Config.DeviceMemoryBytes} bytes are in use and too few are held by buffers that can be evicted (the rest are pinned by submissions in flight or pinned imports); {buffer.Name} ({buffer.Size} bytes) cannot be placed, and nothing was evicted");
            }

            (planned ??= []).Add(victim);
            used -= victim.Size;
        }

        return used + buffer.Size;
    }

    /// <summary>The least recently used buffer that may be evicted: not pinned, not one of the caller's, and
    /// not already in <paramref name="skip"/>. Under <see cref="_gate"/>.</summary>
    private GpuBuffer? NextVictim(BufferAccess[] pinnedByCaller, List<GpuBuffer>? skip)
    {
        for (LinkedListNode<GpuBuffer>? n = _lru.First; n is not null; n = n.Next)
        {
            GpuBuffer candidate = n.Value;
            if (candidate.PinCount == 0 && !pinnedByCaller.Any(a => ReferenceEquals(a.Buffer.Origin, candidate))
                && (skip is null || !skip.Contains(candidate)))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>Places <paramref name="buffer"/> in device memory, evicting as <see cref="EnsureFits(GpuBuffer, BufferAccess[])"/>
    /// planned; the caller has checked that it fits. Under <see cref="_gate"/>.</summary>
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
            GpuBuffer? victim = NextVictim(pinnedByCaller, skip: null);
            System.Diagnostics.Debug.Assert(victim is not null, "EnsureFits checked that the placement fits");

            // Evict: copy out after everything that uses the victim (BOOKKEEP level), as a KERNEL fence.
            (evictions ??= []).Add(MoveToSystem(victim!, $"evict {victim!.Name}"));
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
