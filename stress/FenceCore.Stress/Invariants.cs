using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FenceCore.VirtualGpu;

namespace FenceCore.Stress;

/// <summary>
/// The message of a failed check, written as an interpolated string that is formatted only when the check
/// fails: when it passes, not even its holes are evaluated. PERF: the checks used to take a
/// <c>Func&lt;string&gt;</c>, and every check allocated the lambda's closure and delegate whether it passed
/// or not (a third of the bytes of a default run). Formatted with the invariant culture.
/// </summary>
[InterpolatedStringHandler]
internal ref struct FailureMessage
{
    private DefaultInterpolatedStringHandler _text;

    public FailureMessage(int literalLength, int formattedCount, bool ok, out bool shouldAppend)
    {
        shouldAppend = !ok;
        _text = ok ? default : new DefaultInterpolatedStringHandler(literalLength, formattedCount, CultureInfo.InvariantCulture);
    }

    public void AppendLiteral(string value) => _text.AppendLiteral(value);

    public void AppendFormatted<T>(T value) => _text.AppendFormatted(value);

    public void AppendFormatted<T>(T value, string? format) => _text.AppendFormatted(value, format);

    public string ToStringAndClear() => _text.ToStringAndClear();
}

/// <summary>One invariant the run checks continuously. <paramref name="concurrent"/>: checks come from several
/// threads (threads mode), so the count of checks is kept with Interlocked; otherwise one thread checks and the
/// count is a plain increment, read by others as a whole long (PERF: a locked increment per check, about ten per
/// job, in a virtual-time run).</summary>
internal sealed class Invariant(string name, string description, bool concurrent = true)
{
    private long _checks;
    private long _violations;

    public string Name { get; } = name;
    public string Description { get; } = description;
    public long Checks => Interlocked.Read(ref _checks);
    public long Violations => Interlocked.Read(ref _violations);
    public string? FirstViolation { get; private set; }
    public long FirstViolationTimeNs { get; private set; } = -1;

    public void Pass() => Count();

    /// <summary>Counts a check, and a violation when <paramref name="ok"/> is false; <paramref name="describe"/> is
    /// formatted only then.</summary>
    public void Check(bool ok, [InterpolatedStringHandlerArgument(nameof(ok))] ref FailureMessage describe, long timeNs)
    {
        Count();
        if (!ok)
        {
            Fail(describe.ToStringAndClear(), timeNs);
        }
    }

    private void Count()
    {
        if (concurrent)
        {
            Interlocked.Increment(ref _checks);
        }
        else
        {
            _checks++; // one writer; readers take the whole long with Interlocked.Read
        }
    }

    public void Fail(string what, long timeNs)
    {
        if (Interlocked.Increment(ref _violations) == 1)
        {
            FirstViolation = what;
            FirstViolationTimeNs = timeNs;
        }
    }
}

/// <summary>
/// Watches a GPU through its events and fence signals and checks the stress invariants: per-context
/// in-order signalling, dependencies before start, writer exclusivity under implicit sync, export
/// snapshots, syncobj monotonicity, the watchdog, credit limits, no access to memory being moved,
/// bounded memory, and that every job completes.
/// </summary>
internal sealed class InvariantChecker
{
    private readonly DeviceSet _devices;
    private readonly long _watchdogNs;
    /// <summary>
    /// Threads mode: events arrive from several workers, and every handler runs under this lock. Virtual mode:
    /// every event, fence signal and check comes from the loop's thread, so the handlers take no lock (PERF: two
    /// uncontended locks per event and fence, about six per job); the timer's thread reads only
    /// <see cref="_inFlightCount"/>. The rare checks the workload makes (exports, syncobj queries) keep the lock.
    /// </summary>
    private readonly object _gate = new();
    private readonly Dictionary<ulong, ulong> _lastSeqno = [];
    private readonly Dictionary<GpuBuffer, BufferHistory> _history = new(ById.Instance);
    private readonly Dictionary<GpuJob, List<GpuJob>> _predecessors = new(ById.Instance); // PERF: the lists as built, not copies
    private readonly HashSet<GpuJob> _inFlight = new(ById.Instance);

