using FenceCore.Internal;
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

/// <summary>The phases of <see cref="GpuJob.Phase"/>, and the moves allowed between them.</summary>
internal static class JobPhase
{
    public const int Queued = 0;
    public const int Started = 1;
    public const int FailedBeforeStart = 2;
    public const int HardwareDone = 3;
    public const int Done = 4;

    public static string Name(int phase) => phase switch
    {
        Queued => "queued",
        Started => "started",
        FailedBeforeStart => "failed before starting",
        HardwareDone => "done on the ring",
        Done => "done",
        _ => $"phase {phase}",
    };

    /// <summary>Throws unless from → to is a move of the state machine (HardwareDone → HardwareDone is
    /// allowed: a reset or device loss may end ring work that had already finished).</summary>
    public static void Check(GpuJob job, int from, int to)
    {
        bool allowed = (from, to) switch
        {
            (Queued, Started) or (Queued, FailedBeforeStart) => true,
            (Started, HardwareDone) or (HardwareDone, HardwareDone) => true,
            (HardwareDone, Done) or (FailedBeforeStart, Done) => true,
            _ => false,
        };
        if (!allowed)
        {
            throw new InvalidOperationException($"Scheduler invariant broken: {job} cannot move from {Name(from)} to {Name(to)}.");
        }
    }
}

/// <summary>A submitted job. Mirrors <c>drm_sched_job</c>.</summary>
public sealed class GpuJob
{
    /// <summary>Creates a job of <paramref name="entity"/> (its client's, or the kernel's). PERF: the client and
    /// whether it is a kernel job are read through the entity, not stored: 16 B less per job.</summary>
    internal GpuJob(long id, SchedEntity entity, JobDescription desc)
    {
        Id = id;
        Entity = entity;
        Description = desc;
    }

    /// <summary>A unique, increasing id.</summary>
    public long Id { get; }

    /// <summary>The submitting client (null for the memory manager's moves and clears, see <see cref="IsKernelJob"/>).</summary>
    public GpuClient Client => Entity.Client!;

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

    /// <summary>The ring's hardware fence, once running. Written once under the engine's gate.</summary>
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

    /// <summary>For each buffer access, the move or clear fence that established the storage it touches, while it
    /// had not signalled at submission (null where it had); empty when none was pending and no access is an
    /// import (<see cref="MemoryManager.PinResident"/>). Read by the leak detector.</summary>
    internal Fence?[] StorageFences { get; set; } = [];

    /// <summary>When it was submitted, on the GPU's clock (see <see cref="Gpu.Now"/>).</summary>
    public TimeSpan SubmitTime => TimeTicks.FromNs(SubmitNs);

    /// <summary>When execution starts on the ring (after the ring's earlier jobs); null until the scheduler hands
    /// the job to its ring, which sets it (so it may then lie ahead of <see cref="Gpu.Now"/>).</summary>
    /// <remarks>Null too for a job queued behind a hung job on its ring: its ring time is the stall mark, not a
    /// time it will run at (the reset cancels it).</remarks>
    public TimeSpan? StartTime => StartNs is >= 0 and < Gpu.MaxClockNs ? TimeTicks.FromNs(StartNs) : null;

    /// <summary>When execution ends; null until the scheduler hands the job to its ring, and for a hung job,
    /// which never ends on its own.</summary>
    public TimeSpan? EndTime => EndNs >= 0 && StartNs < Gpu.MaxClockNs ? TimeTicks.FromNs(EndNs) : null;

    /// <summary>Submission time in ns.</summary>
    internal long SubmitNs { get; set; }

    /// <summary>When the scheduler handed the job to its ring (its hardware fence's creation) in ns. Written once
    /// under the engine's gate, before the hardware fence is published.</summary>
    internal long HandedToRingNs { get; set; }

    /// <summary>When execution starts on the ring in ns, or -1. Written once under the engine's gate when the
    /// job starts.</summary>
    internal long StartNs { get; set; } = -1;

    /// <summary>When execution ends in ns, or -1 (a hung job never ends on its own). Written once under the
    /// engine's gate when the job starts.</summary>
    internal long EndNs { get; set; } = -1;

