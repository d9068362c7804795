using System.Globalization;

namespace FenceCore.VirtualGpu;

/// <summary>What a fence of the virtual GPU stands for.</summary>
public enum GpuFenceKind
{
    /// <summary>A job was handed to its engine (<c>drm_sched_fence.scheduled</c>).</summary>
    Scheduled,

    /// <summary>A job completed (<c>drm_sched_fence.finished</c>).</summary>
    Finished,

    /// <summary>The engine ring's own hardware fence for a job.</summary>
    Hardware,
}

/// <summary>A fence created by the virtual GPU. It reports its signal to the GPU, which checks and records it.
/// Its timestamp is GPU time: virtual ns in virtual mode, monotonic ns in threads mode.</summary>
public sealed class GpuFence : Fence
{
    private readonly Gpu _gpu;

    internal GpuFence(Gpu gpu, ulong context, ulong seqno, GpuFenceKind kind, GpuJob? job, string timeline)
        : base(context, seqno)
    {
        _gpu = gpu;
        Kind = kind;
        Job = job;
        Timeline = timeline;
        CreatedNs = gpu.NowNs;
    }

    /// <summary>What the fence stands for.</summary>
    public GpuFenceKind Kind { get; }

    /// <summary>The job it belongs to, when it is a job's fence.</summary>
    public GpuJob? Job { get; }

    /// <summary>The timeline's name, e.g. "client3.gfx.finished" or "copy0.ring".</summary>
    public string Timeline { get; }

    /// <summary>The virtual (or monotonic) time it was created.</summary>
    public long CreatedNs { get; }

    /// <inheritdoc/>
    public override string DriverName => "vgpu";

    /// <inheritdoc/>
    public override string TimelineName => Timeline;

    /// <inheritdoc/>
    protected override void OnSignaled() => _gpu.OnFenceSignaled(this);

    /// <summary>A consumer's callback threw: the GPU counts and reports it; it never reaches the scheduler.</summary>
    protected override void OnCallbackFailed(Exception exception) => _gpu.ReportConsumerFailure(exception);

    /// <summary>Signals at GPU time; only the GPU, the fence's owner, calls it.</summary>
    internal bool SignalAt(int error, long timestampNs) => SignalWithTimestamp(error, timestampNs);
}

/// <summary>A point on a syncobj: point 0 means the binary payload.</summary>
/// <param name="SyncObj">The syncobj.</param>
/// <param name="Point">The timeline point, or 0.</param>
public readonly record struct SyncObjPoint(SyncObj SyncObj, ulong Point);

/// <summary>What a job does to one buffer.</summary>
/// <param name="Buffer">The buffer.</param>
/// <param name="Write">True for a write, false for a read.</param>
public readonly record struct BufferAccess(GpuBuffer Buffer, bool Write);

/// <summary>A job to submit. Mirrors what a command submission ioctl carries.</summary>
public sealed class JobDescription
{
    /// <summary>The engine kind; the client's entity for that kind load-balances over its engines.</summary>
    public EngineKind Engine { get; init; } = EngineKind.Graphics;

    /// <summary>Buffers read and written (implicit sync).</summary>
    public IReadOnlyList<BufferAccess> Buffers { get; init; } = [];

    /// <summary>Explicit dependencies: fences (containers are unwrapped), e.g. from a sync file or a syncobj point.</summary>
    public IReadOnlyList<Fence> Dependencies { get; init; } = [];

    /// <summary>Explicit dependencies given as sync files (their fences, unwrapped).</summary>
    public IReadOnlyList<SyncFile> SyncFiles { get; init; } = [];

    /// <summary>Explicit dependencies on syncobj points (point 0: the binary syncobj's current fence). Every
    /// point must already be submitted, as for a kernel submission without WAIT_FOR_SUBMIT; otherwise the
    /// submission fails with -EINVAL before anything happens.</summary>
    public IReadOnlyList<SyncObjPoint> SyncObjWaits { get; init; } = [];

    /// <summary>Syncobj points the job's finished fence is installed at once it is armed (point 0 replaces a
    /// binary syncobj's fence; other points add a timeline point), as a submission's out-syncobjs.</summary>
    public IReadOnlyList<SyncObjPoint> SyncObjSignals { get; init; } = [];

    /// <summary>Execution time once the job reaches the front of its ring (virtual mode).</summary>
    public long DurationNs { get; init; } = 10_000;

    /// <summary>Fault injection: the job never completes on its own; the engine timeout must reset it.</summary>
    public bool Hang { get; init; }

    /// <summary>Ring credits the job takes (clamped to the engine's limit so it can always run).</summary>
    public int Credits { get; init; } = 1;

    /// <summary>Free-form label for traces.</summary>
    public string? Label { get; init; }
}

