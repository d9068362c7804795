namespace FenceCore.Stress;

/// <summary>
/// The runner counts time in ns, as its trace formats do (Perfetto and Chrome's JSON count ns and µs): the
/// library's points in time are converted here, at the boundary.
/// </summary>
internal static class TimeNs
{
    /// <summary>A point in time or a duration in ns (exact: a tick is 100 ns).</summary>
    public static long Ns(this TimeSpan time) => time.Ticks * 100;

    /// <summary>A point in time that may not have happened yet, in ns, or -1.</summary>
    public static long NsOrNone(this TimeSpan? time) => time is { } t ? t.Ticks * 100 : -1;
}
