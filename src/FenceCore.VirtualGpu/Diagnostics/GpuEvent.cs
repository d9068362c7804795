using FenceCore.Internal;

namespace FenceCore.VirtualGpu;

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

    /// <summary>A dynamic import's mapping was invalidated by a move of the exporter's (<c>move_notify</c>);
    /// raised on the importer, with the import as the buffer.</summary>
    MoveNotified,
}

/// <summary>One event of the virtual GPU.</summary>
public readonly record struct GpuEvent
{
    /// <summary>Creates an event (for tests of subscribers; the GPU raises its own).</summary>
    /// <param name="kind">What happened.</param>
    /// <param name="time">When, on the GPU's clock (see <see cref="Gpu.Now"/>).</param>
    /// <param name="job">The job, if any.</param>
    /// <param name="engine">The engine, if any.</param>
    /// <param name="error">A negative errno, or 0.</param>
    /// <param name="buffer">The buffer, for leaks and CPU accesses.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="time"/> is negative or beyond the clock's range.</exception>
    public GpuEvent(GpuEventKind kind, TimeSpan time, GpuJob? job, Engine? engine, int error, GpuBuffer? buffer = null)
        : this(kind, TimeTicks.ToNs(time, nameof(time)), job, engine, error, buffer)
    {
    }

    /// <summary>The GPU's own form: the time in the ns its clocks count.</summary>
    internal GpuEvent(GpuEventKind kind, long timeNs, GpuJob? job, Engine? engine, int error, GpuBuffer? buffer = null)
    {
        Kind = kind;
        TimeNs = timeNs;
        Job = job;
        Engine = engine;
        Error = error;
        Buffer = buffer;
    }

    /// <summary>What happened.</summary>
    public GpuEventKind Kind { get; }

    /// <summary>When, on the GPU's clock (virtual time, or the real time since the GPU's creation in threads mode; see <see cref="Gpu.Now"/>).</summary>
    public TimeSpan Time => TimeTicks.FromNs(TimeNs);

    /// <summary>The exact time in ns, which the digest folds.</summary>
    internal long TimeNs { get; }

    /// <summary>The job, if any.</summary>
    public GpuJob? Job { get; }

    /// <summary>The engine, if any.</summary>
    public Engine? Engine { get; }

    /// <summary>A negative errno, or 0.</summary>
    public int Error { get; }

    /// <summary>The buffer, for leaks and CPU accesses.</summary>
    public GpuBuffer? Buffer { get; }
}