/// <summary>The state of a job.</summary>
public enum GpuJobState
{
    /// <summary>Queued on its entity, waiting for its turn or its dependencies.</summary>
    Queued,

    /// <summary>On its engine's ring.</summary>
    Running,

    /// <summary>Its finished fence has signalled (possibly with an error).</summary>
    Done,
}

/// <summary>A submitted job. Mirrors <c>drm_sched_job</c>.</summary>
public sealed class GpuJob
{
    internal GpuJob(long id, GpuClient client, SchedEntity entity, JobDescription desc)
    {
        Id = id;
        Client = client;
        Entity = entity;
        Description = desc;
    }

    /// <summary>A unique, increasing id.</summary>
    public long Id { get; }

    /// <summary>The submitting client.</summary>
    public GpuClient Client { get; }

    /// <summary>The entity (client queue) it was pushed to.</summary>
    public SchedEntity Entity { get; }

    /// <summary>What was submitted.</summary>
    public JobDescription Description { get; }

    /// <summary>The engine it was armed on.</summary>
    public Engine Engine { get; internal set; } = null!;

    /// <summary>Signalled when the job is handed to the engine.</summary>
    public GpuFence Scheduled { get; internal set; } = null!;

    /// <summary>Signalled when the job completes, with its error.</summary>
    public GpuFence Finished { get; internal set; } = null!;

    /// <summary>The ring's hardware fence, once running.</summary>
    public GpuFence? Hardware { get; internal set; }

    /// <summary>The dependencies as submitted: first the implicit ones read from the buffers' reservations
    /// (in the same atomic step that added this job's fence), then the explicit ones, unwrapped. Emptied
    /// once the job has completed, so finished jobs do not keep the whole dependency graph alive.</summary>
    public IReadOnlyList<Fence> SubmittedDependencies { get; internal set; } = [];

    /// <summary>How many of <see cref="SubmittedDependencies"/> came from implicit sync.</summary>
    public int ImplicitDependencyCount { get; internal set; }

    /// <summary>The dependencies the scheduler waited for, after deduplication per context, dropping
    /// fences of the job's own entity and replacing same-engine finished fences by their scheduled fence.</summary>
    public IReadOnlyList<Fence> EffectiveDependencies { get; internal set; } = [];

    /// <summary>The buffers it touches, one access per buffer (a write dominates a read of the same buffer).</summary>
    public IReadOnlyList<BufferAccess> Accesses { get; internal set; } = [];

    /// <summary>For each buffer access, the move or clear fence that established the storage it touches.</summary>
    internal Fence?[] StorageFences { get; set; } = [];

    /// <summary>Submission time.</summary>
    public long SubmitNs { get; internal set; }

    /// <summary>When execution starts on the ring (after the previous ring job), or -1.</summary>
    public long StartNs { get; internal set; } = -1;

    /// <summary>When execution ends, or -1.</summary>
    public long EndNs { get; internal set; } = -1;

    /// <summary>Current state.</summary>
    public GpuJobState State { get; internal set; }

    /// <summary>Credits taken on the ring.</summary>
    public int Credits { get; internal set; }

    /// <summary>True for the memory manager's moves and clears (KERNEL fences).</summary>
    public bool IsKernelJob { get; internal init; }

    /// <summary>Drops the references to other jobs' fences once this job has completed and its completion
    /// event has been delivered; the dependency lists read empty afterwards.</summary>
    internal void ReleaseDependencies()
    {
        SubmittedDependencies = [];
        EffectiveDependencies = [];
        StorageFences = [];
        PreviousFinished = null;
        PreviousScheduled = null;
        Waiter = null;
    }

    /// <summary>Set by the completion path before the drain signals the job's fences.</summary>
    internal bool HardwareDone;

    internal int PendingError;

    /// <summary>0 queued, 1 started (took a ring slot), 2 failed before starting. Moved only by CAS from 0,
    /// so a start and a failure (kill, timeout, device lost) cannot both win.</summary>
    internal int Phase;

    /// <summary>The entity's previous finished fence at arm time: a job failed before running signals
    /// only after it, so finished fences of an entity always signal in seqno order.</summary>
    internal GpuFence? PreviousFinished;

    /// <summary>The entity's previous scheduled fence at arm time, for the same ordering of scheduled fences.</summary>
    internal GpuFence? PreviousScheduled;

    /// <summary>The re-armable dependency callback (one node walks all dependencies).</summary>
    internal DependencyWaiter? Waiter;

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"job {Id} ({Description.Label ?? Engine?.Name}) {State}");
}