    /// <summary><see cref="_inFlight"/>'s count, stored by its one writer after each change (Volatile.Write) for the
    /// timer's thread (Volatile.Read), which must not read the set while the loop's thread changes it.</summary>
    private int _inFlightCount;

    /// <summary>Per storage (a buffer's origin), the moves and clears submitted and not yet completed.</summary>
    private readonly Dictionary<GpuBuffer, List<GpuJob>> _pendingMoves = new(ById.Instance);

    /// <summary>The storage each pending move or clear establishes.</summary>
    private readonly Dictionary<GpuJob, GpuBuffer> _moveStorage = new(ById.Instance);

    /// <summary>Virtual mode: for each job that was submitted while a move of a buffer it touches was pending,
    /// those moves (it must not touch the buffer before they finish); checked when the job completes.</summary>
    private readonly Dictionary<GpuJob, List<(GpuJob Move, BufferAccess Access)>> _movesBefore = new(ById.Instance); // PERF: the lists as built

    /// <summary>Virtual mode: jobs already judged when they started (<see cref="JudgeAtStart"/>), until they complete.</summary>
    private readonly HashSet<GpuJob> _judgedAtStart = new(ById.Instance);

    /// <summary>Emptied lists of <see cref="_predecessors"/> and <see cref="_movesBefore"/>, for the next jobs.
    /// PERF: a job's lists are checked once, when it completes, and were garbage after: about 120 B per job
    /// of the default run (938 → 818 B). Under <see cref="_gate"/>, as everything here.</summary>
    private readonly ListPool<GpuJob> _jobLists = new();
    private readonly ListPool<(GpuJob Move, BufferAccess Access)> _moveLists = new();
    private readonly bool _threadsMode;
    private long _lastWatchdogScanNs;

    public InvariantChecker(DeviceSet devices, double watchdogMs, long managedHeapLimitBytes)
    {
        _devices = devices;
        _threadsMode = devices.Config.Mode == GpuTimeMode.Threads;
        _watchdogNs = (long)(watchdogMs * 1_000_000);
        ManagedHeapLimitBytes = managedHeapLimitBytes;
        bool concurrent = _threadsMode; // the loop's thread makes every per-job check in virtual mode
        InOrder = new("in-order-signalling", "fences of one context signal in seqno order", concurrent);
        DepsBeforeStart = new("dependencies-before-start", "no job starts before its dependencies (or, on the same engine, their scheduled fence) signalled", concurrent);
        WriterExclusive = new("writer-exclusive", "under implicit sync a writer never overlaps an earlier reader or writer of the same buffer; readers may overlap", concurrent);
        Snapshot = new("export-snapshot", "an exported sync file holds exactly the unsignalled fences at export and never a later one");
        SyncObjMonotonic = new("syncobj-monotonic", "a timeline syncobj's query never goes backwards");
        Watchdog = new("watchdog", $"every job's finished fence signals within {watchdogMs} ms of GPU time", concurrent);
        CreditLimit = new("credit-limit", "jobs in flight on a ring never exceed its credit limit", concurrent);
        NoLeak = new("no-access-during-move", "no job starts on a buffer before every move or clear of its storage submitted ahead of it finished, on any device (KERNEL fences); no CPU access touches storage being moved");
        MemoryBounded = new("memory-bounded", "device memory in use never exceeds capacity; the managed heap stays under its limit");
        Liveness = new("every-job-completes", "every submitted job has completed when the run drains");
        HeapPerJob = new("heap-per-job-in-flight", string.Create(CultureInfo.InvariantCulture,
            $"after a full GC, the managed heap exceeds its first post-GC sample by at most {HeapAllowanceBytes >> 20} MiB plus {HeapPerJobInFlightBytes >> 10} KiB per job in flight (a leaking callback list or waiter breaks it)"));
        All = [InOrder, DepsBeforeStart, WriterExclusive, Snapshot, SyncObjMonotonic, Watchdog, CreditLimit, NoLeak, MemoryBounded, HeapPerJob, Liveness];
    }

