using FenceCore.Internal;
using System.Diagnostics.Metrics;

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
/// <see cref="RunUntilIdle()"/>. In virtual mode every call must come from the thread that advances time
/// (inside <see cref="Schedule(TimeSpan, Action)"/> callbacks or between runs); in <see cref="GpuTimeMode.Threads"/>
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
/// propagate a dependency's error into a job, as drm_sched does not (drm_sched_job_dependency hands each
/// dependency to the wait whatever its error, and drm_sched_entity_pop_job sets one, -ECANCELED, only on
/// a guilty entity's job): a job whose dependency failed, a lost exporter's fence with -ENODEV included,
/// still runs and signals without error, and its submitter reads the dependencies' errors. Where the model
/// differs on purpose: a dependency still pending after the dependency timeout ends the job with -ETIME,
/// where the kernel would wait for ever.</para>
/// </remarks>
public sealed class Gpu : IDisposable
{
    private readonly GpuMetrics _metrics;
    private readonly GpuEventHub _hub;

    /// <summary>This GPU's meter, for tests.</summary>
    internal Meter MeterForTesting => _metrics.Meter;

    private readonly GpuDispatcher _dispatcher;
    private readonly VirtualDispatcher? _virtual;

    /// <summary>False for a device that joined another's event loop: the first device disposes it.</summary>
    private readonly bool _ownsDispatcher = true;

    /// <summary>Which device exported a dma-buf, for <see cref="Import"/> (the kernel's <c>dmabuf->priv</c>).</summary>
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<DmaBuf, GpuBuffer> s_exports = [];

    /// <summary>Created on first use; a benign race would only make an equivalent second one.</summary>
    private TimeProvider? _timeProvider;
    private readonly Engine[] _engines;
    private readonly SchedEntity _kernelEntity;
    private readonly List<GpuClient> _clients = [];

    /// <summary>The last buffer id handed out: Interlocked increments.</summary>
    private int _nextBufferId;

    /// <summary>GPU fences signalled: Interlocked increments, read with Interlocked.Read.</summary>
    private long _fencesSignaled;

    /// <summary>0, then 1 once the device is lost: set by Interlocked.Exchange, read with Volatile.Read.</summary>
    private int _lost;

    /// <summary>Builds a GPU. The configuration is validated first.</summary>
    public Gpu(GpuConfig config)
        : this(config, null)
    {
    }

    /// <summary>
    /// Creates a device that shares <paramref name="shareTimeWith"/>'s event loop (virtual time) or worker
    /// pool (threads), so that several devices run as one system: in virtual mode every event of every
    /// device is ordered on one clock and the same seed replays the same run. Buffers cross devices only by
    /// <see cref="Export"/> and <see cref="Import"/>.
    /// </summary>
    /// <param name="config">This device's configuration; its <see cref="GpuConfig.Mode"/> must be the other's.</param>
    /// <param name="shareTimeWith">The device whose event loop this one joins; null for a loop of its own.</param>
    /// <exception cref="ArgumentException">The modes differ, or the configuration breaks a rule.</exception>
    public Gpu(GpuConfig config, Gpu? shareTimeWith)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        if (shareTimeWith is not null && shareTimeWith.Config.Mode != config.Mode)
        {
            throw new ArgumentException($"{config.Name} runs in {config.Mode} mode and cannot share the event loop of {shareTimeWith.Name}, which runs in {shareTimeWith.Config.Mode} mode.", nameof(shareTimeWith));
        }

        Config = config;
        _metrics = new GpuMetrics(config.MeterFactory);
        _hub = new GpuEventHub(ordered: config.Mode == GpuTimeMode.Virtual);
        _engines = [.. config.Engines.Select((e, i) => new Engine(i, e) { Owner = this })];
        if (shareTimeWith is not null)
        {
            _dispatcher = shareTimeWith._dispatcher;
            _virtual = shareTimeWith._virtual;
            _ownsDispatcher = false;
        }
        else if (config.Mode == GpuTimeMode.Virtual)
        {
            _virtual = new VirtualDispatcher();
            _dispatcher = _virtual;
        }
        else
        {
            _dispatcher = new ThreadedDispatcher(config.WorkerThreads) { WorkItemFailed = ReportConsumerFailure };
        }