/// <summary>A hardware engine (ring) with its scheduler. Mirrors a <c>drm_gpu_scheduler</c> and its ring.</summary>
public sealed class Engine
{
    internal Engine(int index, EngineConfig config)
    {
        Index = index;
        Config = config;
        RingContext = FenceContext.Allocate();
        RingTimeline = config.Name + ".ring";
    }

    internal string RingTimeline { get; }

    /// <summary>The GPU that owns the engine.</summary>
    internal Gpu? Owner { get; init; }

    /// <summary>Position in the GPU's engine list.</summary>
    public int Index { get; }

    /// <summary>Configuration.</summary>
    public EngineConfig Config { get; }

    /// <summary>Name.</summary>
    public string Name => Config.Name;

    /// <summary>Kind.</summary>
    public EngineKind Kind => Config.Kind;

    /// <summary>The ring's own fence context (hardware fences).</summary>
    public ulong RingContext { get; }

    /// <summary>Guards the fields below: the ring and ready queue of this engine are changed by whichever
    /// worker runs its scheduler; fences are never signalled under it.</summary>
    internal readonly object Gate = new();

    internal readonly List<GpuJob> Ring = [];
    internal readonly PriorityQueue<GpuJob, ReadyKey> Ready = new();
    internal readonly Queue<GpuJob> Completed = new();
    internal long ReadySeq;

    /// <summary>The virtual runtime of the job started last: an entity that becomes ready again after being
    /// idle starts from here, so idling earns it no credit over the entities that kept the engine busy.</summary>
    internal long MinVRuntime;
    internal int CreditsInUse;
    internal ulong NextRingSeqno;
    internal long LastEndNs;
    /// <summary>One thread at a time signals this engine's completed jobs.</summary>
    internal readonly DrainGate Drainer = new();

    /// <summary>Load score for balancing: jobs queued on the ring and ready.</summary>
    internal int Score;

    /// <summary>Engine resets so far.</summary>
    public int Resets { get; internal set; }

    /// <summary>Credits currently in use (for the credit-limit invariant).</summary>
    public int CreditsInFlight
    {
        get
        {
            lock (Gate)
            {
                return CreditsInUse;
            }
        }
    }

    /// <inheritdoc/>
    public override string ToString() => Name;
}

/// <summary>Scheduling priority of an entity; higher is served first. Mirrors <c>drm_sched_priority</c>.</summary>
public enum GpuPriority
{
    /// <summary>Low.</summary>
    Low = 0,

    /// <summary>Normal.</summary>
    Normal = 1,

    /// <summary>High.</summary>
    High = 2,

    /// <summary>The kernel's own entity (memory moves).</summary>
    Kernel = 3,
}

/// <summary>A client's queue on an engine kind. Mirrors <c>drm_sched_entity</c>; jobs run in push order.</summary>
public sealed class SchedEntity
{
    internal SchedEntity(GpuClient? client, Engine[] engines, GpuPriority priority, string name)
    {
        Client = client;
        Engines = engines;
        Priority = priority;
        Name = name;
        ulong first = FenceContext.Allocate(2);
        ScheduledTimeline = name + ".scheduled";
        FinishedTimeline = name + ".finished";
        ScheduledContext = first;
        FinishedContext = first + 1;
        CurrentEngine = engines[0];
    }

    /// <summary>The owning client (null for the kernel's entity).</summary>
    public GpuClient? Client { get; }

    /// <summary>The engines it may run on (load-balanced when idle).</summary>
    public IReadOnlyList<Engine> Engines { get; }

    /// <summary>Priority.</summary>
    public GpuPriority Priority { get; }

    /// <summary>Name.</summary>
    public string Name { get; }

    internal string ScheduledTimeline { get; }

    internal string FinishedTimeline { get; }

    /// <summary>Context of its scheduled fences.</summary>
    public ulong ScheduledContext { get; }

    /// <summary>Context of its finished fences (<see cref="ScheduledContext"/> + 1, as in the kernel).</summary>
    public ulong FinishedContext { get; }

    /// <summary>Guards the queue and the fields below.</summary>
    internal readonly object Gate = new();

    internal readonly Queue<GpuJob> Queue = new();
    internal Engine CurrentEngine;
    internal ulong NextSeqno;
    internal GpuFence? LastFinished;
    internal GpuFence? LastScheduled;
    internal bool Killed;

    /// <summary>Engine time charged so far, scaled by the priority's weight (see <see cref="ReadyKey"/>).
    /// Read and written under the gate of the engine its ready job is on.</summary>
    internal long VRuntime;

    /// <summary>Jobs queued and not yet started.</summary>
    public int QueuedJobs
    {
        get
        {
            lock (Gate)
            {
                return Queue.Count;
            }
        }
    }
}

/// <summary>Where a buffer's storage currently is.</summary>
public enum BufferPlacement
{
    /// <summary>In device memory.</summary>
    Device,

