namespace FenceCore;

/// <summary>
/// The producer's side of a fence: a fence that its holder signals. Keep the source, and hand consumers
/// <see cref="Fence"/>, which can wait, register callbacks and read the status, but cannot signal. The
/// split is the one between <see cref="TaskCompletionSource"/> and <see cref="Task"/>.
/// </summary>
/// <remarks>
/// <para>
/// The source is its own fence: <see cref="Fence"/> returns this object typed as the consumer's view, so
/// creating a signallable fence is one allocation of 56 bytes, as a plain fence is. A consumer that
/// casts the view back to <see cref="FenceSource"/> breaks the contract on purpose. The only sources
/// FenceCore hands out as a <see cref="FenceCore.Fence"/> are the signalled stubs, which cannot signal
/// again; the virtual GPU's, sw_sync's and the containers' fences are not sources, and only their owners
/// can signal them.
/// </para>
/// <para>
/// Callbacks that throw are handled by <see cref="Fence.OnCallbackFailed"/>: by default they are
/// unhandled exceptions on the thread pool. For a handler of your own, create fences from a
/// <see cref="FenceTimeline"/>, or derive from this class and override it.
/// </para>
/// </remarks>
public class FenceSource : Fence
{
    /// <summary>Creates a pending fence on <paramref name="context"/> at <paramref name="seqno"/>.
    /// Mirrors <c>dma_fence_init</c>; prefer <see cref="FenceTimeline.CreateFence()"/>, which counts
    /// seqnos for you.</summary>
    /// <param name="context">The timeline, from <see cref="FenceContext.Allocate"/>.</param>
    /// <param name="seqno">The position on the timeline.</param>
    /// <param name="options">How seqnos compare and where callbacks run.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="options"/> has an unknown bit.</exception>
    public FenceSource(ulong context, ulong seqno, FenceOptions options = FenceOptions.None)
        : base(context, seqno, options)
    {
    }

    /// <summary>For fences whose signal time comes from their own clock (<see cref="Fence.ClockNowNs"/>).</summary>
    private protected FenceSource(ulong context, ulong seqno, FenceOptions options, FenceTraits traits)
        : base(context, seqno, options, traits)
    {
    }

    /// <summary>The consumer's view: this fence, typed so that it cannot be signalled.</summary>
    public Fence Fence => this;

    /// <summary>Signals the fence now. Mirrors <c>dma_fence_signal</c>.</summary>
    /// <returns>True if this call signalled the fence; false if it had already signalled (the kernel's
    /// -EINVAL), in which case nothing changes.</returns>
    public new bool Signal() => base.Signal();

    /// <summary>Signals the fence with an error, atomically: the error belongs to the winning signaller.</summary>
    /// <param name="error">A negative errno in [-4095, -1], or 0 for none.</param>
    /// <returns>True if this call signalled the fence.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The error is outside the errno range; nothing changed.</exception>
    public new bool Signal(int error) => base.Signal(error);

    /// <summary>Signals with a caller-given timestamp: a point on the fence's clock, as the time since its
    /// origin (<see cref="FenceClock.Now"/>, or a simulator's virtual time). Mirrors
    /// <c>dma_fence_signal_timestamp</c>.</summary>
    /// <returns>True if this call signalled the fence.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The timestamp is negative or beyond the clock's range
    /// (292 years); nothing changed.</exception>
    public new bool SignalWithTimestamp(TimeSpan timestamp) => base.SignalWithTimestamp(timestamp);

    /// <summary>Signals with an error and a caller-given timestamp.</summary>
    /// <returns>True if this call signalled the fence.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The error is outside the errno range, or the timestamp
    /// is negative or beyond the clock's range; nothing changed.</exception>
    public new bool SignalWithTimestamp(int error, TimeSpan timestamp) => base.SignalWithTimestamp(error, timestamp);

    /// <summary>Records an error to report when the fence signals. Mirrors <c>dma_fence_set_error</c>.</summary>
    /// <param name="error">A negative errno in [-4095, -1].</param>
    /// <exception cref="ArgumentOutOfRangeException">The error is outside the errno range.</exception>
    /// <exception cref="InvalidOperationException">The fence has already signalled.</exception>
    public new void SetError(int error) => base.SetError(error);
}
