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
