using System.Diagnostics;

namespace FenceCore;

/// <summary>
/// The monotonic clock that fence timestamps use (the analogue of <c>ktime_get()</c>,
/// CLOCK_MONOTONIC), in nanoseconds since an arbitrary origin.
/// </summary>
public static class FenceClock
{
    private static readonly double s_nsPerTick = 1_000_000_000.0 / Stopwatch.Frequency;
    private static readonly bool s_tickIsNs = Stopwatch.Frequency == 1_000_000_000;

    /// <summary>The current monotonic time in nanoseconds.</summary>
    public static long NowNs
    {
        get
        {
            long ticks = Stopwatch.GetTimestamp();
            return s_tickIsNs ? ticks : (long)(ticks * s_nsPerTick);
        }
    }
}
