namespace FenceCore.Internal;

/// <summary>
/// Runs a blocking wait's timeout on a <see cref="TimeProvider"/>'s clock. The blocking waits measure
/// their timeouts on the system's clock; given another provider (the virtual GPU's, a test's
/// <c>FakeTimeProvider</c>), the wait instead runs without a timeout and is cancelled by a timer on that
/// provider, and an expiry is reported as the wait's timeout, never as a cancellation.
/// </summary>
/// <remarks>
/// <see cref="Run"/> does it all: on expiry it polls once more (zero timeout, no token), so that a signal
/// that raced the timer still counts and the wait reports what it found, as its own timeout would.
/// </remarks>
internal sealed class ClockTimeout : IDisposable
{
    private readonly CancellationTokenSource _timer;
    private readonly CancellationTokenSource _linked;

    /// <summary>
    /// Runs <paramref name="wait"/> (a blocking wait on the system's clock, given its state, a timeout and a
    /// token) with <paramref name="timeout"/> measured on <paramref name="time"/> instead.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="time"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is negative (other than infinite) or too long.</exception>
    /// <exception cref="OperationCanceledException">The caller's token was cancelled (with that token).</exception>
    public static TResult Run<TState, TResult>(TimeSpan timeout, TimeProvider time, TState state, Func<TState, TimeSpan, CancellationToken, TResult> wait, CancellationToken cancellationToken)
    {
        if (!IsNeeded(timeout, time, nameof(timeout)))
        {
            return wait(state, timeout, cancellationToken);
        }

        using var clock = new ClockTimeout(timeout, time, cancellationToken);
        try
        {
            return wait(state, Timeout.InfiniteTimeSpan, clock.Token);
        }
        catch (OperationCanceledException) when (clock.Expired(cancellationToken))
        {
            return wait(state, TimeSpan.Zero, CancellationToken.None);
        }
        catch (OperationCanceledException ex) when (ex.CancellationToken == clock.Token)
        {
            throw new OperationCanceledException(ex.Message, ex, cancellationToken);
        }
    }

    /// <summary>Arms <paramref name="timeout"/> on <paramref name="time"/>, linked with the caller's token.</summary>
    private ClockTimeout(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        _timer = new CancellationTokenSource(timeout, time);
        _linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _timer.Token);
    }

    /// <summary>The token the inner wait takes: cancelled by the caller's token or by the timer.</summary>
    private CancellationToken Token => _linked.Token;

    /// <summary>
    /// Whether the wait needs a timer on <paramref name="time"/>: not on the system's clock (the waits
    /// measure that one themselves), not for an infinite or zero timeout (no clock is read). Validates
    /// <paramref name="time"/> and the timeout first, so a bad argument throws before anything is armed.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="time"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is negative (other than infinite) or too long.</exception>
    private static bool IsNeeded(TimeSpan timeout, TimeProvider time, string timeoutName)
    {
        ArgumentNullException.ThrowIfNull(time, "timeProvider"); // the public parameter's name
        Fence.ValidateTimeout(timeout, timeoutName);
        return time != TimeProvider.System && timeout != Timeout.InfiniteTimeSpan && timeout != TimeSpan.Zero;
    }

    /// <summary>True when the inner wait was cancelled by the timer, not by the caller's token.</summary>
    private bool Expired(CancellationToken cancellationToken) => _timer.IsCancellationRequested && !cancellationToken.IsCancellationRequested;

    /// <inheritdoc/>
    public void Dispose()
    {
        _linked.Dispose();
        _timer.Dispose();
    }
}