    public Invariant InOrder { get; }
    public Invariant DepsBeforeStart { get; }
    public Invariant WriterExclusive { get; }
    public Invariant Snapshot { get; }
    public Invariant SyncObjMonotonic { get; }
    public Invariant Watchdog { get; }
    public Invariant CreditLimit { get; }
    public Invariant NoLeak { get; }
    public Invariant MemoryBounded { get; }
    public Invariant Liveness { get; }
    public Invariant HeapPerJob { get; }

    /// <summary>Growth allowed over the first post-GC sample whatever is in flight (caches, pools, history).</summary>
    public const long HeapAllowanceBytes = 64L << 20;

    /// <summary>Growth allowed per job in flight (a job, its fences, description and dependency lists are a few KiB).</summary>
    public const long HeapPerJobInFlightBytes = 64L << 10;

    /// <summary>The first post-GC sample, or -1 before it.</summary>
    public long BaselineRetainedBytes { get; private set; } = -1;

    public long PeakRetainedBytes { get; private set; }
    public IReadOnlyList<Invariant> All { get; }
    public long ManagedHeapLimitBytes { get; }
    public long PeakManagedBytes { get; private set; }

    public long TotalViolations => All.Sum(i => i.Violations);

    public Invariant? FirstBroken => All.Where(i => i.Violations > 0).OrderBy(i => i.FirstViolationTimeNs).FirstOrDefault();

    public void Attach()
    {
        if (_threadsMode)
        {
            _devices.Subscribe(e =>
            {
                lock (_gate)
                {
                    OnEvent(e);
                }
            });
            _devices.SubscribeFenceSignals(f =>
            {
                lock (_gate)
                {
                    OnFence(f);
                }
            });
        }
        else
        {
            // The loop's thread raises every event and fence signal: no lock (see _gate).
            _devices.Subscribe(OnEvent);
            _devices.SubscribeFenceSignals(OnFence);
        }
    }

    private void OnFence(GpuFence f)
    {
        ulong seqno = f.Seqno;
        ref ulong last = ref CollectionsMarshal.GetValueRefOrAddDefault(_lastSeqno, f.Context, out bool seen);
        ulong previous = last;
        bool ok = !seen || seqno > previous;
        last = ok ? seqno : previous;
        InOrder.Check(ok, $"{f.Timeline} signalled seqno {seqno} after {previous}", _devices.NowNs);
    }

    private void OnEvent(GpuEvent e)
    {
        switch (e.Kind)
        {
            case GpuEventKind.JobSubmitted when e.Job is { } job:
                OnSubmitted(job, e.Buffer);
                break;
            case GpuEventKind.JobStarted when e.Job is { } job:
                OnStarted(job, e.Time.Ns());
                break;
            case GpuEventKind.JobCompleted when e.Job is { } job:
                OnCompleted(job, e.Time.Ns());
                break;
            case GpuEventKind.LeakDetected when e.Job is null || _threadsMode:
                // A job's access is the checker's own check in virtual mode (CheckMoves); the device's leak
                // detector stays the judge of CPU accesses, and of jobs in threads mode, where events of
                // several workers arrive out of submission order.
                NoLeak.Fail($"{(e.Job is null ? "a CPU access" : e.Job.ToString())} touched {e.Buffer?.Name} before its move or clear signalled", e.Time.Ns());
                break;
            case GpuEventKind.CpuAccess:
                NoLeak.Pass();
                break;
        }
    }