    /// <summary>Evicted to system memory.</summary>
    System,
}

/// <summary>A buffer object with backing storage. It owns a reservation object.</summary>
public sealed class GpuBuffer
{
    internal GpuBuffer(int id, long size, string name)
    {
        Id = id;
        Size = size;
        Name = name;
        Reservation = new Reservation(name);
    }

    /// <summary>Id.</summary>
    public int Id { get; }

    /// <summary>Size in bytes.</summary>
    public long Size { get; }

    /// <summary>Name.</summary>
    public string Name { get; }

    /// <summary>The buffer's fences.</summary>
    public Reservation Reservation { get; }

    /// <summary>Where the storage is (memory manager's view).</summary>
    public BufferPlacement Placement { get; internal set; } = BufferPlacement.System;

    /// <summary>The KERNEL fence of the move or clear that established the current storage.</summary>
    public Fence? StorageFence { get; internal set; }

    internal int PinCount;
    internal long LastUse;
    internal LinkedListNode<GpuBuffer>? LruNode;

    /// <inheritdoc/>
    public override string ToString() => Name;
}

/// <summary>What happened, for subscribers and the run digest.</summary>
public enum GpuEventKind
{
    /// <summary>A job was submitted.</summary>
    JobSubmitted,

    /// <summary>A job was handed to its engine (scheduled fence signalled).</summary>
    JobStarted,

    /// <summary>A job's finished fence signalled.</summary>
    JobCompleted,

    /// <summary>An engine timed out and was reset.</summary>
    EngineReset,

    /// <summary>A job or CPU access touched storage before its move or clear signalled.</summary>
    LeakDetected,

    /// <summary>The device was lost.</summary>
    DeviceLost,

    /// <summary>A job failed because a dependency did not signal in time.</summary>
    DependencyTimeout,

    /// <summary>A CPU access to a buffer began.</summary>
    CpuAccess,
}

/// <summary>One event of the virtual GPU.</summary>
/// <param name="Kind">What happened.</param>
/// <param name="TimeNs">When (virtual or monotonic ns).</param>
/// <param name="Job">The job, if any.</param>
/// <param name="Engine">The engine, if any.</param>
/// <param name="Error">A negative errno, or 0.</param>
/// <param name="Buffer">The buffer, for leaks and CPU accesses.</param>
public readonly record struct GpuEvent(GpuEventKind Kind, long TimeNs, GpuJob? Job, Engine? Engine, int Error, GpuBuffer? Buffer = null);

/// <summary>
/// The order of an engine's ready queue: the kernel's entity first, then the entity with the least
/// virtual runtime, ties to the higher priority, then first come. Each started job charges its entity
/// its duration times the priority's weight (<see cref="Charge"/>), so a higher priority gets a larger
/// share of the engine while every entity still progresses.
/// </summary>
/// <remarks>
/// This follows the fair policy proposed for the DRM scheduler (the "fair DRM scheduler" series on
/// dri-devel, 2025), whose entities carry a priority-scaled virtual runtime and are picked lowest first.
/// The strict-priority run queues that FenceCore modelled before (one <c>drm_sched_rq</c> per priority,
/// the higher always served first) starve a low-priority entity for as long as higher ones stay busy:
/// with no buffer dependencies to slow the busy clients (<c>--buffers-per-job 0</c>) the stress runner's
/// watchdog saw a low-priority job wait over a second of GPU time. The weights here are FenceCore's own
/// (1, 2 and 4 for high, normal and low; the series uses shifts).
/// </remarks>
internal readonly record struct ReadyKey(int Class, long VRuntime, int Rank, long Seq) : IComparable<ReadyKey>
{
    /// <summary>The smallest charge of a job, so that zero-length jobs still take their turn.</summary>
    private const long MinChargeNs = 1_000;

    public static ReadyKey For(SchedEntity entity, long vruntime, long seq) =>
        new(entity.Priority == GpuPriority.Kernel ? 0 : 1, vruntime, -(int)entity.Priority, seq);

    /// <summary>What running <paramref name="durationNs"/> adds to an entity's virtual runtime.</summary>
    public static long Charge(GpuPriority priority, long durationNs)
    {
        long weight = priority switch
        {
            GpuPriority.High => 1,
            GpuPriority.Normal => 2,
            _ => 4,
        };

        return Math.Max(durationNs, MinChargeNs) * weight;
    }

    public int CompareTo(ReadyKey other)
    {
        int c = Class.CompareTo(other.Class);
        if (c == 0)
        {
            c = VRuntime.CompareTo(other.VRuntime);
        }

        if (c == 0)
        {
            c = Rank.CompareTo(other.Rank);
        }

        return c != 0 ? c : Seq.CompareTo(other.Seq);
    }
}
