namespace FenceCore.VirtualGpu;

/// <summary>
/// Runs the GPU's work items: "soon" (so a fence callback never recurses into the scheduler) and "at a
/// time" (job completions, timeouts). One implementation per <see cref="GpuTimeMode"/>.
/// </summary>
internal abstract class GpuDispatcher : IDisposable
{
    /// <summary>The current time in ns (virtual or monotonic).</summary>
    public abstract long NowNs { get; }

    /// <summary>Runs <paramref name="action"/> soon, after the current work item, in FIFO order.</summary>
    public abstract void Post(Action<object?> action, object? state);

    /// <summary>Runs <paramref name="action"/> at <paramref name="timeNs"/> (or soon, if that has passed).</summary>
    public abstract void PostAt(long timeNs, Action<object?> action, object? state);

    /// <summary>Where a worker thread reports a work item's exception, so it never kills the process.</summary>
    public Action<Exception>? WorkItemFailed { get; set; }

    public virtual void Dispose()
    {
    }
}
