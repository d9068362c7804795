using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.ObjectPool;

namespace FenceCore.VirtualGpu;

/// <summary>
/// A virtual multi-engine GPU: engines with their own fence contexts, a DRM-style scheduler, implicit
/// sync through reservation objects, a memory manager whose moves and clears add KERNEL fences, hangs,
/// resets, and a leak detector that records any access to storage still being moved.
/// </summary>
/// <remarks>
/// <para>
/// Embedding: build it from a <see cref="GpuConfig"/>, create clients and buffers, submit jobs, and in
/// <see cref="GpuTimeMode.Virtual"/> advance time with <see cref="RunUntil"/>, <see cref="RunFor"/> or
/// <see cref="RunUntilIdle"/>. In virtual mode every call must come from the thread that advances time
/// (inside <see cref="Schedule"/> callbacks or between runs); in <see cref="GpuTimeMode.Threads"/>
/// clients may submit from any thread.
/// </para>
/// <para>
/// Locks: fences and reservations stay lock-free. An engine's ring and ready queue are guarded by that
/// engine's lock and an entity's queue by the entity's lock (each changed by whichever worker runs the
/// scheduler step); the memory manager's placement decisions serialize on one lock. No fence is signalled
/// while any of these is held, so callbacks never run under a GPU lock.
/// </para>
/// <para>Error policy on faults: the guilty job of an engine timeout ends with -ETIMEDOUT; innocent jobs
/// on the same ring end with -ECANCELED (they are not resubmitted); jobs of a killed client end with
/// -ESRCH; a job whose dependency does not signal within <see cref="GpuConfig.DependencyTimeout"/> ends
/// with -ETIME without running; device loss ends every pending job with -ENODEV. The scheduler does not
/// propagate a dependency's error into a job: like the kernel's, it leaves that to the submitter.</para>
/// </remarks>
public sealed class Gpu : IDisposable
{
    /// <summary>This GPU's meter: from <see cref="GpuConfig.MeterFactory"/> (which then owns it), or its own.</summary>
    private readonly Meter _meter;
    private readonly bool _ownsMeter;

    /// <summary>This GPU's meter, for tests.</summary>
    internal Meter MeterForTesting => _meter;
    private readonly Counter<long> _jobsSubmittedCounter;
    private readonly Counter<long> _jobsCompletedCounter;
    private readonly Counter<long> _fencesSignaledCounter;
    private readonly Counter<long> _waitsCounter;
    private readonly Counter<long> _timeoutsCounter;
    private readonly Counter<long> _resetsCounter;
    private readonly Counter<long> _movesCounter;

    private readonly GpuDispatcher _dispatcher;
    private readonly VirtualDispatcher? _virtual;

    /// <summary>Created on first use; a benign race would only make an equivalent second one.</summary>
    private TimeProvider? _timeProvider;
    private readonly Engine[] _engines;
    private readonly SchedEntity _kernelEntity;
    private readonly List<GpuClient> _clients = [];
    private readonly object _mmGate = new(); // memory manager: placement, LRU and accounting
    private readonly LinkedList<GpuBuffer> _lru = new();
    private readonly object _eventGate = new(); // serializes subscribe and unsubscribe (copy-on-write arrays)
    private readonly long _engineTimeoutNs;
    private readonly long _dependencyTimeoutNs;
    private Action<GpuEvent>[] _subscribers = [];
    private Action<GpuFence>[] _fenceSubscribers = [];
    private long _usedBytes;
    private long _peakUsedBytes;
    private long _nextJobId;
    private int _nextBufferId;
    private long _leaks;
    private long _consumerFailures;
    private long _jobsCompleted;
    private long _fencesSignaled;
    private ulong _digest = 14695981039346656037UL;
    private long _events;
    private int _lost;

    /// <summary>Builds a GPU. The configuration is validated first.</summary>
    public Gpu(GpuConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        _ownsMeter = config.MeterFactory is null;
        _meter = config.MeterFactory?.Create(new MeterOptions(MeterName) { Version = "0.1.0" }) ?? new Meter(MeterName, "0.1.0");
        _jobsSubmittedCounter = _meter.CreateCounter<long>("vgpu.jobs.submitted", "{job}", "Jobs submitted");
        _jobsCompletedCounter = _meter.CreateCounter<long>("vgpu.jobs.completed", "{job}", "Jobs whose finished fence signalled");
        _fencesSignaledCounter = _meter.CreateCounter<long>("vgpu.fences.signaled", "{fence}", "GPU fences signalled");
        _waitsCounter = _meter.CreateCounter<long>("vgpu.dependency.waits", "{wait}", "Jobs that had to wait for dependencies");
        _timeoutsCounter = _meter.CreateCounter<long>("vgpu.dependency.timeouts", "{job}", "Jobs failed because a dependency did not signal in time");
        _resetsCounter = _meter.CreateCounter<long>("vgpu.engine.resets", "{reset}", "Engine resets after a timeout");
        _movesCounter = _meter.CreateCounter<long>("vgpu.memory.moves", "{move}", "Buffer moves, evictions and clears");
        _engineTimeoutNs = (long)config.EngineTimeout.TotalNanoseconds;
        _dependencyTimeoutNs = (long)config.DependencyTimeout.TotalNanoseconds;
        _engines = [.. config.Engines.Select((e, i) => new Engine(i, e) { Owner = this })];
        if (config.Mode == GpuTimeMode.Virtual)
        {
            _virtual = new VirtualDispatcher();
            _dispatcher = _virtual;
        }
        else
        {
            _dispatcher = new ThreadedDispatcher(config.WorkerThreads) { WorkItemFailed = ReportConsumerFailure };
        }

        _kernelEntity = new SchedEntity(null, [.. _engines.Where(e => e.Kind == EngineKind.Copy)], GpuPriority.Kernel, "kernel.ttm");
    }

    /// <summary>The configuration.</summary>
    public GpuConfig Config { get; }

    /// <summary>The name of every GPU's meter (its instruments are <c>vgpu.*</c> counters); for
    /// <c>dotnet-counters monitor --counters FenceCore.VirtualGpu</c> or a <see cref="MeterListener"/>.</summary>
    public const string MeterName = "FenceCore.VirtualGpu";

