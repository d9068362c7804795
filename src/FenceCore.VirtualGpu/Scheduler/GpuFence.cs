using FenceCore.Internal;
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
/// Its timestamp is a point on the GPU's clock (<see cref="Gpu.Now"/>): virtual time in virtual mode, the real time since the GPU's creation in threads mode.</summary>
public sealed class GpuFence : Fence
{
    /// <summary>Set once at creation. PERF: the GPU and the timeline's name are reached through the job (its
    /// engine's owner, its entity's or ring's name), not stored: 16 B less on each of a job's three fences.</summary>
    private readonly GpuJob _job;

    /// <summary>Creates one of <paramref name="job"/>'s fences. PERF: its kind and creation time are not stored
    /// but derived from the job (the context tells the kind; the job keeps the two times): 16 B less on each
    /// of a job's three fences, which are 64 B, not 80.</summary>
    internal GpuFence(ulong context, ulong seqno, GpuJob job)
        : base(context, seqno, FenceOptions.None, FenceTraits.NoPollHook)
    {
        _job = job;
    }

    private Gpu Gpu => _job.Engine.Owner!;

    /// <summary>What the fence stands for: read from its context (an entity's scheduled or finished
    /// timeline, or else the engine ring's).</summary>
    public GpuFenceKind Kind =>
        Context == _job.Entity.ScheduledContext ? GpuFenceKind.Scheduled
        : Context == _job.Entity.FinishedContext ? GpuFenceKind.Finished
        : GpuFenceKind.Hardware;

    /// <summary>The job it belongs to (every GPU fence belongs to one).</summary>
    public GpuJob? Job => _job;

    /// <summary>The timeline's name, e.g. "client3.graphics.finished" or "copy0.ring".</summary>
    public string Timeline => Kind switch
    {
        GpuFenceKind.Scheduled => _job.Entity.ScheduledTimeline,
        GpuFenceKind.Finished => _job.Entity.FinishedTimeline,
        _ => _job.Engine.RingTimeline,
    };

    /// <summary>When it was created, on the GPU's clock (see <see cref="Gpu.Now"/>): the job's submission for
    /// its scheduled and finished fences (both are created when it is armed), the moment the scheduler handed
    /// it to its ring for the hardware fence.</summary>
    public TimeSpan CreationTime => TimeTicks.FromNs(CreatedNs);

    /// <summary>The creation time in ns (see <see cref="CreationTime"/>).</summary>
    internal long CreatedNs => Kind == GpuFenceKind.Hardware ? _job.HandedToRingNs : _job.SubmitNs;

    /// <inheritdoc/>
    public override string DriverName => "vgpu";

    /// <inheritdoc/>
    public override string TimelineName => Timeline;

    /// <inheritdoc/>
    protected override void OnSignaled() => Gpu.OnFenceSignaled(this);

    /// <summary>A consumer's callback threw: the GPU counts and reports it; it never reaches the scheduler.</summary>
    protected override void OnCallbackFailed(Exception exception) => Gpu.ReportConsumerFailure(exception);

    /// <summary>Signals at GPU time; only the GPU, the fence's owner, calls it.</summary>
    internal bool SignalAt(int error, long timestampNs) => SignalWithTimestampNs(error, timestampNs);
}