        _kernelEntity = new SchedEntity(null, [.. _engines.Where(e => e.Kind == EngineKind.Copy)], GpuPriority.Kernel, "kernel.ttm");
        Scheduler = new GpuScheduler(this);
        Fences = new SchedFences(this);
        Leaks = new LeakDetector(this);
        Memory = new MemoryManager(this);
        Submission = new SubmitPipeline(this);
    }

    // The parts, each in its folder: the scheduler (Scheduler/), the ordering of entity fences, the leak
    // detector and the memory manager (Memory/), the submit pipeline (Submission/), the event hub and
    // the metrics (Diagnostics/), the dispatcher (Time/).
    internal GpuScheduler Scheduler { get; }

    internal SchedFences Fences { get; }

    internal LeakDetector Leaks { get; }

    internal MemoryManager Memory { get; }

    internal SubmitPipeline Submission { get; }

    internal GpuEventHub Hub => _hub;

    internal GpuMetrics Metrics => _metrics;

    internal GpuDispatcher Dispatcher => _dispatcher;

    /// <summary>The memory manager's entity: its moves, clears and evictions run on the copy engines.</summary>
    internal SchedEntity KernelEntity => _kernelEntity;

    /// <summary>The configuration.</summary>
    public GpuConfig Config { get; }

    /// <summary>The device's name (<see cref="GpuConfig.Name"/>).</summary>
    public string Name => Config.Name;

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

    /// <summary>The current time on the GPU's clock, since its origin, the GPU's creation: virtual time, or in
    /// threads mode the real time elapsed since then (a monotonic count of its own, so not on
    /// <see cref="FenceClock.Now"/>'s origin). Its fences' <see cref="Fence.Timestamp"/>s, its events' and jobs'
    /// times are points on this clock: a deadline hint for one of its fences is <c>gpu.Now + lead</c>.</summary>
    /// <remarks>Inside, the GPU counts ns, as the kernel's ktime does: moves and copies take fractions of a
    /// <see cref="TimeSpan"/> tick (100 ns), and the digest folds those exact times. The public times are the
    /// same points truncated to the tick. For waits and timeouts that must follow this clock, use
    /// <see cref="TimeProvider"/>.</remarks>
    public TimeSpan Now => TimeTicks.FromNs(NowNs);

    /// <summary>The current time in ns.</summary>
    internal long NowNs => _dispatcher.NowNs;

    /// <summary>
    /// The GPU's clock as a <see cref="System.TimeProvider"/>: in virtual mode, virtual time (timestamps in ns,
    /// timers that fire when the event loop reaches them), so waits and timeouts given it follow the
    /// simulation; in threads mode, <see cref="TimeProvider.System"/>, which runs at the same rate as
    /// <see cref="Now"/> but from another origin: use it for timeouts, and <see cref="Now"/> for points in time.
    /// </summary>
    public TimeProvider TimeProvider => _timeProvider ??= _virtual is null ? TimeProvider.System : new GpuTimeProvider(this);

    /// <summary>Accesses recorded by the leak detector (storage touched before its move or clear signalled).</summary>
    public long LeakCount => Leaks.Count;

    /// <summary>Jobs completed (finished fence signalled), including failed ones.</summary>
    public long JobsCompleted => Fences.JobsCompleted;

    /// <summary>Jobs submitted.</summary>
    public long JobsSubmitted => Submission.JobsSubmitted;

    /// <summary>GPU fences signalled.</summary>
    public long FencesSignaled => Interlocked.Read(ref _fencesSignaled);

    /// <summary>Device memory in use (bytes), by the memory manager's accounting.</summary>
    public long DeviceMemoryUsed => Memory.Used;

    /// <summary>The highest <see cref="DeviceMemoryUsed"/> seen.</summary>
    public long PeakDeviceMemoryUsed => Memory.PeakUsed;

    /// <summary>
    /// Exceptions thrown by consumers (fence callbacks on GPU fences, event and fence-signal subscribers)
    /// since the GPU was created. Each one was caught where it was thrown, counted here and passed to
    /// <see cref="ConsumerFailed"/>; none reaches the scheduler, so a consumer cannot wedge it.
    /// </summary>
    public long ConsumerFailures => _hub.ConsumerFailures;

    /// <summary>Raised for each consumer exception (see <see cref="ConsumerFailures"/>), on the thread that
    /// caught it. A handler that throws is counted too, and otherwise ignored.</summary>
    public event Action<Exception>? ConsumerFailed
    {
        add => _hub.ConsumerFailed += value;
        remove => _hub.ConsumerFailed -= value;
    }

    /// <summary>A fault-injection point for tests: runs once a submission is armed and its fence is in the
    /// reservations, inside the submission's one failure path.</summary>
    internal Action<GpuJob>? AfterArmForTesting { get; set; }

    /// <summary>Test hook: runs in a submission's placement after this device's buffers are pinned and before
    /// its imports are mapped on their exporters, on every attempt (a threads-mode back-off retries).</summary>
    internal Action? AfterPinResidentForTesting { get; set; }

    /// <summary>Test hook: runs when a threads-mode submission backs off (an import must be bounced but is
    /// pinned by work in flight), before it unpins anything.</summary>
    internal Action? BeforeBackOffForTesting { get; set; }

    /// <summary>True after <see cref="LoseDevice"/>.</summary>
    public bool IsLost => Volatile.Read(ref _lost) != 0;

    /// <summary>
    /// A 64-bit digest of every event so far (kind, time, job, engine, error, buffer): in virtual mode an
    /// ordered FNV-style chain, so equal seeds and inputs give equal digests, event for event; in threads
    /// mode a sum of per-event hashes (times and interleavings vary there, so it is informative only).
    /// </summary>
    public ulong Digest => _hub.Digest;

    /// <summary>Events raised so far.</summary>
    public long EventCount => _hub.EventCount;

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
        return new GpuBuffer(this, id, size, name ?? $"bo{id}");
    }

    // ----------------------------------------------------------------------------------------------
    // Sharing buffers between devices (dma_buf_export, dma_buf_attach and map)

    /// <summary>
    /// Exports one of this device's buffers as a dma-buf (<c>dma_buf_export</c>) that shares the buffer's
    /// reservation, so another device can <see cref="Import"/> it. Exporting a buffer twice gives the same
    /// dma-buf; exporting an import gives its origin's dma-buf, as re-exporting an imported GEM object does.
    /// </summary>
    /// <exception cref="ArgumentException">The buffer belongs to another device.</exception>
    /// <exception cref="FenceErrnoException">-ENODEV: the device is lost.</exception>
    public DmaBuf Export(GpuBuffer buffer)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        if (!ReferenceEquals(buffer.Device, this))
        {
            throw new ArgumentException($"{buffer.Name} belongs to {buffer.Device.Name}, not {Name}: a device exports only its own buffers and imports.", nameof(buffer));
        }

        if (buffer.IsImported)
        {
            GpuBuffer origin = buffer.Origin;
            return origin.Device.Export(origin);
        }

        if (IsLost)
        {
            throw new FenceErrnoException(-Errno.ENODEV, $"{Name} is lost: {buffer.Name} cannot be exported");
        }

        DmaBuf dmaBuf = Memory.ExportOf(buffer);
        s_exports.TryAdd(dmaBuf, buffer);
        return dmaBuf;
    }

    /// <summary>
    /// Imports a dma-buf that another device exported (<c>dma_buf_attach</c> or <c>dma_buf_dynamic_attach</c>,
    /// then map): the returned buffer is this device's handle on the exporter's storage and reservation.
    /// Importing a dma-buf of this device's own returns its buffer, as the kernel's PRIME import does.
    /// </summary>
    /// <param name="dmaBuf">A dma-buf from <see cref="Export"/>.</param>
    /// <param name="mode">Pinned: the exporter never moves the buffer while the import exists. Dynamic: it
    /// may, telling this device through a move notification and a KERNEL fence.</param>
    /// <param name="allowPeerToPeer">This importer can reach the exporter's device memory directly; it does
    /// when both devices also allow it (<see cref="GpuConfig.PeerToPeer"/>). Without it the buffer is
    /// placed in system memory for this device (the bounce).</param>
    /// <exception cref="ArgumentException">The dma-buf was not exported by a virtual GPU.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The mode is not an <see cref="ImportMode"/>.</exception>
    /// <exception cref="FenceErrnoException">-ENODEV: this device or the exporter is lost; -ENOMEM: a pinned
    /// import could not place the buffer (too little could be evicted; nothing was); -EINVAL: a pinned
    /// import without peer-to-peer found the buffer pinned in device memory; -EBUSY: the buffer had to move
    /// to system memory for a pinned import but work in flight pinned it (see <see cref="Submit"/>). Nothing
    /// changed.</exception>
    public GpuBuffer Import(DmaBuf dmaBuf, ImportMode mode = ImportMode.Dynamic, bool allowPeerToPeer = true)
    {
        ArgumentNullException.ThrowIfNull(dmaBuf);
        if (mode is not (ImportMode.Pinned or ImportMode.Dynamic))
        {
            throw new ArgumentOutOfRangeException(nameof(mode), mode, "The import mode must be Pinned or Dynamic.");
        }

        if (!s_exports.TryGetValue(dmaBuf, out GpuBuffer? origin))
        {
            throw new ArgumentException($"dma-buf '{dmaBuf.Name}' was not exported by a virtual GPU (Gpu.Export); there is no storage to attach to.", nameof(dmaBuf));
        }

        if (ReferenceEquals(origin.Device, this))
        {
            return origin;
        }

        if (IsLost || origin.Device.IsLost)
        {
            throw new FenceErrnoException(-Errno.ENODEV, $"{(IsLost ? Name : origin.Device.Name)} is lost: '{dmaBuf.Name}' cannot be imported into {Name}");
        }

        bool p2p = allowPeerToPeer && Config.PeerToPeer && origin.Device.Config.PeerToPeer;
        var import = new GpuBuffer(this, Interlocked.Increment(ref _nextBufferId), origin, mode, p2p);
        origin.Device.Memory.Attach(import);
        return import;
    }

    /// <summary>Drops an import (<c>dma_buf_detach</c>): a pinned import's pin goes, so the exporter may move the
    /// buffer again; a dynamic import is told of no more moves. Jobs already submitted are unaffected.</summary>
    /// <exception cref="ArgumentException">The buffer is not an import of this device, or was detached already.</exception>
    public void Detach(GpuBuffer import)
    {
        ArgumentNullException.ThrowIfNull(import);
        if (!import.IsImported || !ReferenceEquals(import.Device, this))
        {
            throw new ArgumentException($"{import.Name} is not an import of {Name}; only imports are detached.", nameof(import));
        }

        if (import.Detached)
        {
            throw new ArgumentException($"{import.Name} was detached already.", nameof(import));
        }

        import.Detached = true;
        import.Origin.Device.Memory.Detach(import);
    }

    /// <summary>Subscribes to events. Handlers run on the GPU's thread (the loop, or a worker) and must be quick.</summary>
    public IDisposable Subscribe(Action<GpuEvent> handler) => _hub.Subscribe(handler);

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
    public IDisposable SubscribeFenceSignals(Action<GpuFence> handler) => _hub.SubscribeFenceSignals(handler);

    // ----------------------------------------------------------------------------------------------
    // Time

    /// <summary>Runs <paramref name="action"/> at <paramref name="time"/> on the GPU's clock (see <see cref="Now"/>);
    /// a time already passed runs it at the next step.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="action"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="time"/> is negative or past the GPU clock's range (about 36 years).</exception>
    public void Schedule(TimeSpan time, Action action)
    {
        ArgumentNullException.ThrowIfNull(action);
        _dispatcher.PostAt(ToClockNs(time, nameof(time)), static a => ((Action)a!)(), action);
    }

    /// <summary>
    /// Runs <paramref name="action"/> with <paramref name="state"/> at <paramref name="time"/> on the GPU's
    /// clock: the allocation-free form of <see cref="Schedule(TimeSpan, Action)"/> for a static lambda (the
    /// shape of <c>ThreadPool.UnsafeQueueUserWorkItem(callback, state, preferLocal)</c>).
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="action"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="time"/> is negative or past the GPU clock's range (about 36 years).</exception>
    public void Schedule(TimeSpan time, Action<object?> action, object? state)
    {
        ArgumentNullException.ThrowIfNull(action);
        _dispatcher.PostAt(ToClockNs(time, nameof(time)), action, state);
    }

    /// <summary>The end of the GPU's clock, about 36.5 years of ns: the scheduler reads a ring time past it as a
    /// ring stalled behind a hung job, so no point in time on the public surface may reach it.</summary>
    internal const long MaxClockNs = long.MaxValue / 8;

    /// <summary>A point in time on the GPU's clock, in its ns.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative, or past <see cref="MaxClockNs"/>.</exception>
    private static long ToClockNs(TimeSpan time, string paramName) => TimeTicks.ToNs(time, paramName, MaxClockNs / 100,
        "A point on the GPU's clock is the time since its origin: it must not be negative, and must be at most about 36 years (long.MaxValue / 8 ns; later ring times mean a ring stalled behind a hung job).");

    /// <summary>Virtual mode: schedules from any thread (the time provider's timers, which async
    /// continuations create on the thread pool); the loop picks it up before its next event.</summary>
    internal void ScheduleFromAnyThread(long timeNs, Action action) =>
        RequireVirtual().PostAtFromAnyThread(timeNs, static a => ((Action)a!)(), action);

    /// <summary>Virtual mode: runs every event up to <paramref name="time"/> and sets the clock there (a time
    /// already passed runs nothing and leaves the clock alone).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="time"/> is negative or past the GPU clock's range (about 36 years).</exception>
    /// <exception cref="InvalidOperationException">The GPU runs in threads mode.</exception>
    public void RunUntil(TimeSpan time) => RequireVirtual().RunUntil(ToClockNs(time, nameof(time)));

    /// <summary>Virtual mode: runs every event in the next <paramref name="duration"/> and advances the clock by it.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="duration"/> is negative, or ends beyond the clock's range.</exception>
    /// <exception cref="InvalidOperationException">The GPU runs in threads mode.</exception>
    public void RunFor(TimeSpan duration)
    {
        long durationNs = TimeTicks.ToNs(duration, nameof(duration), MaxClockNs / 100,
            "A duration must not be negative, and must be at most about 36 years (the GPU's clock, long.MaxValue / 8 ns).");
        VirtualDispatcher loop = RequireVirtual();
        long now = NowNs;
        if (durationNs > MaxClockNs - now)
        {
            throw new ArgumentOutOfRangeException(nameof(duration), duration, "RunFor: the run would end past the virtual clock's range (about 36 years).");
        }

        loop.RunUntil(now + durationNs);
    }

    /// <summary>Virtual mode: runs until no event is left (the far future: about 36 years of virtual time).</summary>
    /// <exception cref="InvalidOperationException">The GPU runs in threads mode.</exception>
    public void RunUntilIdle() => RequireVirtual().RunUntilIdle(MaxClockNs);

    /// <summary>Virtual mode: runs until no event is due before <paramref name="limit"/> on the GPU's clock.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limit"/> is negative or past the GPU clock's range (about 36 years).</exception>
    /// <exception cref="InvalidOperationException">The GPU runs in threads mode.</exception>
    public void RunUntilIdle(TimeSpan limit) => RequireVirtual().RunUntilIdle(ToClockNs(limit, nameof(limit)));

    /// <summary>Virtual mode: runs one event; false when none is left.</summary>
    public bool RunOne() => RequireVirtual().RunOne();

    /// <summary>Threads mode: waits until no work is queued or running, up to <paramref name="timeout"/>.</summary>
    public bool WaitForIdle(TimeSpan timeout)
    {
        if (_dispatcher is ThreadedDispatcher threaded)
        {
            return threaded.WaitForIdle(timeout);
        }

        RunUntilIdle();
        return true;
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
    /// <exception cref="FenceErrnoException">The device is lost (-ENODEV); a syncobj wait names a point
    /// not yet submitted (-EINVAL); device memory cannot hold the job's buffers however much is evicted
    /// (-ENOMEM); or an import without peer-to-peer cannot be mapped (-EBUSY): its exporter has the buffer
    /// pinned in device memory, by a pinned import, or by a submission or CPU access in progress that does
    /// not end (in virtual mode, one that made this call; in threads mode the submission backs off and waits
    /// up to <see cref="GpuConfig.DependencyTimeout"/>). Nothing changed: no eviction, move or pin, with one
    /// exception: a threads-mode submission that gave up waiting keeps the placements of its own buffers
    /// made before it backed off.</exception>
    public GpuJob Submit(GpuClient client, JobDescription desc) => Submission.Submit(client, desc);

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
        if (buffer.IsImported)
        {
            // The CPU maps the storage through its exporter (dma_buf_begin_cpu_access goes to the exporter).
            GpuBuffer origin = buffer.Origin;
            origin.Device.CpuAccess(origin, write, onAccess is null ? null : _ => onAccess(buffer));
            return;
        }

        new CpuAccessCallback(this, buffer, write, onAccess).Run();
    }

    /// <summary>Kills a client: its queued jobs end with -ESRCH, in order; running jobs finish.
    /// Later submissions from it end with -ESRCH at once. Mirrors <c>drm_sched_entity_kill</c>.</summary>
    public void Kill(GpuClient client)
    {
        ArgumentNullException.ThrowIfNull(client);
        client.Killed = true;
        Scheduler.Kill(client.Entities, -Errno.ESRCH);
    }

    /// <summary>Loses the device: every pending job ends with -ENODEV and no job can be submitted.</summary>
    public void LoseDevice()
    {
        if (Interlocked.Exchange(ref _lost, 1) != 0)
        {
            return;
        }

        Scheduler.EndEverything(-Errno.ENODEV);
        Raise(new GpuEvent(GpuEventKind.DeviceLost, NowNs, null, null, -Errno.ENODEV)); // after every job has ended
    }

    // ----------------------------------------------------------------------------------------------
    // Events

    internal void OnFenceSignaled(GpuFence fence)
    {
        Interlocked.Increment(ref _fencesSignaled);
        _metrics.FencesSignaled.Add(1);
        _hub.FenceSignaled(fence);
    }

    /// <summary>Counts a consumer's exception and hands it to <see cref="ConsumerFailed"/>; never throws.</summary>
    internal void ReportConsumerFailure(Exception exception) => _hub.ReportConsumerFailure(exception);

    private void Raise(GpuEvent e) => _hub.Raise(e);

    /// <summary>Stops the worker threads (threads mode).</summary>
    public void Dispose()
    {
        if (_ownsDispatcher)
        {
            _dispatcher.Dispose();
        }

        _metrics.Dispose();
    }
}