    /// <summary>The engines.</summary>
    public IReadOnlyList<Engine> Engines => _engines;

    /// <summary>The clients created so far.</summary>
    public IReadOnlyList<GpuClient> Clients
    {
        get
        {
            lock (_clients)
            {
                return [.. _clients];
            }
        }
    }

    /// <summary>The current time in ns: virtual time, or the monotonic clock in threads mode.</summary>
    /// <remarks>The simulator's times and durations (<see cref="NowNs"/>, <see cref="RunFor"/>,
    /// <see cref="JobDescription.DurationNs"/>) stay in whole ns on purpose: a <see cref="TimeSpan"/> counts
    /// 100 ns ticks, coarser than the jobs and moves it schedules. For waits and timeouts that must follow
    /// this clock, use <see cref="TimeProvider"/>.</remarks>
    public long NowNs => _dispatcher.NowNs;

    /// <summary>
    /// The GPU's clock as a <see cref="System.TimeProvider"/>: in virtual mode, virtual time (timestamps in ns,
    /// timers that fire when the event loop reaches them), so waits and timeouts given it follow the
    /// simulation; in threads mode, <see cref="TimeProvider.System"/>.
    /// </summary>
    public TimeProvider TimeProvider => _timeProvider ??= _virtual is null ? TimeProvider.System : new GpuTimeProvider(this);

    /// <summary>Accesses recorded by the leak detector (storage touched before its move or clear signalled).</summary>
    public long LeakCount => Interlocked.Read(ref _leaks);

    /// <summary>Jobs completed (finished fence signalled), including failed ones.</summary>
    public long JobsCompleted => Interlocked.Read(ref _jobsCompleted);

    /// <summary>Jobs submitted.</summary>
    public long JobsSubmitted => Interlocked.Read(ref _nextJobId);

    /// <summary>GPU fences signalled.</summary>
    public long FencesSignaled => Interlocked.Read(ref _fencesSignaled);

    /// <summary>Device memory in use (bytes), by the memory manager's accounting.</summary>
    public long DeviceMemoryUsed => Interlocked.Read(ref _usedBytes);

    /// <summary>The highest <see cref="DeviceMemoryUsed"/> seen.</summary>
    public long PeakDeviceMemoryUsed => Interlocked.Read(ref _peakUsedBytes);

    /// <summary>
    /// Exceptions thrown by consumers (fence callbacks on GPU fences, event and fence-signal subscribers)
    /// since the GPU was created. Each one was caught where it was thrown, counted here and passed to
    /// <see cref="ConsumerFailed"/>; none reaches the scheduler, so a consumer cannot wedge it.
    /// </summary>
    public long ConsumerFailures => Interlocked.Read(ref _consumerFailures);

    /// <summary>Raised for each consumer exception (see <see cref="ConsumerFailures"/>), on the thread that
    /// caught it. A handler that throws is counted too, and otherwise ignored.</summary>
    public event Action<Exception>? ConsumerFailed;

    /// <summary>A fault-injection point for tests: runs once a submission is armed and its fence is in the
    /// reservations, inside the submission's one failure path.</summary>
    internal Action<GpuJob>? AfterArmForTesting { get; set; }

    /// <summary>True after <see cref="LoseDevice"/>.</summary>
    public bool IsLost => Volatile.Read(ref _lost) != 0;

    /// <summary>
    /// A 64-bit digest of every event so far (kind, time, job, engine, error, buffer): in virtual mode an
    /// ordered FNV-style chain, so equal seeds and inputs give equal digests, event for event; in threads
    /// mode a sum of per-event hashes (times and interleavings vary there, so it is informative only).
    /// </summary>
    public ulong Digest => (ulong)Interlocked.Read(ref Unsafe.As<ulong, long>(ref _digest));

    /// <summary>Events raised so far.</summary>
    public long EventCount => Interlocked.Read(ref _events);

    /// <summary>Work items waiting in virtual mode (0 in threads mode).</summary>
    public int PendingEvents => _virtual?.Pending ?? 0;

    // ----------------------------------------------------------------------------------------------
    // Setup

    /// <summary>Creates a client.</summary>
    /// <param name="name">Name for traces.</param>
    /// <param name="priority">Priority of its entities.</param>
    /// <param name="explicitSync">Opt out of implicit sync (BOOKKEEP fences; waits only for KERNEL ones).</param>
    public GpuClient CreateClient(string name, GpuPriority priority = GpuPriority.Normal, bool explicitSync = false)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (priority == GpuPriority.Kernel)
        {
            throw new ArgumentException("The Kernel priority is reserved for the memory manager's entity.", nameof(priority));
        }