    private void OnSubmitted(GpuJob job, GpuBuffer? moved)
    {
        // In threads mode a job can complete on a worker before its submission event is seen here.
        bool alreadyDone = job.Finished.IsSignaled;
        if (!alreadyDone)
        {
            _inFlight.Add(job);
            Volatile.Write(ref _inFlightCount, _inFlight.Count);
        }

        if (!_threadsMode)
        {
            TrackMoves(job, moved);
        }

        Gpu device = job.Engine.Device;
        MemoryBounded.Check(device.DeviceMemoryUsed <= device.Config.DeviceMemoryBytes,
            $"device memory of {device.Name} {device.DeviceMemoryUsed} exceeds {device.Config.DeviceMemoryBytes}", job.SubmitTime.Ns());
        if (job.IsKernelJob || job.Client.ExplicitSync)
        {
            return;
        }

        if (_threadsMode)
        {
            // Events from several workers may arrive out of submission order, so the buffer history below
            // would not match the reservations' order: take the earlier accesses the submission itself read
            // from the reservations (before the scheduler's dedup, same-entity and pipelining rules).
            List<GpuJob>? raw = null;
            IReadOnlyList<Fence> submitted = job.SubmittedDependencies; // empty if the job already completed
            for (int i = 0; i < Math.Min(job.ImplicitDependencyCount, submitted.Count); i++)
            {
                if (submitted[i] is GpuFence { Job: { IsKernelJob: false } p } && !ReferenceEquals(p, job))
                {
                    (raw ??= _jobLists.Rent()).Add(p);
                }
            }

            if (raw is not null)
            {
                if (alreadyDone)
                {
                    CheckWriter(job, raw, _devices.NowNs);
                    _jobLists.Return(raw);
                }
                else
                {
                    _predecessors[job] = raw;
                }
            }

            return;
        }

        List<GpuJob>? preds = null;
        IReadOnlyList<BufferAccess> accesses = job.Accesses;
        for (int i = 0; i < accesses.Count; i++) // index loops here: foreach would box the list's enumerator per job
        {
            BufferAccess a = accesses[i];
            // Per storage: a buffer and its imports on other devices are one buffer, and one history.
            ref BufferHistory? h = ref CollectionsMarshal.GetValueRefOrAddDefault(_history, a.Buffer.Origin, out _);
            h ??= new BufferHistory();

            if (h.LastWriter is { } w)
            {
                (preds ??= _jobLists.Rent()).Add(w);
            }

            if (a.Write)
            {
                if (h.Readers.Count > 0)
                {
                    (preds ??= _jobLists.Rent()).AddRange(h.Readers);
                }

                h.LastWriter = job;
                h.Readers.Clear();
            }
            else
            {
                h.Readers.Add(job);
            }
        }

        if (preds is not null)
        {
            _predecessors[job] = preds;
        }
    }

    private void OnStarted(GpuJob job, long nowNs)
    {
        if (!_threadsMode)
        {
            JudgeAtStart(job, nowNs);
        }

        IReadOnlyList<Fence> deps = job.EffectiveDependencies;
        for (int i = 0; i < deps.Count; i++)
        {
            Fence dep = deps[i];
            DepsBeforeStart.Check(dep.IsSignaled, $"{job} started before its dependency {dep.Describe()} signalled", nowNs);
        }

        if (job.EffectiveDependencies.Count == 0)
        {
            DepsBeforeStart.Pass();
        }

        int inUse = job.Engine.CreditsInUse;
        CreditLimit.Check(inUse <= job.Engine.Config.CreditLimit, $"{job.Engine.Name} has {inUse} credits in flight, limit {job.Engine.Config.CreditLimit}", nowNs);
    }

    /// <summary>
    /// Virtual mode: a move or clear becomes pending on its storage; any other job records the moves
    /// pending on the storage of the buffers it touches, which it must not overtake.
    /// </summary>
    private void TrackMoves(GpuJob job, GpuBuffer? moved)
    {
        if (job.IsKernelJob)
        {
            if (moved is not null)
            {
                GpuBuffer storage = moved.Origin;
                if (!_pendingMoves.TryGetValue(storage, out List<GpuJob>? pending))
                {
                    pending = [];
                    _pendingMoves[storage] = pending;
                }

                pending.Add(job);
                _moveStorage[job] = storage;
            }

            return;
        }

        List<(GpuJob, BufferAccess)>? before = null;
        IReadOnlyList<BufferAccess> accesses = job.Accesses;
        for (int i = 0; i < accesses.Count; i++)
        {
            BufferAccess a = accesses[i];
            if (_pendingMoves.TryGetValue(a.Buffer.Origin, out List<GpuJob>? pending))
            {
                foreach (GpuJob move in pending)
                {
                    (before ??= _moveLists.Rent()).Add((move, a));
                }
            }
        }

        if (before is not null)
        {
            _movesBefore[job] = before;
        }
    }

