using System.Globalization;

namespace FenceCore.VirtualGpu;

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
