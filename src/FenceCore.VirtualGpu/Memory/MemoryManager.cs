namespace FenceCore.VirtualGpu;

/// <summary>
/// The memory manager (the kernel's TTM: <c>ttm_bo.c</c>, <c>ttm_resource.c</c>): places buffers in device
/// memory on first use (a clear) or after an eviction (a move back), evicts the least recently used
/// unpinned buffer when memory is short, and runs every clear, move and eviction as a kernel job on a copy
/// engine whose finished fence is the buffer's KERNEL fence.
/// </summary>
/// <remarks>Owns one lock, <see cref="_gate"/>: placement, the LRU, pins and the accounting change under it.
/// Kernel jobs are submitted under it (their events are raised there); no fence is signalled under it. A
/// wait for another thread's pins is a <see cref="Monitor.Wait(object, int)"/> on <see cref="_gate"/>, which
/// releases it; every unpin pulses the waiters (<see cref="PulsePinWaiters"/>). No other manager's lock is
/// held while waiting, nor while this one is held.</remarks>
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

    /// <summary>Threads waiting in <see cref="Monitor.Wait(object, int)"/> on <see cref="_gate"/> for a pin to
    /// drop. Read and written under <see cref="_gate"/>.</summary>
    private int _pinWaiters;

    /// <summary>The last submission ticket handed out (<see cref="PinForSubmission"/>): process-wide, so tickets
    /// of different devices compare; a smaller ticket is an older submission. Written only by
    /// Interlocked.Increment (the increment is the ticket's linearization point); never read otherwise.</summary>
    private static long s_lastTicket;

    public long Used => Interlocked.Read(ref _usedBytes);

    public long PeakUsed => Interlocked.Read(ref _peakUsedBytes);

    /// <summary>Makes every buffer of a submission resident and pins it until the job's fence is in its
    /// reservation; returns, per access, the fence of the move or clear that established its storage, or null
    /// where that fence had already signalled (the leak check can never fire on it). PERF: when no access has
    /// an unsignalled storage fence and none is an import (whose entry the exporter fills in), the result is
    /// the empty array, not an array of nulls: 56 B less for a four-buffer job on settled memory.
    /// Whether every placement fits is decided first (<see cref="EnsureFits(BufferAccess[])"/>): a submission that cannot be
    /// placed throws -ENOMEM having evicted, moved and pinned nothing.</summary>
    public Fence?[] PinResident(BufferAccess[] accesses, long ticket)
    {
        if (accesses.Length == 0)
        {
            return [];
        }

        Fence?[]? storage = null;
        foreach (BufferAccess a in accesses)
        {
            if (a.Buffer.IsImported)
            {
                storage = new Fence?[accesses.Length];
                break;
            }
        }

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
                    PinInFlight(buffer, ticket);
                    if (buffer.StorageFence is { IsSignaled: false } move)
                    {
                        storage ??= new Fence?[accesses.Length];
                        storage[pinned] = move;
                    }
                }
            }
            catch
            {
                for (int i = 0; i < pinned; i++)
                {
                    if (!accesses[i].Buffer.IsImported)
                    {
                        UnpinInFlight(accesses[i].Buffer, ticket); // a rejected submission leaves no buffer pinned
                    }
                }

                throw;
            }
        }

        return storage ?? [];
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
            storagePending = buffer.StorageFence is { } move && !move.PollFast();
            return true;
        }
    }

    /// <summary>The end of a CPU access: the buffer may move again.</summary>
    internal void EndCpuAccess(GpuBuffer buffer)
    {
        lock (_gate)
        {
            buffer.PinCount--;
            PulsePinWaiters();
        }
    }

    /// <summary>Pins <paramref name="buffer"/> for the submission holding <paramref name="ticket"/>; in threads
    /// mode the ticket is recorded, so a waiter can tell whether it is older than every holder. Under
    /// <see cref="_gate"/>.</summary>
    private void PinInFlight(GpuBuffer buffer, long ticket)
    {
        buffer.PinCount++;
        if (_gpu.Config.Mode == GpuTimeMode.Threads)
        {
            (buffer.PinTickets ??= []).Add(ticket);
        }
    }

    /// <summary>Drops a pin of <see cref="PinInFlight"/> and wakes the pin waiters. Under <see cref="_gate"/>.</summary>
    private void UnpinInFlight(GpuBuffer buffer, long ticket)
    {
        buffer.PinCount--;
        if (_gpu.Config.Mode == GpuTimeMode.Threads)
        {
            buffer.PinTickets!.Remove(ticket);
        }

        PulsePinWaiters();
    }

    /// <summary>Wakes every thread waiting on <see cref="_gate"/> for a pin to drop. Under <see cref="_gate"/>.</summary>
    private void PulsePinWaiters()
    {
        if (_pinWaiters > 0)
        {
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Wait-die: true when the submission holding <paramref name="ticket"/> is older than every
    /// holder of the in-flight pins of <paramref name="buffer"/>, all of them submissions (a CPU access pin
    /// has no ticket: the waiter always backs off for it). Under <see cref="_gate"/>.</summary>
    private static bool OlderThanEveryHolder(GpuBuffer buffer, long ticket) =>
        buffer.PinTickets is { } holders && holders.Count == buffer.PinCount - buffer.ImportPins
        && holders.TrueForAll(t => t > ticket);

    /// <summary>The end of a submission's placement (its fence is in every reservation, or it failed): this
    /// device's buffers, and the imports on their exporters, may move again.</summary>
    internal void UnpinSubmission(BufferAccess[] accesses, long ticket)
    {
        Unpin(accesses, ticket);
        UnmapImports(accesses, accesses.Length, ticket);
    }

    /// <summary>Unpins this device's own buffers among <paramref name="accesses"/>.</summary>
    private void Unpin(BufferAccess[] accesses, long ticket)
    {
        if (accesses.Length > 0)
        {
            lock (_gate)
            {
                foreach (BufferAccess a in accesses)
                {
                    if (!a.Buffer.IsImported)
                    {
                        UnpinInFlight(a.Buffer, ticket);
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
    /// memory managers' locks are ever held together. The imports are checked first, all of one exporter
    /// together (<see cref="CheckImports"/>), so in virtual mode an import that cannot be mapped fails before
    /// anything moves. An import whose bounce finds its buffer pinned by work in flight on another thread
    /// (threads mode) is wait-die, by the ticket this call takes at its start and keeps across retries:
    /// when every holder of those pins is a younger submission, this one waits holding its pins
    /// (<see cref="TryMapForImport"/>); otherwise it dies: everything pinned is unpinned, it waits holding
    /// nothing until the buffer's pins are gone or held only by younger submissions
    /// (<see cref="WaitForInFlightPins"/>), and the placement starts again. Waits only ever go from an older
    /// submission to younger ones, so two submissions that each pin what the other must bounce cannot wait
    /// for each other: the younger backs off and the older goes on. Either wait blocks on the exporter's
    /// lock's monitor (no spinning) and ends by <see cref="GpuConfig.DependencyTimeout"/> with -EBUSY.
    /// Returns, per access, the storage fence its job must find signalled, and the ticket that
    /// <see cref="UnpinSubmission"/> takes; on a failure nothing stays pinned.
    /// </summary>
    /// <exception cref="FenceErrnoException">-ENOMEM, or -EBUSY (see <see cref="TryMapForImport"/>).</exception>
    internal Fence?[] PinForSubmission(BufferAccess[] accesses, out long ticket)
    {
        ticket = Interlocked.Increment(ref s_lastTicket); // the submission's age: taken once, kept across retries
        CheckImports(accesses);
        long deadline = 0;
        while (true)
        {
            Fence?[] storage = PinResident(accesses, ticket);
            _gpu.AfterPinResidentForTesting?.Invoke();
            int mapped = 0;
            GpuBuffer? busy;
            try
            {
                busy = MapImports(accesses, storage, ticket, ref deadline, out mapped);
            }
            catch
            {
                UnmapImports(accesses, mapped, ticket);
                Unpin(accesses, ticket);
                throw;
            }

            if (busy is null)
            {
                return storage;
            }

            _gpu.BeforeBackOffForTesting?.Invoke();
            UnmapImports(accesses, mapped, ticket);
            Unpin(accesses, ticket);
            busy.Origin.Device.Memory.WaitForInFlightPins(busy.Origin, busy, ticket, ref deadline);
        }
    }

    /// <summary>Fails, before anything moves, a submission with imports an exporter cannot map (see
    /// <see cref="CheckMappable(GpuBuffer, GpuBuffer, BufferAccess[], ref long, ref List{GpuBuffer}?)"/>): pinned in device memory for an importer without peer-to-peer, pinned by
    /// work in flight in virtual mode, or, all of one exporter's imports of the job together, too big for
    /// the exporter's device memory (the bytes used and the victims chosen carry from one import to the next,
    /// as <see cref="EnsureFits(BufferAccess[])"/> carries them across a job's own buffers). Takes each
    /// exporter's lock in turn. In threads mode another thread may change an exporter's memory between this
    /// check and the map, so a map can still fail there.</summary>
    private static void CheckImports(BufferAccess[] accesses)
    {
        List<MemoryManager>? checkedExporters = null;
        foreach (BufferAccess a in accesses)
        {
            if (!a.Buffer.IsImported)
            {
                continue;
            }

            MemoryManager exporter = a.Buffer.Origin.Device.Memory;
            if (checkedExporters?.Contains(exporter) == true)
            {
                continue;
            }

            (checkedExporters ??= []).Add(exporter);
            lock (exporter._gate)
            {
                exporter.CheckImportsOfThisExporter(accesses);
            }
        }
    }

    /// <summary><see cref="CheckImports"/> for the imports of this exporter's buffers, in the order they will
    /// be mapped. Under <see cref="_gate"/>.</summary>
    private void CheckImportsOfThisExporter(BufferAccess[] accesses)
    {
        long used = _usedBytes;
        List<GpuBuffer>? planned = null;
        foreach (BufferAccess a in accesses)
        {
            GpuBuffer import = a.Buffer;
            if (import.IsImported && ReferenceEquals(import.Origin.Device.Memory, this)
                && CheckMappable(import.Origin, import, accesses, ref used, ref planned) && _gpu.Config.Mode == GpuTimeMode.Virtual)
            {
                ThrowPinnedInFlight(import.Origin, import);
            }
        }
    }

    /// <summary>
    /// Maps the imports among <paramref name="accesses"/> (buffers of other devices) on their exporters and
    /// pins each there for the submission, filling their slots of <paramref name="storage"/>. Stops at an
    /// import whose buffer must be bounced but is pinned by work in flight that this submission must not
    /// wait for, and returns it (null when all are mapped). The caller unpins what this pinned
    /// (<see cref="UnmapImports"/>) with the count returned through <paramref name="mapped"/>, on a failure
    /// or a stop.
    /// </summary>
    private static GpuBuffer? MapImports(BufferAccess[] accesses, Fence?[] storage, long ticket, ref long deadline, out int mapped)
    {
        mapped = 0;
        for (int i = 0; i < accesses.Length; i++)
        {
            if (accesses[i].Buffer.IsImported)
            {
                GpuBuffer import = accesses[i].Buffer;
                if (!import.Origin.Device.Memory.TryMapForImport(import, accesses, ticket, ref deadline, out storage[i]))
                {
                    return import;
                }
            }

            mapped = i + 1;
        }

        return null;
    }

    /// <summary>Unpins, on their exporters, the imports among the first <paramref name="count"/> accesses.</summary>
    private static void UnmapImports(BufferAccess[] accesses, int count, long ticket)
    {
        for (int i = 0; i < count; i++)
        {
            if (accesses[i].Buffer.IsImported)
            {
                GpuBuffer origin = accesses[i].Buffer.Origin;
                MemoryManager exporter = origin.Device.Memory;
                lock (exporter._gate)
                {
                    exporter.UnpinInFlight(origin, ticket);
                }
            }
        }
    }

    /// <summary>
    /// The exporter's side of an importer's map (<c>map_dma_buf</c>): the storage is placed where the
    /// importer reaches it, and pinned for the importer's submission. A peer-to-peer import reaches device
    /// memory, so the buffer is made resident as for a job of this device (unless someone else pins it in
    /// system memory: it is used there, see <see cref="NeedsPlacement"/>); an import without it reaches
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
    /// access): when every holder is a submission younger than <paramref name="ticket"/>, this waits for
    /// their pins to go, holding its own (wait-die's wait), on this manager's monitor; otherwise it returns
    /// false and the caller dies (<see cref="PinForSubmission"/>). In virtual mode
    /// <see cref="CheckImports"/> has already failed it with -EBUSY.</remarks>
    /// <param name="import">The importer's handle.</param>
    /// <param name="accesses">The submission's accesses: their buffers are never evicted for this one.</param>
    /// <param name="ticket">The submission's ticket (its age).</param>
    /// <param name="deadline">The submission's wait deadline (see <see cref="WaitForPinDrop"/>).</param>
    /// <param name="storage">The storage fence the importer's job must find signalled when it starts.</param>
    /// <exception cref="FenceErrnoException">-EBUSY: pinned in device memory by a pinned import, for an
    /// import without peer-to-peer, or the wait ran out; -ENOMEM: a peer-to-peer placement found too little
    /// to evict.</exception>
    private bool TryMapForImport(GpuBuffer import, BufferAccess[] accesses, long ticket, ref long deadline, out Fence? storage)
    {
        GpuBuffer origin = import.Origin;
        lock (_gate)
        {
            while (CheckMappable(origin, import, accesses))
            {
                if (!OlderThanEveryHolder(origin, ticket))
                {
                    storage = null;
                    return false;
                }

                WaitForPinDrop(origin, import, ref deadline);
            }

            if (NeedsBounce(origin, import))
            {
                MoveToSystem(origin, import.BounceLabel);
            }
            else if (NeedsPeerToPeerPlacement(origin, import))
            {
                EnsureResident(origin, accesses);
            }

            storage = PinForImport(origin, import, ticket);
            return true;
        }
    }

    /// <summary><see cref="CheckMappable(GpuBuffer, GpuBuffer, BufferAccess[], ref long, ref List{GpuBuffer}?)"/>
    /// on this manager's accounting as it is now.</summary>
    private bool CheckMappable(GpuBuffer origin, GpuBuffer import, BufferAccess[] accesses)
    {
        long used = _usedBytes;
        List<GpuBuffer>? planned = null;
        return CheckMappable(origin, import, accesses, ref used, ref planned);
    }

    /// <summary>Checks that <paramref name="import"/> can be mapped, under <see cref="_gate"/>, on the
    /// accounting <paramref name="used"/> with the victims <paramref name="planned"/> already chosen (both
    /// updated: a bounce frees the buffer's bytes, a peer-to-peer placement adds them): throws -EBUSY
    /// (pinned in device memory by a pinned import, for an import without peer-to-peer) or -ENOMEM (a
    /// peer-to-peer placement that does not fit, <see cref="Plan"/>); returns true when a bounce is needed
    /// but work in flight pins the buffer.</summary>
    private bool CheckMappable(GpuBuffer origin, GpuBuffer import, BufferAccess[] accesses, ref long used, ref List<GpuBuffer>? planned)
    {
        if (NeedsBounce(origin, import))
        {
            if (origin.ImportPins > 0)
            {
                throw new FenceErrnoException(-Errno.EBUSY,
                    $"{origin.Name} is pinned in device memory on {_gpu.Name} by a pinned import that reaches it peer to peer; {import.Name} has no peer-to-peer access and cannot map it there (amdgpu_dma_buf_map: a pinned buffer outside system memory)");
            }

            if (origin.PinCount > 0)
            {
                return true;
            }

            used -= origin.Size;
            return false;
        }

        if (NeedsPeerToPeerPlacement(origin, import))
        {
            used = Plan(origin, accesses, used, ref planned);
        }

        return false;
    }

    /// <summary>A peer-to-peer import of a buffer no pinned import holds: placed in device memory as for a
    /// job of this device (on a device not lost). Under <see cref="_gate"/>.</summary>
    private bool NeedsPeerToPeerPlacement(GpuBuffer origin, GpuBuffer import) =>
        !_gpu.IsLost && import.PeerToPeer && origin.ImportPins == 0;

    /// <summary>Pins the exporter's buffer for an importer's submission and marks the import mapped; the
    /// storage fence is the one the importer's job waits for. Under <see cref="_gate"/>.</summary>
    private Fence? PinForImport(GpuBuffer origin, GpuBuffer import, long ticket)
    {
        PinInFlight(origin, ticket);
        import.Mapped = true;
        return origin.StorageFence;
    }

    /// <summary>An import that cannot reach device memory finds the buffer there (on a device not lost):
    /// it must be bounced to system memory first. Under <see cref="_gate"/>.</summary>
    private bool NeedsBounce(GpuBuffer origin, GpuBuffer import) =>
        !_gpu.IsLost && !import.PeerToPeer && origin.Placement == BufferPlacement.Device;

    /// <summary>
    /// A submission that died (<see cref="PinForSubmission"/>) waits here, holding no pin, until the buffer
    /// it must bounce is pinned no more, or only by submissions younger than <paramref name="ticket"/> (then
    /// its retry waits for them holding its pins), as the kernel's importer waits for the exporter's
    /// reservation lock. In virtual mode a pin is only ever held by a call further up this thread's stack (a
    /// submission or a CPU access callback that imports), which waiting cannot release: -EBUSY at once.
    /// </summary>
    /// <param name="origin">The exporter's buffer to bounce.</param>
    /// <param name="import">The import it is bounced for.</param>
    /// <param name="ticket">The waiting submission's ticket.</param>
    /// <param name="deadline">See <see cref="WaitForPinDrop"/>.</param>
    private void WaitForInFlightPins(GpuBuffer origin, GpuBuffer import, long ticket, ref long deadline)
    {
        lock (_gate)
        {
            RemainingWait(origin, import, ref deadline); // a retry that meets its own pins again ends here, by the deadline
            while (origin.PinCount > 0 && NeedsBounce(origin, import) && !OlderThanEveryHolder(origin, ticket))
            {
                WaitForPinDrop(origin, import, ref deadline);
            }
        }
    }

    /// <summary>
    /// One wait, under <see cref="_gate"/>, for a pin of this manager's buffers to drop: a
    /// <see cref="Monitor.Wait(object, int)"/> that releases <see cref="_gate"/> (the caller holds no other
    /// lock) until an unpin pulses it or the deadline passes; the caller checks its condition again. The
    /// deadline is <see cref="GpuConfig.DependencyTimeout"/> after the first wait, in
    /// <see cref="Environment.TickCount64"/> ms (0 before it); past it, -EBUSY. In virtual mode, -EBUSY at once
    /// (see <see cref="WaitForInFlightPins"/>).
    /// </summary>
    private void WaitForPinDrop(GpuBuffer origin, GpuBuffer import, ref long deadline)
    {
        int remaining = RemainingWait(origin, import, ref deadline);
        _pinWaiters++;
        try
        {
            Monitor.Wait(_gate, remaining);
        }
        finally
        {
            _pinWaiters--;
        }
    }

    /// <summary>The milliseconds left before <paramref name="deadline"/> (set on the first call); -EBUSY when
    /// none are left, or at once in virtual mode.</summary>
    private int RemainingWait(GpuBuffer origin, GpuBuffer import, ref long deadline)
    {
        long now = Environment.TickCount64;
        if (deadline == 0)
        {
            deadline = now + (long)_gpu.Config.DependencyTimeout.TotalMilliseconds;
        }

        if (_gpu.Config.Mode == GpuTimeMode.Virtual || now >= deadline)
        {
            ThrowPinnedInFlight(origin, import);
        }

        return (int)Math.Min(deadline - now, int.MaxValue);
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
    /// <exception cref="FenceErrnoException">-ENOMEM, -EINVAL, or -EBUSY (see <see cref="WaitForPinDrop"/>).
    /// Nothing changed.</exception>
    internal void Attach(GpuBuffer import)
    {
        GpuBuffer origin = import.Origin;
        long deadline = 0;
        lock (_gate)
        {
            while (!TryAttach(origin, import))
            {
                WaitForPinDrop(origin, import, ref deadline); // holds no pin: waiting in place cannot deadlock
            }
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

            MoveToSystem(origin, import.PinMoveLabel);
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
                PulsePinWaiters();
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

    /// <summary>
    /// A buffer that a job would have to move into device memory: not there yet, and pinned by no one (a
    /// pinned import, another device's submission that mapped it, a CPU access). A pin stops a move in as it
    /// stops a move out: a pinned buffer in system memory is used there, by this device's jobs and by a
    /// peer-to-peer importer alike (both reach system memory). Under <see cref="_gate"/>. The caller's own
    /// pins never count: a submission pins each buffer only after placing it (its accesses are distinct).
    /// </summary>
    /// <remarks>The kernel never moves a pinned BO: ttm_bo_validate refuses a move of a BO whose pin_count is
    /// set (-EINVAL) unless its current placement is compatible, and amdgpu_cs_bo_validate does not validate
    /// a pinned BO at all, so the command submission uses it where it is (GTT here). The model does the
    /// same for every move in, so it never fails a submission for it; it differs in what counts as a pin:
    /// the kernel's importer holds the exporter's reservation lock from the map until its fence is added,
    /// where this model pins the buffer (PinCount) for that span, and a CPU access pins it too.</remarks>
    private static bool NeedsPlacement(GpuBuffer buffer) =>
        buffer.Placement != BufferPlacement.Device && buffer.PinCount == 0;

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
            if (candidate.PinCount == 0 && !IsAmong(pinnedByCaller, candidate) && (skip is null || !skip.Contains(candidate)))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>True when one of <paramref name="accesses"/> is to <paramref name="storage"/> or an import of it.
    /// PERF: a loop, not Any with a lambda, which allocated a closure and a delegate for every LRU candidate.</summary>
    private static bool IsAmong(BufferAccess[] accesses, GpuBuffer storage)
    {
        foreach (BufferAccess a in accesses)
        {
            if (ReferenceEquals(a.Buffer.Origin, storage))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Places <paramref name="buffer"/> in device memory, evicting as <see cref="EnsureFits(GpuBuffer, BufferAccess[])"/>
    /// planned; the caller has checked that it fits. Under <see cref="_gate"/>.</summary>
    private void EnsureResident(GpuBuffer buffer, BufferAccess[] pinnedByCaller)
    {
        if (buffer.PinCount > 0 && buffer.Placement == BufferPlacement.System)
        {
            return; // pinned in system memory (an importer, a CPU access): used there, never moved in (NeedsPlacement)
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
            (evictions ??= []).Add(MoveToSystem(victim!, victim!.EvictLabel));
        }

        // Move in (or clear on first placement) into the space the evictions free.
        GpuJob move = _gpu.Submission.SubmitKernelJob(buffer, evictions, buffer.StorageFence is null ? buffer.ClearLabel : buffer.MoveLabel);
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