    /// <summary>
    /// A completed job that ran did not start before the moves pending at its submission on the storage it
    /// touches had finished, unless its ring ran the move first (the same ring executes in order).
    /// </summary>
    private void CheckMoves(GpuJob job, long nowNs)
    {
        if (job.IsKernelJob)
        {
            if (_moveStorage.Remove(job, out GpuBuffer? storage) && _pendingMoves.TryGetValue(storage, out List<GpuJob>? pending))
            {
                pending.Remove(job);
                if (pending.Count == 0)
                {
                    _pendingMoves.Remove(storage);
                }
            }

            return;
        }

        bool had = _movesBefore.Remove(job, out List<(GpuJob Move, BufferAccess Access)>? moves);
        bool judged = _judgedAtStart.Remove(job);
        if (judged || job.Hardware is null || job.StartTime is not { } start)
        {
            if (had)
            {
                _moveLists.Return(moves!);
            }

            return; // judged when it started, or it never ran, so it touched nothing
        }

        if (!had)
        {
            NoLeak.Pass();
            return;
        }

        Judge(job, moves!, start, nowNs, inEventOrder: false);
        _moveLists.Return(moves!);
    }


    /// <summary>
    /// Virtual mode, when a job's start event comes: a job that starts at this very instant is judged now,
    /// in event order (each move must have signalled before this event), which decides a move that ends at
    /// the same instant as the device's leak detector does. A job that starts later, behind earlier ring
    /// work, is judged when it completes, by timestamps (a move ending exactly at its start counts as ended).
    /// </summary>
    private void JudgeAtStart(GpuJob job, long nowNs)
    {
        if (job.StartTime is { } start && job.Hardware is not null && start.Ns() == nowNs && _movesBefore.Remove(job, out List<(GpuJob Move, BufferAccess Access)>? moves))
        {
            _judgedAtStart.Add(job);
            Judge(job, moves, start, nowNs, inEventOrder: true);
            _moveLists.Return(moves);
        }
    }

    /// <summary>One check per job, as the device's leak detector records one leak per job: every move must
    /// have ended before the job started, or have run ahead of it on its ring.</summary>
    private void Judge(GpuJob job, List<(GpuJob Move, BufferAccess Access)> moves, TimeSpan start, long nowNs, bool inEventOrder)
    {
        foreach ((GpuJob move, BufferAccess access) in moves)
        {
            bool onRingFirst = move.Hardware is { } moveHw && ReferenceEquals(move.Engine, job.Engine) && moveHw.Seqno < job.Hardware!.Seqno;
            bool finished = move.Finished.IsSignaled && (inEventOrder || move.Finished.Timestamp <= start);
            if (!onRingFirst && !finished)
            {
                NoLeak.Check(false, $"{DescribeOvertake(job, access, move, start)}", nowNs);
                return;
            }
        }

        NoLeak.Pass();
    }

    private static string DescribeOvertake(GpuJob job, BufferAccess access, GpuJob move, TimeSpan start)
    {
        GpuBuffer storage = access.Buffer.Origin;
        string verb = access.Write ? "wrote" : "read";
        string what = access.Buffer.IsImported
            ? $"{access.Buffer.Name}, its import of {storage.Name} exported by {storage.Device.Name}, before {storage.Device.Name}'s {move} of that memory finished: a cross-device access to memory being moved"
            : $"{access.Buffer.Name} before {move} of its storage finished";
        string end = move.Finished.IsSignaled ? $"at {move.Finished.Timestamp.TotalMicroseconds:F1} µs" : "not yet";
        return string.Create(CultureInfo.InvariantCulture, $"{job} on {job.Engine.Device.Name} started at {start.TotalMicroseconds:F1} µs and {verb} {what} (the move finished {end})");
    }

