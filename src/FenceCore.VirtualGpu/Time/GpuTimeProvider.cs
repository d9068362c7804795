namespace FenceCore.VirtualGpu;

/// <summary>
/// The virtual GPU's clock as a <see cref="TimeProvider"/> (<see cref="Gpu.TimeProvider"/> in virtual
/// mode): timestamps are <see cref="Gpu.NowNs"/> (ns, so <see cref="TimestampFrequency"/> is 10^9) and a
/// timer fires when the GPU's event loop reaches its due time, so a wait's timeout given this provider
/// (for example <c>Fence.WaitAsync(timeout, gpu.TimeProvider)</c>) follows virtual time.
/// </summary>
/// <remarks>Timers may be created, changed and disposed on any thread (an async wait's continuation runs
/// on the thread pool and may arm the next timer); they fire on the thread that runs the GPU's loop,
/// which picks up a timer armed elsewhere before its next event.</remarks>
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
        /// <summary>Bumped by each change and by dispose (Interlocked); a firing of another generation is stale.</summary>
        private long _generation;

        /// <summary>The period in ns, or -1. Written before the generation bump that publishes it.</summary>
        private long _periodNs = -1;

        /// <summary>Set once by dispose; read with Volatile.Read.</summary>
        private int _disposed;

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            if (Volatile.Read(ref _disposed) != 0)
            {
                return false;
            }

            Volatile.Write(ref _periodNs, period == Timeout.InfiniteTimeSpan || period == TimeSpan.Zero ? -1 : period.Ticks * 100);
            long generation = Interlocked.Increment(ref _generation);
            if (dueTime != Timeout.InfiniteTimeSpan)
            {
                Arm(gpu.NowNs + (dueTime.Ticks * 100), generation);
            }

            return true;
        }

        public void Dispose()
        {
            Volatile.Write(ref _disposed, 1);
            Interlocked.Increment(ref _generation);
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return default;
        }

        private void Arm(long atNs, long generation) => gpu.ScheduleFromAnyThread(atNs, () =>
        {
            if (Volatile.Read(ref _disposed) != 0 || generation != Interlocked.Read(ref _generation))
            {
                return;
            }

            long period = Volatile.Read(ref _periodNs);
            if (period > 0)
            {
                Arm(gpu.NowNs + period, generation);
            }

            callback(state);
        });
    }
}
