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
/// <param name="Kind">What happened.</param>
/// <param name="TimeNs">When (virtual or monotonic ns).</param>
/// <param name="Job">The job, if any.</param>
/// <param name="Engine">The engine, if any.</param>
/// <param name="Error">A negative errno, or 0.</param>
/// <param name="Buffer">The buffer, for leaks and CPU accesses.</param>
public readonly record struct GpuEvent(GpuEventKind Kind, long TimeNs, GpuJob? Job, Engine? Engine, int Error, GpuBuffer? Buffer = null);
