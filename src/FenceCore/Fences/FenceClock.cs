using System.Diagnostics;

namespace FenceCore;

/// <summary>
/// The monotonic clock that fence timestamps use by default (the analogue of <c>ktime_get()</c>,
/// CLOCK_MONOTONIC): the precise <see cref="Stopwatch"/> clock, as the time since an arbitrary origin.
/// </summary>
/// <remarks>
/// Points in time on FenceCore's surface (<see cref="Fence.Timestamp"/>, <see cref="Fence.Deadline"/>,
/// <see cref="Fence.SetDeadline"/>) are <see cref="TimeSpan"/>s since the origin of the fence's clock:
/// this one, a <see cref="FenceTimeline"/>'s <see cref="TimeProvider"/> (see <see cref="GetNow"/>), or
/// a simulator's virtual time. Only the uAPI (<c>FenceCore.Uapi</c>) counts them in nanoseconds, as the
/// kernel's ioctls do.
/// </remarks>
public static class FenceClock
{
    private static readonly double s_nsPerTick = 1_000_000_000.0 / Stopwatch.Frequency;
    private static readonly bool s_tickIsNs = Stopwatch.Frequency == 1_000_000_000;

    /// <summary>The current time on this clock, since its origin.</summary>
    public static TimeSpan Now => FenceCore.Internal.TimeTicks.FromNs(NowNs);

    /// <summary>The current time on <paramref name="timeProvider"/>'s timestamp clock, since its origin: the
    /// scale on which the fences of a <see cref="FenceTimeline"/> that uses it are stamped.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="timeProvider"/> is null.</exception>
    public static TimeSpan GetNow(TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        return FenceCore.Internal.TimeTicks.FromNs(FenceTimeline.ToNs(timeProvider));
    }

    /// <summary>The current monotonic time in nanoseconds.</summary>
    internal static long NowNs
    {
        get
        {
            long ticks = Stopwatch.GetTimestamp();
            return s_tickIsNs ? ticks : (long)(ticks * s_nsPerTick);
        }
    }
}
