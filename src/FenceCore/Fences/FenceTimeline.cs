using System.Globalization;
using FenceCore.Internal;

namespace FenceCore;

/// <summary>
/// A timeline that hands out fences, or bare (context, seqno) points, in order: it owns a context from
/// <see cref="FenceContext.Allocate"/> and counts its seqnos, so callers never count by hand and never
/// pick a context that collides with another timeline's (a chain's, an array's, another device's).
/// </summary>
/// <remarks>
/// <para>
/// This is the per-context policy of the fences it creates. Their <see cref="Fence.TimelineName"/> is the
/// timeline's name, and an exception thrown by one of their callbacks goes to the handler given here,
/// on the thread that ran the callbacks, instead of being unhandled (see <see cref="Fence.OnCallbackFailed"/>).
/// </para>
/// <para>
/// Handing out a point is one atomic increment, so several producers may share a timeline; the fences
/// must then still signal in seqno order, which is the producers' business, as in the kernel.
/// </para>
/// </remarks>
public sealed class FenceTimeline
{
    private readonly Action<Fence, Exception>? _callbackFailed;
    private readonly FenceOptions _options;
    private readonly TimeProvider? _time;

    /// <summary>The last seqno handed out, 0 before the first. Written only with
    /// <see cref="Interlocked.CompareExchange(ref long, long, long)"/>; read with Volatile.Read.</summary>
    private long _last;

    /// <summary>Creates a timeline on a new context.</summary>
    /// <param name="name">Reported by its fences as <see cref="Fence.TimelineName"/>.</param>
    /// <param name="options">The options of every fence it creates.</param>
    /// <param name="callbackFailed">Receives each exception a callback of one of its fences throws
    /// (the fence, the exception); null to leave such exceptions unhandled. It must not throw.</param>
    /// <param name="timeProvider">The clock its fences' signal times come from (converted to ns), so they
    /// follow a simulator's virtual time or a test's <c>FakeTimeProvider</c>; null for
    /// <see cref="FenceClock"/>. A caller-given timestamp (<c>SignalWithTimestamp</c>) still wins.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="options"/> has an unknown bit.</exception>
    public FenceTimeline(string name = "timeline", FenceOptions options = FenceOptions.None, Action<Fence, Exception>? callbackFailed = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        if ((options & ~(FenceOptions.Seqno64 | FenceOptions.RunCallbacksAsynchronously)) != 0)
        {
            ThrowHelper.ThrowUnknownFenceOptions(options);
        }

        Name = name;
        _options = options;
        _callbackFailed = callbackFailed;
        _time = timeProvider;
        Context = FenceContext.Allocate();
    }

    /// <summary>The timeline's context.</summary>
    public ulong Context { get; }

    /// <summary>The timeline's name.</summary>
    public string Name { get; }

    /// <summary>The clock of its fences' signal times; null for <see cref="FenceClock"/>.</summary>
    public TimeProvider? TimeProvider => _time;

    /// <summary>The options of the fences it creates.</summary>
    public FenceOptions Options => _options;

    /// <summary>The last seqno handed out, 0 before the first.</summary>
    public ulong LastSeqno => (ulong)Volatile.Read(ref _last);

    /// <summary>Hands out the next point without creating a fence (for a fence type of your own).</summary>
    /// <returns>This timeline's context and the next seqno, starting at 1.</returns>
    /// <exception cref="InvalidOperationException">Every seqno has been handed out; nothing changed.</exception>
    public (ulong Context, ulong Seqno) NextPoint() => (Context, Next());

    /// <summary>Creates a pending fence at the next seqno; signal it through the returned source.</summary>
    /// <exception cref="InvalidOperationException">Every seqno has been handed out; nothing changed.</exception>
    public FenceSource CreateFence() => new TimelineFence(this, Next());

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"timeline '{Name}' ctx {Context} at {LastSeqno}");

    private ulong Next()
    {
        long last = Volatile.Read(ref _last);
        while (true)
        {
            if (last == -1) // ulong.MaxValue: the seqno after it would be 0 again
            {
                ThrowHelper.ThrowTimelineExhausted(this);
            }

            long seen = Interlocked.CompareExchange(ref _last, last + 1, last);
            if (seen == last)
            {
                return (ulong)(last + 1);
            }

            last = seen;
        }
    }

    /// <summary>A <see cref="TimeProvider"/>'s timestamp in ns.</summary>
    internal static long ToNs(TimeProvider time)
    {
        long ticks = time.GetTimestamp();
        long frequency = time.TimestampFrequency;
        return frequency == 1_000_000_000 ? ticks : (long)((Int128)ticks * 1_000_000_000 / frequency);
    }

    /// <summary>For tests of exhaustion: moves the counter as if <paramref name="last"/> had been handed out.</summary>
    internal void SetLastSeqnoForTesting(ulong last) => Volatile.Write(ref _last, (long)last);

    /// <summary>A fence of a <see cref="FenceTimeline"/>: its name and its callback-failure policy come from the timeline.</summary>
    private sealed class TimelineFence(FenceTimeline timeline, ulong seqno)
        : FenceSource(timeline.Context, seqno, timeline._options, (timeline._time is not null ? FenceTraits.CustomClock : FenceTraits.None) | FenceTraits.NoSignaledHook | FenceTraits.NoPollHook)
    {
        public override string TimelineName => timeline.Name;

        private protected override long ClockNowNs() => ToNs(timeline._time!);

        protected override void OnCallbackFailed(Exception exception)
        {
            if (timeline._callbackFailed is { } handler)
            {
                handler(this, exception);
            }
            else
            {
                base.OnCallbackFailed(exception);
            }
        }
    }
}