    private void OnCompleted(GpuJob job, long nowNs)
    {
        if (_inFlight.Remove(job))
        {
            Volatile.Write(ref _inFlightCount, _inFlight.Count);
        }

        if (!_threadsMode)
        {
            CheckMoves(job, nowNs);
        }

        Watchdog.Check(nowNs - job.SubmitTime.Ns() <= _watchdogNs, $"{job} took {(nowNs - job.SubmitTime.Ns()) / 1e6:F3} ms to finish", nowNs);
        if (_predecessors.Remove(job, out List<GpuJob>? preds))
        {
            CheckWriter(job, preds, nowNs);
            _jobLists.Return(preds);
        }
        else if (!job.IsKernelJob && !job.Client.ExplicitSync)
        {
            WriterExclusive.Pass();
        }

        if (nowNs - _lastWatchdogScanNs > _watchdogNs / 4)
        {
            _lastWatchdogScanNs = nowNs;
            foreach (GpuJob pending in _inFlight)
            {
                long waited = nowNs - pending.SubmitTime.Ns();
                Watchdog.Check(waited <= _watchdogNs, $"{pending} still pending after {waited / 1e6:F3} ms", nowNs);
            }
        }
    }

    private void CheckWriter(GpuJob job, List<GpuJob> preds, long nowNs)
    {
        // A job that took a ring slot has its hardware fence (whatever its phase now: done, by the time its
        // completion is checked); one that never did touched nothing, and neither did one that waited on its ring
        // behind a hung job until the reset cancelled it (no start time).
        if (job.Hardware is null || job.StartTime is null)
        {
            return;
        }

        foreach (GpuJob p in preds)
        {
            if (p.Hardware is null)
            {
                continue;
            }

            bool ok = ReferenceEquals(p.Engine, job.Engine)
                ? p.Hardware!.Seqno < job.Hardware!.Seqno
                : p.Finished.IsSignaled && p.Finished.Timestamp.Ns() <= job.StartTime.Value.Ns();
            WriterExclusive.Check(ok, $"{job} overlapped earlier access {p} on a shared buffer", nowNs);
        }
    }

    /// <summary>Checks an export: its leaves are exactly the unsignalled fences seen just before, none later.</summary>
    /// <param name="buffer">The exported buffer.</param>
    /// <param name="exported">The sync file's fence.</param>
    /// <param name="expected">The buffer's unsignalled fences read just before the export.</param>
    /// <param name="maxJobIdAtExport">Each device's last job id when the export was made (job ids count per device).</param>
    public void CheckExport(GpuBuffer buffer, Fence exported, Fence[] expected, long[] maxJobIdAtExport)
    {
        lock (_gate)
        {
            var leaves = new HashSet<Fence>(ReferenceEqualityComparer.Instance);
            foreach (Fence leaf in FenceUnwrap.ForEach(exported))
            {
                leaves.Add(leaf);
                bool notLater = leaf is not GpuFence { Job: { } j } || j.Id <= maxJobIdAtExport[_devices.IndexOf(j.Engine.Device)];
                Snapshot.Check(notLater, $"export of {buffer.Name} holds {leaf.Describe()}, submitted after the export", _devices.NowNs);
            }

            foreach (Fence f in expected)
            {
                // Covered: the fence itself, or a later fence of its context (signals only after it). In threads
                // mode a reservation may replace a pending fence by its context's next one between the read of
                // the expected set and the export; the memory manager's moves do (kernel.ttm).
                Snapshot.Check(f.IsSignaled || leaves.Contains(f) || HoldsLaterOfContext(leaves, f),
                    $"export of {buffer.Name} misses pending {f.Describe()}", _devices.NowNs);
            }
        }
    }