        lock (_clients)
        {
            var client = new GpuClient(this, _clients.Count, name, priority, explicitSync);
            _clients.Add(client);
            return client;
        }
    }

    /// <summary>Creates a buffer. Its storage is placed (and cleared, with a KERNEL fence) on first use.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The size is not positive or exceeds device memory.</exception>
    public GpuBuffer CreateBuffer(long size, string? name = null)
    {
        if (size <= 0 || size > Config.DeviceMemoryBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, $"A buffer's size must be positive and fit in device memory ({Config.DeviceMemoryBytes} bytes).");
        }

        int id = Interlocked.Increment(ref _nextBufferId);
        return new GpuBuffer(id, size, name ?? $"bo{id}");
    }

    /// <summary>Subscribes to events. Handlers run on the GPU's thread (the loop, or a worker) and must be quick.</summary>
    public IDisposable Subscribe(Action<GpuEvent> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        lock (_eventGate)
        {
            _subscribers = [.. _subscribers, handler];
        }

        return new Unsubscriber(() =>
        {
            lock (_eventGate)
            {
                _subscribers = [.. _subscribers.Where(h => h != handler)];
            }
        });
    }

    /// <summary>
    /// Opens a bounded feed of this GPU's events, for observers that must not run code on the
    /// scheduler's paths: read it from any thread, at any pace. A full feed never blocks the GPU; the
    /// events that did not fit are counted in <see cref="GpuEventFeed.Dropped"/> instead.
    /// </summary>
    /// <param name="capacity">How many unread events the feed holds.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="capacity"/> is not positive.</exception>
    public GpuEventFeed OpenEventFeed(int capacity = 4096)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        var stream = new GpuEventFeed(capacity);
        stream.Subscription = Subscribe(stream.Offer);
        return stream;
    }

    /// <summary>Subscribes to every GPU fence signal (for checkers; costs a call per fence).</summary>
    public IDisposable SubscribeFenceSignals(Action<GpuFence> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        lock (_eventGate)
        {
            _fenceSubscribers = [.. _fenceSubscribers, handler];
        }

        return new Unsubscriber(() =>
        {
            lock (_eventGate)
            {
                _fenceSubscribers = [.. _fenceSubscribers.Where(h => h != handler)];
            }
        });
    }

    // ----------------------------------------------------------------------------------------------
    // Time

    /// <summary>Runs <paramref name="action"/> at virtual (or monotonic) time <paramref name="timeNs"/>.</summary>
    public void Schedule(long timeNs, Action action)
    {
        ArgumentNullException.ThrowIfNull(action);
        _dispatcher.PostAt(timeNs, static a => ((Action)a!)(), action);
    }

    /// <summary>Virtual mode: schedules from any thread (the time provider's timers, which async
    /// continuations create on the thread pool); the loop picks it up before its next event.</summary>
    internal void ScheduleFromAnyThread(long timeNs, Action action) =>
        RequireVirtual().PostAtFromAnyThread(timeNs, static a => ((Action)a!)(), action);

    /// <summary>Virtual mode: runs every event up to <paramref name="timeNs"/> and sets the clock there.</summary>
    public void RunUntil(long timeNs) => RequireVirtual().RunUntil(timeNs);

    /// <summary>Virtual mode: advances the clock by <paramref name="durationNs"/>.</summary>
    public void RunFor(long durationNs) => RequireVirtual().RunUntil(NowNs + durationNs);

    /// <summary>Virtual mode: runs until no event is due before <paramref name="limitNs"/> (default: the far future).</summary>
    public void RunUntilIdle(long limitNs = long.MaxValue / 8) => RequireVirtual().RunUntilIdle(limitNs);

    /// <summary>Virtual mode: runs one event; false when none is left.</summary>
    public bool RunOne() => RequireVirtual().RunOne();

    /// <summary>Threads mode: waits until no work is queued or running, up to <paramref name="timeout"/>.</summary>
    public bool WaitForIdle(TimeSpan timeout)
    {
        if (_dispatcher is not ThreadedDispatcher threaded)
        {
            RunUntilIdle();
            return true;
        }

        var sw = System.Diagnostics.Stopwatch.StartNew();
        int idleStreak = 0;
        while (sw.Elapsed < timeout)
        {
            idleStreak = threaded.IsIdle ? idleStreak + 1 : 0;
            if (idleStreak >= 3)
            {
                return true;
            }

            Thread.Sleep(1);
        }

        return false;
    }

    private VirtualDispatcher RequireVirtual() =>
        _virtual ?? throw new InvalidOperationException("Advancing time by hand needs GpuTimeMode.Virtual; in Threads mode time is real.");

    // ----------------------------------------------------------------------------------------------
    // Submission

    /// <summary>
    /// Submits a job: places its buffers (moves and clears on a copy engine add KERNEL fences), arms it on
    /// its entity, does implicit sync (reads its dependencies and adds its finished fence on every buffer
    /// as one step, under a wait-die acquire context when it touches several), and pushes it.
    /// </summary>
    /// <exception cref="InvalidOperationException">The device is lost (-ENODEV).</exception>
    public GpuJob Submit(GpuClient client, JobDescription desc)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(desc);
        if (!ReferenceEquals(client.Gpu, this))
        {
            throw new ArgumentException("The client belongs to another GPU.", nameof(client));
        }

        ValidateDescription(desc);
        if (IsLost)
        {
            throw new FenceErrnoException(-Errno.ENODEV, "The device is lost: no job can be submitted");
        }

        SchedEntity entity = client.EntityFor(desc.Engine);
        Fence[] syncObjDeps = ResolveSyncObjWaits(desc.SyncObjWaits); // fails before any side effect
        BufferAccess[] accesses = Deduplicate(desc.Buffers);

        // 1. Memory: make every buffer resident and pin it until its fence is in place.
        var storage = new Fence?[accesses.Length];
        if (accesses.Length > 0)
        {
            lock (_mmGate)
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
        }

        // One failure path from here on: whatever throws after the job is armed fails the job with
        // -ECANCELED (its fences signal, so no reservation keeps an unsignalled fence) and unpins.
        GpuJob? armed = null;
        bool isHead;
        try
        {
            lock (entity.Gate)
            {
                // 2. Arm: pick the engine (load balancing only when idle), take the next seqno, create fences.
                armed = Arm(client, entity, desc);
                armed.StorageFences = storage;
                armed.Accesses = accesses;

                // 3. Implicit sync, then the explicit dependencies.
                var deps = new List<Fence>();
                ImplicitSync(client, armed, accesses, deps);
                AfterArmForTesting?.Invoke(armed); // the job's fence is now in its buffers' reservations
                armed.ImplicitDependencyCount = deps.Count;
                AddExplicit(desc.Dependencies, deps);
                foreach (SyncFile file in desc.SyncFiles)
                {
                    AddExplicit([file.Fence], deps);
                }

                AddExplicit(syncObjDeps, deps);
                armed.SubmittedDependencies = deps;
                armed.EffectiveDependencies = Normalize(armed, deps);

                // 4. Push.
                if (entity.Killed)
                {
                    armed.Phase = 2;
                    isHead = false;
                }
                else
                {
                    entity.Queue.Enqueue(armed);
                    isHead = entity.Queue.Count == 1;
                }
            }
        }
        catch (Exception)
        {
            if (armed is not null && Interlocked.CompareExchange(ref armed.Phase, 2, 0) == 0)
            {
                FailJob(armed, -Errno.ECANCELED);
            }

            Unpin(accesses);
            throw;
        }

        GpuJob job = armed;
        Unpin(accesses);

        foreach (SyncObjPoint signal in desc.SyncObjSignals)
        {
            if (signal.Point == 0)
            {
                signal.SyncObj.Replace(job.Finished);
            }
            else
            {
                signal.SyncObj.AddPoint(signal.Point, job.Finished);
            }
        }

        _jobsSubmittedCounter.Add(1);
        Raise(new GpuEvent(GpuEventKind.JobSubmitted, NowNs, job, job.Engine, 0));
        if (job.Phase == 2)
        {
            // Killed meanwhile: by Kill (-ESRCH), or by LoseDevice (-ENODEV), which sets _lost first.
            FailJob(job, IsLost ? -Errno.ENODEV : -Errno.ESRCH);
        }
        else if (isHead)
        {
            BeginDependencyWait(job);
        }

        return job;
    }

    private void Unpin(BufferAccess[] accesses)
    {
        if (accesses.Length > 0)
        {
            lock (_mmGate)
            {
                foreach (BufferAccess a in accesses)
                {
                    a.Buffer.PinCount--;
                }
            }
        }
    }

    private static void ValidateDescription(JobDescription desc)
    {
        if (desc.DurationNs < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(desc), desc.DurationNs, "A job's duration must not be negative.");
        }

        if (desc.Credits < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(desc), desc.Credits, "A job takes at least one credit.");
        }

        for (int i = 0; i < desc.Buffers.Count; i++)
        {
            if (desc.Buffers[i].Buffer is null)
            {
                throw new ArgumentException($"Buffer access {i} has no buffer.", nameof(desc));
            }
        }

        for (int i = 0; i < desc.SyncFiles.Count; i++)
        {
            if (desc.SyncFiles[i] is null)
            {
                throw new ArgumentException($"Sync file {i} is null.", nameof(desc));
            }
        }

        for (int i = 0; i < desc.SyncObjSignals.Count; i++)
        {
            if (desc.SyncObjSignals[i].SyncObj is null)
            {
                throw new ArgumentException($"Syncobj signal {i} has no syncobj.", nameof(desc));
            }
        }

        for (int i = 0; i < desc.Dependencies.Count; i++)
        {
            if (desc.Dependencies[i] is null)
            {
                throw new ArgumentException($"Dependency {i} is null.", nameof(desc));
            }
        }
    }

    private static Fence[] ResolveSyncObjWaits(IReadOnlyList<SyncObjPoint> waits)
    {
        if (waits.Count == 0)
        {
            return [];
        }

        var fences = new Fence[waits.Count];
        for (int i = 0; i < waits.Count; i++)
        {
            SyncObjPoint w = waits[i];
            if (w.SyncObj is null || !w.SyncObj.TryFindFence(w.Point, out Fence? f))
            {
                throw new FenceErrnoException(-Errno.EINVAL, $"Syncobj wait {i} (point {w.Point}) has not been submitted; a submission cannot wait for a future point");
            }

            fences[i] = f!;
        }

        return fences;
    }

    private static BufferAccess[] Deduplicate(IReadOnlyList<BufferAccess> buffers)
    {
        if (buffers.Count == 0)
        {
            return [];
        }

        var result = new BufferAccess[buffers.Count];
        int n = 0;
        foreach (BufferAccess a in buffers)
        {
            int at = 0;
            while (at < n && !ReferenceEquals(result[at].Buffer, a.Buffer))
            {
                at++;
            }

            if (at == n)
            {
                result[n++] = a;
            }
            else if (a.Write)
            {
                result[at] = a; // a write dominates a read of the same buffer
            }
        }

        return n == result.Length ? result : result[..n];
    }

    private GpuJob Arm(GpuClient? client, SchedEntity entity, JobDescription desc)
    {
        if (entity.Queue.Count == 0 && (entity.LastFinished is null || entity.LastFinished.IsSignaled))
        {
            entity.CurrentEngine = PickBest(entity.Engines); // drm_sched_pick_best, only when idle
        }

        long id = Interlocked.Increment(ref _nextJobId);
        var job = new GpuJob(id, client!, entity, desc)
        {
            IsKernelJob = client is null,
            SubmitNs = NowNs,
            Engine = entity.CurrentEngine,
            Credits = Math.Min(desc.Credits, entity.CurrentEngine.Config.CreditLimit),
        };
        ulong seqno = ++entity.NextSeqno;
        job.Scheduled = new GpuFence(this, entity.ScheduledContext, seqno, GpuFenceKind.Scheduled, job, entity.ScheduledTimeline);
        job.Finished = new GpuFence(this, entity.FinishedContext, seqno, GpuFenceKind.Finished, job, entity.FinishedTimeline);
        job.PreviousFinished = entity.LastFinished;
        job.PreviousScheduled = entity.LastScheduled;
        entity.LastFinished = job.Finished;
        entity.LastScheduled = job.Scheduled;
        Interlocked.Increment(ref entity.CurrentEngine.Score);
        return job;
    }

    private static Engine PickBest(IReadOnlyList<Engine> engines)
    {
        Engine best = engines[0];
        for (int i = 1; i < engines.Count; i++)
        {
            if (Volatile.Read(ref engines[i].Score) < Volatile.Read(ref best.Score))
            {
                best = engines[i];
            }
        }

        return best;
    }

    private static void AddExplicit(IReadOnlyList<Fence> explicitDeps, List<Fence> deps)
    {
        foreach (Fence f in explicitDeps)
        {
            foreach (Fence leaf in FenceUnwrap.ForEach(f))
            {
                deps.Add(leaf);
            }
        }
    }

    private void ImplicitSync(GpuClient client, GpuJob job, BufferAccess[] accesses, List<Fence> deps)
    {
        if (accesses.Length == 0)
        {
            return;
        }

        bool skipKernel = client.ExplicitSync && Config.InjectSkipKernelFences;
        if (accesses.Length == 1 || skipKernel)
        {
            foreach (BufferAccess a in accesses)
            {
                (FenceUsage usage, FenceUsage waitFor) = Usages(client, a.Write);
                if (skipKernel)
                {
                    a.Buffer.Reservation.AddFence(job.Finished, usage); // the injected bug: no dependencies read
                }
                else
                {
                    a.Buffer.Reservation.AddFenceWithDependencies(job.Finished, usage, waitFor, deps);
                }
            }

            return;
        }

        var objects = new Reservation[accesses.Length];
        for (int i = 0; i < accesses.Length; i++)
        {
            objects[i] = accesses[i].Buffer.Reservation;
        }

        ReservationAcquireContext ctx = s_acquireContexts.Get();
        try
        {
            ctx.Renew();
            ctx.LockAll(objects);
            foreach (BufferAccess a in accesses)
            {
                (FenceUsage usage, FenceUsage waitFor) = Usages(client, a.Write);
                ctx.AddFence(a.Buffer.Reservation, job.Finished, usage, waitFor, deps);
            }
        }
        finally
        {
            ctx.UnlockAll();
            s_acquireContexts.Return(ctx);
        }
    }

    /// <summary>
    /// The acquire contexts of multi-buffer submissions, reused (each renewed with a fresh stamp). PERF:
    /// AcquireContextPoolBenchmarks measured Get/Return around four locks at 0.78x a new context each time,
    /// and 0 B instead of 128 B per submission.
    /// </summary>
    private static readonly ObjectPool<ReservationAcquireContext> s_acquireContexts =
        new DefaultObjectPool<ReservationAcquireContext>(new AcquireContextPolicy(), Environment.ProcessorCount * 4);

    private sealed class AcquireContextPolicy : PooledObjectPolicy<ReservationAcquireContext>
    {
        public override ReservationAcquireContext Create() => new();

        public override bool Return(ReservationAcquireContext obj) => obj.Held.Count == 0;
    }

    private static (FenceUsage Usage, FenceUsage WaitFor) Usages(GpuClient client, bool write) =>
        client.ExplicitSync
            ? (FenceUsage.Bookkeep, FenceUsage.Kernel)
            : (write ? FenceUsage.Write : FenceUsage.Read, FenceUsages.WaitLevelFor(write));

    /// <summary>
    /// The scheduler's dependency rules: one fence per context (the later one), none of the job's own
    /// entity, none already signalled, and a same-engine finished fence replaced by its scheduled fence
    /// (the ring runs in order) unless it already carries an error.
    /// </summary>
    private static Fence[] Normalize(GpuJob job, List<Fence> deps)
    {
        if (deps.Count == 0)
        {
            return [];
        }

        var result = new List<Fence>(deps.Count);
        foreach (Fence dep in deps)
        {
            Fence f = dep;
            if (f.Context == job.Entity.ScheduledContext || f.Context == job.Entity.FinishedContext || f.Poll())
            {
                continue;
            }

            if (f is GpuFence { Kind: GpuFenceKind.Finished, Job: { } other } && ReferenceEquals(other.Engine, job.Engine) && f.Error == 0)
            {
                f = other.Scheduled;
                if (f.Poll())
                {
                    continue;
                }
            }

            int at = 0;
            while (at < result.Count && result[at].Context != f.Context)
            {
                at++;
            }

            if (at == result.Count)
            {
                result.Add(f);
            }
            else if (Fence.IsLater(f, result[at]))
            {
                result[at] = f;
            }
        }

        return [.. result];
    }

    // ----------------------------------------------------------------------------------------------
    // Memory manager

    private void EnsureResident(GpuBuffer buffer, BufferAccess[] pinnedByCaller)
    {
        if (buffer.Placement == BufferPlacement.Device)
        {
            _lru.Remove(buffer.LruNode!);
            _lru.AddLast(buffer.LruNode!);
            return;
        }

        List<Fence>? evictions = null;
        while (_usedBytes + buffer.Size > Config.DeviceMemoryBytes)
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
                    $"Device memory exhausted: {_usedBytes} of {Config.DeviceMemoryBytes} bytes are held by buffers pinned by submissions in flight; {buffer.Name} ({buffer.Size} bytes) cannot be placed.");
            }

            // Evict: copy out after everything that uses the victim (BOOKKEEP level), as a KERNEL fence.
            GpuJob evict = SubmitKernelJob(victim, null, $"evict {victim.Name}");
            (evictions ??= []).Add(evict.Finished);
            victim.Placement = BufferPlacement.System;
            _lru.Remove(victim.LruNode!);
            Interlocked.Add(ref _usedBytes, -victim.Size);
        }

        // Move in (or clear on first placement) into the space the evictions free.
        GpuJob move = SubmitKernelJob(buffer, evictions, buffer.StorageFence is null ? $"clear {buffer.Name}" : $"move {buffer.Name}");
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

    private GpuJob SubmitKernelJob(GpuBuffer buffer, List<Fence>? extraDeps, string label)
    {
        long durationNs = Math.Max(1, buffer.Size / Config.CopyBytesPerMicrosecond) * 1000;
        var desc = new JobDescription { Engine = EngineKind.Copy, DurationNs = durationNs, Label = label };
        GpuJob job;
        bool isHead;
        lock (_kernelEntity.Gate)
        {
            job = Arm(null, _kernelEntity, desc);
            var deps = new List<Fence>();
            if (extraDeps is not null)
            {
                deps.AddRange(extraDeps);
            }

            // A move waits for everything on the buffer, bookkeeping included, and is itself a KERNEL fence.
            buffer.Reservation.AddFenceWithDependencies(job.Finished, FenceUsage.Kernel, FenceUsage.Bookkeep, deps);
            job.EffectiveDependencies = Normalize(job, deps);
            if (_kernelEntity.Killed)
            {
                job.Phase = 2; // the device was lost meanwhile: fail the move instead of stranding its fence
                isHead = false;
            }
            else
            {
                _kernelEntity.Queue.Enqueue(job);
                isHead = _kernelEntity.Queue.Count == 1;
            }
        }

        _movesCounter.Add(1);
        Raise(new GpuEvent(GpuEventKind.JobSubmitted, NowNs, job, job.Engine, 0, buffer));
        if (job.Phase == 2)
        {
            FailJob(job, -Errno.ENODEV);
        }
        else if (isHead)
        {
            BeginDependencyWait(job);
        }

        return job;
    }

    // ----------------------------------------------------------------------------------------------
    // Scheduling

    private void BeginDependencyWait(GpuJob job)
    {
        if (job.EffectiveDependencies.Count > 0)
        {
            _waitsCounter.Add(1);
        }

        job.Waiter ??= new DependencyWaiter(this, job);
        job.Waiter.Begin();
    }

    internal void ArmDependencyTimeout(DependencyWaiter waiter) =>
        _dispatcher.PostAt(NowNs + _dependencyTimeoutNs, static s => ((DependencyWaiter)s!).Gpu.OnDependencyTimeout((DependencyWaiter)s!), waiter);

    internal void JobDependenciesMet(GpuJob job) => _dispatcher.Post(static s => ((GpuJob)s!).Engine.Owner!.OnJobReady((GpuJob)s!), job);

    private void OnDependencyTimeout(DependencyWaiter waiter)
    {
        GpuJob? job = waiter.TryAbandon();
        if (job is null)
        {
            return; // the dependencies signalled, or the job was killed, first
        }

        if (Interlocked.CompareExchange(ref job.Phase, 2, 0) != 0)
        {
            return;
        }

        _timeoutsCounter.Add(1);
        Raise(new GpuEvent(GpuEventKind.DependencyTimeout, NowNs, job, job.Engine, -Errno.ETIME));
        FailJob(job, -Errno.ETIME);
        AdvanceEntity(job);
    }

    private void OnJobReady(GpuJob job)
    {
        Engine engine = job.Engine;
        lock (engine.Gate)
        {
            SchedEntity entity = job.Entity;
            long vruntime = Math.Max(entity.VRuntime, engine.MinVRuntime);
            entity.VRuntime = vruntime;
            engine.Ready.Enqueue(job, ReadyKey.For(entity, vruntime, engine.ReadySeq++));
        }

        Kick(engine);
    }

    /// <summary>The scheduler's main step: start ready jobs while the ring has credits.</summary>
    private void Kick(Engine engine)
    {
        while (true)
        {
            GpuJob? job;
            long start;
            bool hang;
            lock (engine.Gate)
            {
                if (IsLost || !engine.Ready.TryPeek(out job, out ReadyKey key))
                {
                    return;
                }

                if (Volatile.Read(ref job.Phase) != 0)
                {
                    engine.Ready.Dequeue(); // failed while ready (killed, timed out, device lost)
                    continue;
                }

                if (engine.CreditsInUse + job.Credits > engine.Config.CreditLimit)
                {
                    return; // ring full: credit_limit
                }

                if (Interlocked.CompareExchange(ref job.Phase, 1, 0) != 0)
                {
                    engine.Ready.Dequeue();
                    continue;
                }

                engine.Ready.Dequeue();
                engine.MinVRuntime = Math.Max(engine.MinVRuntime, key.VRuntime);
                job.Entity.VRuntime = key.VRuntime + ReadyKey.Charge(job.Entity.Priority, job.Description.DurationNs);
                engine.CreditsInUse += job.Credits;
                engine.Ring.Add(job);
                job.State = GpuJobState.Running;
                hang = job.Description.Hang;
                long duration = Config.Mode == GpuTimeMode.Virtual ? job.Description.DurationNs : 0;
                start = Math.Max(NowNs, engine.LastEndNs);
                job.StartNs = start;
                if (hang)
                {
                    engine.LastEndNs = long.MaxValue / 4; // the ring stalls behind a hung job
                }
                else
                {
                    job.EndNs = start + duration;
                    engine.LastEndNs = job.EndNs;
                }

                job.Hardware = new GpuFence(this, engine.RingContext, ++engine.NextRingSeqno, GpuFenceKind.Hardware, job, engine.RingTimeline);
            }

            CheckStorage(job, start);
            SignalAfter(job.PreviousScheduled, job.Scheduled, 0, job: null);
            Raise(new GpuEvent(GpuEventKind.JobStarted, NowNs, job, engine, 0));
            AdvanceEntity(job);

            if (start >= long.MaxValue / 8)
            {
                continue; // stalled behind a hung job: the reset that clears the hang cancels it too
            }

            if (hang || job.Description.DurationNs >= _engineTimeoutNs)
            {
                // TDR: armed from when the job starts executing.
                _dispatcher.PostAt(start + _engineTimeoutNs, static s => ((GpuJob)s!).Engine.Owner!.OnEngineTimeout((GpuJob)s!), job);
            }

            if (!hang)
            {
                _dispatcher.PostAt(job.EndNs, static s => ((GpuJob)s!).Engine.Owner!.OnHardwareDone((GpuJob)s!), job);
            }
        }
    }

    private void AdvanceEntity(GpuJob job)
    {
        SchedEntity entity = job.Entity;
        GpuJob? next = null;
        lock (entity.Gate)
        {
            if (entity.Queue.TryPeek(out GpuJob? head) && ReferenceEquals(head, job))
            {
                entity.Queue.Dequeue();
                entity.Queue.TryPeek(out next);
            }
        }

        if (next is not null)
        {
            BeginDependencyWait(next);
        }
    }

    private void OnHardwareDone(GpuJob job)
    {
        job.HardwareDone = true;
        DrainCompleted(job.Engine);
    }

    private void OnEngineTimeout(GpuJob job)
    {
        Engine engine = job.Engine;
        lock (engine.Gate)
        {
            if (job.State != GpuJobState.Running || job.HardwareDone || !engine.Ring.Contains(job))
            {
                return; // finished in time, or already reset
            }

            // Reset: the head is guilty, everything else on the ring is an innocent casualty.
            for (int i = 0; i < engine.Ring.Count; i++)
            {
                GpuJob j = engine.Ring[i];
                j.PendingError = i == 0 ? -Errno.ETIMEDOUT : -Errno.ECANCELED;
                j.HardwareDone = true;
            }

            engine.LastEndNs = NowNs;
            engine.Resets++;
        }

        _resetsCounter.Add(1);
        Raise(new GpuEvent(GpuEventKind.EngineReset, NowNs, job, engine, -Errno.ETIMEDOUT));
        DrainCompleted(engine);
    }

    /// <summary>Moves finished ring jobs to the completion queue in ring order and signals them, one
    /// drainer at a time, so ring and entity fences signal in seqno order on any number of workers.</summary>
    private void DrainCompleted(Engine engine)
    {
        lock (engine.Gate)
        {
            while (engine.Ring.Count > 0 && engine.Ring[0].HardwareDone)
            {
                GpuJob j = engine.Ring[0];
                engine.Ring.RemoveAt(0);
                engine.CreditsInUse -= j.Credits;
                engine.Completed.Enqueue(j);
            }
        }

        engine.Drainer.Drain(engine, static e => e.Owner!.SignalNextCompleted(e), static e =>
        {
            lock (e.Gate)
            {
                return e.Completed.Count > 0;
            }
        });

        Kick(engine);
    }

    /// <summary>Signals the oldest completed job of the engine; false when none is left. Runs under the engine's
    /// <see cref="Engine.Drainer"/>, so one thread at a time, in ring order.</summary>
    private bool SignalNextCompleted(Engine engine)
    {
        GpuJob? j;
        lock (engine.Gate)
        {
            if (!engine.Completed.TryDequeue(out j))
            {
                return false;
            }
        }

        int error = j.PendingError;
        j.State = GpuJobState.Done;
        Interlocked.Decrement(ref engine.Score);

        // Consumers' exceptions are caught where they are thrown (GpuFence.OnCallbackFailed, Raise):
        // nothing a callback or subscriber does comes back here.
        j.Hardware!.SignalAt(error, NowNs);
        SignalAfter(j.PreviousFinished, j.Finished, error, j);
        return true;
    }

    /// <summary>
    /// Ends a job that never ran with <paramref name="error"/>. Like every scheduled and finished fence,
    /// they signal only after the entity's previous ones (<see cref="SignalAfter"/>).
    /// </summary>
    private void FailJob(GpuJob job, int error)
    {
        job.State = GpuJobState.Done;
        Interlocked.Decrement(ref job.Engine.Score);
        SignalAfter(job.PreviousScheduled, job.Scheduled, error, job: null);
        SignalAfter(job.PreviousFinished, job.Finished, error, job);
    }

    /// <summary>
    /// Signals an entity fence only once the entity's previous fence of the same kind has signalled
    /// (at once when it has, else from a work item posted by its callback). Every scheduled and finished
    /// fence goes through here, so an entity's contexts stay in seqno order on any number of workers,
    /// even when a kill or timeout on one thread races with the scheduler on another. Posting, not
    /// signalling inside the callback, keeps a long run of failed jobs from recursing.
    /// </summary>
    private void SignalAfter(GpuFence? previous, GpuFence fence, int error, GpuJob? job)
    {
        if (previous is null || previous.IsSignaled || !previous.AddCallback(new SignalAfterPrevious(this, fence, error, job)))
        {
            SignalFailed(fence, error, job);
        }
    }

    private void SignalFailed(GpuFence fence, int error, GpuJob? job)
    {
        fence.SignalAt(error, NowNs);
        if (job is not null)
        {
            Interlocked.Increment(ref _jobsCompleted);
            _jobsCompletedCounter.Add(1);
            Raise(new GpuEvent(GpuEventKind.JobCompleted, NowNs, job, job.Engine, error));

            // Let go of the dependency graph: a finished job's dependencies (and theirs, through each
            // fence's job) would otherwise keep every earlier job alive and memory would grow with the run.
            job.ReleaseDependencies();
        }
    }

    /// <summary>
    /// True when the move that established some storage runs ahead of <paramref name="job"/> on the same
    /// ring: the ring executes in order, so the job touches the storage only after the move, even though
    /// the move's finished fence has not signalled yet (same-engine dependencies are pipelined).
    /// </summary>
    private static bool OrderedOnRing(Fence move, GpuJob job) =>
        move is GpuFence { Job: { Hardware: { } moveHw } mover } &&
        ReferenceEquals(mover.Engine, job.Engine) && job.Hardware is { } jobHw && moveHw.Seqno < jobHw.Seqno;

    private void CheckStorage(GpuJob job, long startNs)
    {
        Fence?[] storage = job.StorageFences;
        for (int i = 0; i < storage.Length; i++)
        {
            if (storage[i] is { } move && !move.Poll() && !OrderedOnRing(move, job))
            {
                if (startNs > NowNs)
                {
                    // Execution begins later (behind earlier ring work): check then.
                    _dispatcher.PostAt(startNs, static s => ((GpuJob)s!).Engine.Owner!.CheckStorageNow((GpuJob)s!), job);
                }
                else
                {
                    RecordLeak(job, job.Accesses[i].Buffer);
                }

                return;
            }
        }
    }

    private void CheckStorageNow(GpuJob job)
    {
        Fence?[] storage = job.StorageFences;
        for (int i = 0; i < storage.Length; i++)
        {
            if (storage[i] is { } move && !move.Poll() && !OrderedOnRing(move, job))
            {
                RecordLeak(job, job.Accesses[i].Buffer);
                return;
            }
        }
    }

    private void RecordLeak(GpuJob? job, GpuBuffer? buffer)
    {
        Interlocked.Increment(ref _leaks);
        Raise(new GpuEvent(GpuEventKind.LeakDetected, NowNs, job, job?.Engine, 0, buffer));
    }

    // ----------------------------------------------------------------------------------------------
    // CPU access, kill, device loss

    /// <summary>
    /// A CPU access to <paramref name="buffer"/>: it begins once everything the direction must wait for
    /// has signalled (KERNEL fences always; a write also waits for readers), then runs
    /// <paramref name="onAccess"/>. The leak detector checks the storage at that moment.
    /// </summary>
    public void CpuAccess(GpuBuffer buffer, bool write, Action<GpuBuffer>? onAccess = null)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        new CpuAccessCallback(this, buffer, write, onAccess).Run();
    }

    /// <summary>Kills a client: its queued jobs end with -ESRCH, in order; running jobs finish.
    /// Later submissions from it end with -ESRCH at once. Mirrors <c>drm_sched_entity_kill</c>.</summary>
    public void Kill(GpuClient client)
    {
        ArgumentNullException.ThrowIfNull(client);
        client.Killed = true;
        foreach (SchedEntity entity in client.Entities)
        {
            FailQueue(entity, -Errno.ESRCH, markKilled: true);
        }
    }

    /// <summary>Loses the device: every pending job ends with -ENODEV and no job can be submitted.</summary>
    public void LoseDevice()
    {
        if (Interlocked.Exchange(ref _lost, 1) != 0)
        {
            return;
        }

        foreach (Engine engine in _engines)
        {
            lock (engine.Gate)
            {
                foreach (GpuJob j in engine.Ring)
                {
                    j.PendingError = -Errno.ENODEV;
                    j.HardwareDone = true;
                }
            }

            DrainCompleted(engine);
        }

        foreach (GpuClient client in Clients)
        {
            foreach (SchedEntity entity in client.Entities)
            {
                FailQueue(entity, -Errno.ENODEV, markKilled: true);
            }
        }

        FailQueue(_kernelEntity, -Errno.ENODEV, markKilled: true);
        Raise(new GpuEvent(GpuEventKind.DeviceLost, NowNs, null, null, -Errno.ENODEV)); // after every job has ended
    }

    private void FailQueue(SchedEntity entity, int error, bool markKilled)
    {
        GpuJob[] queued;
        lock (entity.Gate)
        {
            entity.Killed |= markKilled;
            queued = [.. entity.Queue];
            entity.Queue.Clear();
        }

        foreach (GpuJob job in queued)
        {
            job.Waiter?.TryAbandon(); // also unlinks it from the fence it waits on
            if (Interlocked.CompareExchange(ref job.Phase, 2, 0) == 0)
            {
                FailJob(job, error);
            }
        }
    }

    // ----------------------------------------------------------------------------------------------
    // Events

    internal void OnFenceSignaled(GpuFence fence)
    {
        Interlocked.Increment(ref _fencesSignaled);
        _fencesSignaledCounter.Add(1);
        Notify(Volatile.Read(ref _fenceSubscribers), fence);
    }

    /// <summary>Runs every subscriber; a subscriber's exception is counted and reported, never thrown.</summary>
    private void Notify<T>(Action<T>[] subscribers, T argument)
    {
        foreach (Action<T> s in subscribers)
        {
            try
            {
                s(argument);
            }
#pragma warning disable CA1031 // a subscriber's exception must not reach the scheduler
            catch (Exception ex)
#pragma warning restore CA1031
            {
                ReportConsumerFailure(ex);
            }
        }
    }

    /// <summary>Counts a consumer's exception and hands it to <see cref="ConsumerFailed"/>; never throws.</summary>
    internal void ReportConsumerFailure(Exception exception)
    {
        Interlocked.Increment(ref _consumerFailures);
        try
        {
            ConsumerFailed?.Invoke(exception);
        }
#pragma warning disable CA1031 // the reporting handler is a consumer too
        catch (Exception)
#pragma warning restore CA1031
        {
            Interlocked.Increment(ref _consumerFailures);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Raise(GpuEvent e)
    {
        ulong h = Mix(14695981039346656037UL, (ulong)e.Kind);
        h = Mix(h, (ulong)e.TimeNs);
        h = Mix(h, (ulong)(e.Job?.Id ?? -1));
        h = Mix(h, (ulong)(e.Engine?.Index ?? -1));
        h = Mix(h, (ulong)(uint)e.Error);
        h = Mix(h, (ulong)(e.Buffer?.Id ?? -1));
        if (_virtual is not null)
        {
            // Virtual mode: one thread raises every event, so an ordered chain of hashes needs no lock.
            _digest = Mix(_digest, h);
            _events++;
        }
        else
        {
            // Threads mode: the order of events varies with the interleaving anyway; a commutative sum
            // keeps workers from serializing on one lock for every event.
            Interlocked.Add(ref Unsafe.As<ulong, long>(ref _digest), (long)h);
            Interlocked.Increment(ref _events);
        }

        // Copy-on-write array: a plain read sees a complete list (published under _eventGate).
        Notify(Volatile.Read(ref _subscribers), e);
    }

    private static ulong Mix(ulong hash, ulong value)
    {
        // FNV-1a-style, a 64-bit word at a time, with a rotate so every bit of value reaches the hash.
        hash ^= value;
        hash *= 1099511628211UL;
        return ulong.RotateLeft(hash, 29);
    }

    /// <summary>Stops the worker threads (threads mode).</summary>
    public void Dispose()
    {
        _dispatcher.Dispose();
        if (_ownsMeter)
        {
            _meter.Dispose(); // a factory's meter is the factory's to dispose
        }
    }

    private sealed class SignalAfterPrevious(Gpu gpu, GpuFence fence, int error, GpuJob? job) : FenceCallback
    {
        protected override void Invoke(Fence previous) => gpu._dispatcher.Post(static s => ((SignalAfterPrevious)s!).Run(), this);

        private void Run() => gpu.SignalFailed(fence, error, job);
    }

    /// <summary>
    /// A CPU access: it begins only when nothing its direction must wait for is pending. Fences found
    /// pending are waited for and the reservation is read again, because a move (an eviction and a move
    /// back) may have been added meanwhile; the access happens in the same step as the final check.
    /// </summary>
    private sealed class CpuAccessCallback(Gpu gpu, GpuBuffer buffer, bool write, Action<GpuBuffer>? onAccess) : FenceCallback
    {
        protected override void Invoke(Fence fence) => gpu._dispatcher.Post(static s => ((CpuAccessCallback)s!).Run(), this);

        public void Run()
        {
            Fence? wait = buffer.Reservation.GetSingleton(FenceUsages.WaitLevelFor(write));
            if (wait is not null && wait.AddCallback(this))
            {
                return; // still busy: try again when it signals
            }

            if (buffer.StorageFence is { } move && !move.Poll())
            {
                gpu.RecordLeak(null, buffer);
            }

            gpu.Raise(new GpuEvent(GpuEventKind.CpuAccess, gpu.NowNs, null, null, 0, buffer));
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

    private sealed class Unsubscriber(Action action) : IDisposable
    {
        private Action? _action = action;

        public void Dispose() => Interlocked.Exchange(ref _action, null)?.Invoke();
    }
}
