namespace FenceCore.Internal;

/// <summary>
/// Converts between the two forms of a point in time: the public surface's <see cref="TimeSpan"/> since
/// the clock's origin, and the nanoseconds the fences store (the kernel's <c>ktime_t</c>). A tick is
/// 100 ns, so a <see cref="TimeSpan"/> converts to ns exactly and ns convert to a tick by truncation.
/// </summary>
internal static class TimeTicks
{
    /// <summary>The largest tick count whose ns fit in a <see cref="long"/> (about 292 years).</summary>
    public const long MaxTicks = long.MaxValue / NsPerTick;

    private const long NsPerTick = 100;

    /// <summary>The tick that holds <paramref name="ns"/> (truncated toward zero).</summary>
    public static TimeSpan FromNs(long ns) => new(ns / NsPerTick);

    /// <summary>The ns of a point in time given on the public surface.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The time is before the clock's origin or past
    /// <see cref="MaxTicks"/>.</exception>
    public static long ToNs(TimeSpan time, string paramName) => ToNs(time, paramName, MaxTicks,
        "A point in time is the time since the clock's origin: it must not be negative, and must be at most 292 years (TimeSpan.FromTicks(long.MaxValue / 100)).");

    /// <summary>The ns of a time in [0, <paramref name="maxTicks"/>] ticks; <paramref name="rule"/> says why otherwise.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The time is negative or past <paramref name="maxTicks"/>.</exception>
    public static long ToNs(TimeSpan time, string paramName, long maxTicks, string rule)
    {
        if ((ulong)time.Ticks > (ulong)maxTicks)
        {
            ThrowOutOfRange(time, paramName, rule); // PERF: the throw stays out of the inlined signal path
        }

        return time.Ticks * NsPerTick;
    }

    private static void ThrowOutOfRange(TimeSpan time, string paramName, string rule) =>
        throw new ArgumentOutOfRangeException(paramName, time, rule);
}