    /// <summary>True when <paramref name="leaves"/> hold a later fence of <paramref name="f"/>'s context (a loop:
    /// Any with a lambda allocated a closure for every expected fence, whether the check needed it or not).</summary>
    private static bool HoldsLaterOfContext(HashSet<Fence> leaves, Fence f)
    {
        foreach (Fence l in leaves)
        {
            if (l.Context == f.Context && Fence.IsLater(l, f))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Re-checks an export later: the sync file still holds no fence newer than at export time.</summary>
    public void RecheckExport(GpuBuffer buffer, Fence exported, long[] maxJobIdAtExport) => CheckExport(buffer, exported, [], maxJobIdAtExport);

    /// <summary>Queries a timeline syncobj and checks it never goes back. The query runs under the
    /// checker's lock, so concurrent checks compare queries in the order they were made.</summary>
    public void CheckSyncObj(string name, SyncObj syncObj, ref ulong last)
    {
        lock (_gate)
        {
            ulong value = syncObj.QueryPoint();
            ulong previous = last;
            SyncObjMonotonic.Check(value >= previous, $"syncobj {name} query went back from {previous} to {value}", _devices.NowNs);
            last = Math.Max(previous, value);
        }
    }

    public void SampleManagedHeap()
    {
        long bytes = GC.GetTotalMemory(false);
        PeakManagedBytes = Math.Max(PeakManagedBytes, bytes);
        MemoryBounded.Check(bytes <= ManagedHeapLimitBytes, $"managed heap {bytes >> 20} MiB exceeds {ManagedHeapLimitBytes >> 20} MiB", _devices.NowNs);
    }

    /// <summary>
    /// Collects fully, then checks the retained heap against the first such sample plus the allowance
    /// and a bound per job in flight. <paramref name="extraAllowedBytes"/> covers what the run keeps on
    /// purpose (the trace recorder's events).
    /// </summary>
    public void SampleRetainedHeap(long extraAllowedBytes = 0)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        long bytes = GC.GetTotalMemory(false);
        int inFlight = Volatile.Read(ref _inFlightCount);

        if (BaselineRetainedBytes < 0)
        {
            BaselineRetainedBytes = bytes;
        }

        PeakRetainedBytes = Math.Max(PeakRetainedBytes, bytes);
        long allowed = BaselineRetainedBytes + HeapAllowanceBytes + (HeapPerJobInFlightBytes * inFlight) + extraAllowedBytes;
        HeapPerJob.Check(bytes <= allowed,
            $"after a full GC the managed heap holds {bytes >> 20} MiB with {inFlight} jobs in flight; allowed {allowed >> 20} MiB (first sample {BaselineRetainedBytes >> 20} MiB)", _devices.NowNs);
    }

    public void CheckDrained()
    {
        lock (_gate)
        {
            Liveness.Check(_inFlight.Count == 0, $"{_inFlight.Count} jobs never completed, e.g. {_inFlight.First()}", _devices.NowNs);
            Liveness.Check(_devices.JobsCompleted == _devices.JobsSubmitted, $"{_devices.JobsSubmitted - _devices.JobsCompleted} of {_devices.JobsSubmitted} jobs never completed", _devices.NowNs);
        }
    }

    /// <summary>Lists given back once used, emptied so that nothing stays reachable from the pool. Not
    /// thread-safe: the checker uses it under its gate.</summary>
    private sealed class ListPool<T>
    {
        private readonly Stack<List<T>> _spare = new();

        public List<T> Rent() => _spare.TryPop(out List<T>? list) ? list : [];

        public void Return(List<T> list)
        {
            list.Clear();
            _spare.Push(list);
        }
    }

    /// <summary>Jobs and buffers as keys, hashed by their id (unique on their device; another device's may collide,
    /// and reference equality tells them apart). PERF: the default comparer's virtual GetHashCode of an object,
    /// several times per job.</summary>
    private sealed class ById : IEqualityComparer<GpuJob>, IEqualityComparer<GpuBuffer>
    {
        public static readonly ById Instance = new();

        public bool Equals(GpuJob? x, GpuJob? y) => ReferenceEquals(x, y);

        public int GetHashCode(GpuJob job) => job.Id.GetHashCode();

        public bool Equals(GpuBuffer? x, GpuBuffer? y) => ReferenceEquals(x, y);

        public int GetHashCode(GpuBuffer buffer) => buffer.Id;
    }

    private sealed class BufferHistory
    {
        public GpuJob? LastWriter;
        public readonly List<GpuJob> Readers = [];
    }
}