    /// <summary>Current state, read from the job's one state machine (<see cref="Phase"/>).</summary>
    public GpuJobState State => Volatile.Read(ref Phase) switch
    {
        JobPhase.Queued or JobPhase.FailedBeforeStart => GpuJobState.Queued,
        JobPhase.Started or JobPhase.HardwareDone => GpuJobState.Running,
        _ => GpuJobState.Done,
    };

    /// <summary>Credits taken on the ring.</summary>
    public int Credits { get; internal set; }

    /// <summary>True for the memory manager's moves and clears (KERNEL fences).</summary>
    public bool IsKernelJob => Entity.Client is null;

    /// <summary>Drops the references to other jobs' fences once this job has completed and its completion
    /// event has been delivered; the dependency lists read empty afterwards.</summary>
    internal void ReleaseDependencies()
    {
        SubmittedDependencies = [];
        EffectiveDependencies = [];
        StorageFences = [];
        PreviousFinished = null; // and so PreviousScheduled
        Waiter = null;
    }

    /// <summary>The error its fences signal with once its ring work is over (0, or -ETIMEDOUT, -ECANCELED,
    /// -ENODEV from a reset or device loss). Written under the engine's gate with the move to
    /// <see cref="JobPhase.HardwareDone"/>; read by the drain after it took the job from the ring there.</summary>
    internal int PendingError;

    /// <summary>
    /// The job's one state (<see cref="JobPhase"/>). Queued moves by CAS to Started (the scheduler took a ring
    /// slot, under the engine's gate) or to FailedBeforeStart (kill, dependency timeout, device loss, a
    /// failed submission), so a start and a failure cannot both win; Started moves to HardwareDone under the
    /// engine's gate (the ring finished it, or a reset or device loss ended it); HardwareDone and
    /// FailedBeforeStart move to Done just before the finished fence signals. Every move goes through
    /// <see cref="TryMove"/> or <see cref="Move"/>, which check that it is one of these. Read with Volatile.Read.
    /// </summary>
    internal int Phase;

    /// <summary>Moves from <paramref name="from"/> to <paramref name="to"/> by CAS; false when the job was
    /// not in <paramref name="from"/> (another thread moved it first).</summary>
    internal bool TryMove(int from, int to)
    {
        JobPhase.Check(this, from, to);
        return Interlocked.CompareExchange(ref Phase, to, from) == from;
    }

    /// <summary>Moves to <paramref name="to"/>, which must follow the current phase; the caller holds what
    /// makes the move its alone (the engine's gate, or the job's earlier won CAS).</summary>
    internal void Move(int to)
    {
        int from = Volatile.Read(ref Phase);
        JobPhase.Check(this, from, to);
        Volatile.Write(ref Phase, to);
        AssertInvariants();
    }

    /// <summary>What must hold in each phase; a broken one is a scheduler bug, so it throws.</summary>
    internal void AssertInvariants()
    {
        int phase = Volatile.Read(ref Phase);
        bool ok = phase switch
        {
            JobPhase.Started or JobPhase.HardwareDone => Hardware is not null && StartNs >= 0,
            JobPhase.Done => Finished is not null,
            _ => true,
        };
        if (!ok)
        {
            throw new InvalidOperationException($"Scheduler invariant broken: {this} is {JobPhase.Name(phase)} with hardware fence {(Hardware is null ? "none" : "set")} and start {StartNs}.");
        }
    }

    /// <summary>The entity's previous finished fence at arm time: a job failed before running signals
    /// only after it, so finished fences of an entity always signal in seqno order. Written at arm time under
    /// the entity's gate, cleared by <see cref="ReleaseDependencies"/> once the job is done.</summary>
    internal GpuFence? PreviousFinished;

    /// <summary>The entity's previous scheduled fence at arm time, for the same ordering of scheduled fences: the
    /// previous job's, read through <see cref="PreviousFinished"/> (both are that job's, armed together). PERF: not
    /// stored, 8 B less per job.</summary>
    internal GpuFence? PreviousScheduled => PreviousFinished?.Job?.Scheduled;

    /// <summary>The re-armable dependency callback (one node walks all dependencies). Created by the thread
    /// that starts the wait (the entity's head is one job at a time); its own fields say how they are used.</summary>
    internal DependencyWaiter? Waiter;

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"job {Id} ({Description.Label ?? Engine?.Name}) {State}");
}
