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
    public static long ToNs(TimeSpan time, string paramName)
    {
        if ((ulong)time.Ticks > MaxTicks)
        {
            ThrowOutOfRange(time, paramName);
        }

        return time.Ticks * NsPerTick;
    }

    /// <summary>The ns of a duration, for the virtual GPU's internal clocks (the same range, its own message).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The duration is negative or longer than <see cref="MaxTicks"/>.</exception>
    public static long DurationToNs(TimeSpan duration, string paramName)
    {
        if ((ulong)duration.Ticks > MaxTicks)
        {
            throw new ArgumentOutOfRangeException(paramName, duration,
                "A duration must not be negative, and must be at most 292 years (TimeSpan.FromTicks(long.MaxValue / 100)).");
        }

        return duration.Ticks * NsPerTick;
    }

    private static void ThrowOutOfRange(TimeSpan time, string paramName) =>
        throw new ArgumentOutOfRangeException(paramName, time,
            "A point in time is the time since the clock's origin: it must not be negative, and must be at most 292 years (TimeSpan.FromTicks(long.MaxValue / 100)).");
}
