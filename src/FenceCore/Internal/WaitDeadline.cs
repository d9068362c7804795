namespace FenceCore.Internal;

/// <summary>
/// When a multi-step wait gives up: an absolute <see cref="FenceClock"/> time in ns (the kernel's
/// <c>timeout_nsec</c>), or a timeout measured on a <see cref="TimeProvider"/> from the moment the wait
/// started. The wait loops ask it for what is left before each sleep.
/// </summary>
internal readonly struct WaitDeadline
{
    private readonly long _absNs;
    private readonly long _start;
    private readonly TimeSpan _timeout;

    private WaitDeadline(long absNs, TimeProvider? time, long start, TimeSpan timeout)
    {
        _absNs = absNs;
        Time = time;
        _start = start;
        _timeout = timeout;
    }

    /// <summary>The provider the wait's timers run on; null for the system's.</summary>
    public TimeProvider? Time { get; }

    /// <summary>Gives up at <paramref name="absNs"/> on <see cref="FenceClock"/> (<see cref="long.MaxValue"/>: never).</summary>
    public static WaitDeadline AtNs(long absNs) => new(absNs, null, 0, default);

    /// <summary>Gives up once <paramref name="timeout"/> has passed on <paramref name="time"/>'s clock.</summary>
    public static WaitDeadline After(TimeSpan timeout, TimeProvider time) => new(0, time, time.GetTimestamp(), timeout);

    /// <summary>What is left: <see cref="Timeout.InfiniteTimeSpan"/> for no limit, <see cref="TimeSpan.Zero"/> once passed.</summary>
    public TimeSpan Remaining()
    {
        if (Time is not null)
        {
            if (_timeout == Timeout.InfiniteTimeSpan)
            {
                return Timeout.InfiniteTimeSpan;
            }

            TimeSpan left = _timeout - Time.GetElapsedTime(_start);
            return left > TimeSpan.Zero ? left : TimeSpan.Zero;
        }

        if (_absNs == long.MaxValue)
        {
            return Timeout.InfiniteTimeSpan;
        }

        long leftNs = _absNs - FenceClock.NowNs;
        if (leftNs <= 0)
        {
            return TimeSpan.Zero;
        }

        // Round up so a wait never ends just before its deadline; cap at the largest timeout a wait takes.
        long ms = Math.Min((leftNs + 999_999) / 1_000_000, int.MaxValue - 1);
        return TimeSpan.FromMilliseconds(ms);
    }
}
