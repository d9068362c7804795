namespace FenceCore.VirtualGpu;

/// <summary>
/// The virtual GPU's clock as a <see cref="TimeProvider"/> (<see cref="Gpu.TimeProvider"/> in virtual
/// mode): timestamps are <see cref="Gpu.NowNs"/> (ns, so <see cref="TimestampFrequency"/> is 10^9) and a
/// timer fires when the GPU's event loop reaches its due time, so a wait's timeout given this provider
/// (for example <c>Fence.WaitAsync(timeout, gpu.TimeProvider)</c>) follows virtual time.
/// </summary>
/// <remarks>Like the rest of the virtual mode, it is single-threaded: timers are created, changed and
/// fire on the thread that runs the GPU's loop (or between runs).</remarks>
internal sealed class GpuTimeProvider(Gpu gpu) : TimeProvider
{
    /// <summary>The wall-clock time that virtual time 0 stands for.</summary>
    private static readonly DateTimeOffset s_epoch = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public override long TimestampFrequency => 1_000_000_000;

    public override long GetTimestamp() => gpu.NowNs;

    public override DateTimeOffset GetUtcNow() => s_epoch.AddTicks(gpu.NowNs / 100);

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(callback);
        var timer = new VirtualTimer(gpu, callback, state);
        timer.Change(dueTime, period);
        return timer;
    }

    /// <summary>A timer on the GPU's event loop. Each arming has a generation; a posted firing whose
    /// generation is stale (the timer was changed or disposed since) does nothing.</summary>
    private sealed class VirtualTimer(Gpu gpu, TimerCallback callback, object? state) : ITimer
    {
        private long _generation;
        private long _periodNs = -1;
        private bool _disposed;

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            if (_disposed)
            {
                return false;
            }

            long generation = ++_generation;
            _periodNs = period == Timeout.InfiniteTimeSpan || period == TimeSpan.Zero ? -1 : period.Ticks * 100;
            if (dueTime != Timeout.InfiniteTimeSpan)
            {
                Arm(gpu.NowNs + (dueTime.Ticks * 100), generation);
            }

            return true;
        }

        public void Dispose()
        {
            _disposed = true;
            _generation++;
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return default;
        }

        private void Arm(long atNs, long generation) => gpu.Schedule(atNs, () =>
        {
            if (_disposed || generation != _generation)
            {
                return;
            }

            if (_periodNs > 0)
            {
                Arm(gpu.NowNs + _periodNs, generation);
            }

            callback(state);
        });
    }
}
