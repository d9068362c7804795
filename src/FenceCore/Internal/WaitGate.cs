namespace FenceCore.Internal;

/// <summary>
/// The wake-up of a wait over several fences or syncobjs: callbacks <see cref="Set"/> it, the waiter
/// <see cref="Reset"/>s it before each check of its condition and then waits on it. One type serves the
/// blocking and the asynchronous form of the same wait, so both share one loop.
/// </summary>
/// <remarks>
/// Reset-before-check makes a wake-up impossible to lose: a fence's signal is published before its
/// callbacks run, so a callback that sets the gate after the reset is seen by the wait, and one that ran
/// before the reset belongs to a signal the check that follows sees. The asynchronous form swaps in a
/// fresh completion source on reset; a callback that still holds the previous, completed one sets it
/// for nothing, by the same argument.
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "Never disposed on purpose: see _event.")]
internal sealed class WaitGate
{
    /// <summary>The blocking form's event; null in the asynchronous form. Never disposed: a callback that
    /// lost the race with the wait's cleanup may still set it, and without a wait handle ever requested
    /// it holds no OS resource.</summary>
    private readonly ManualResetEventSlim? _event;

    /// <summary>The asynchronous form's current completion source. Replaced only by the waiter (in
    /// <see cref="Reset"/>), read by callbacks with Volatile.Read.</summary>
    private TaskCompletionSource? _source;

    public WaitGate(bool blocking)
    {
        if (blocking)
        {
            _event = new ManualResetEventSlim(false);
        }
        else
        {
            _source = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    /// <summary>Wakes the waiter. Any thread, any number of times.</summary>
    public void Set()
    {
        if (_event is not null)
        {
            _event.Set();
        }
        else
        {
            Volatile.Read(ref _source)!.TrySetResult();
        }
    }

    /// <summary>Re-arms the gate; the waiter's thread only, before it checks its condition.</summary>
    public void Reset()
    {
        if (_event is not null)
        {
            _event.Reset();
        }
        else if (Volatile.Read(ref _source)!.Task.IsCompleted)
        {
            Volatile.Write(ref _source, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        }
    }

    /// <summary>Waits until set or until <paramref name="timeout"/> passes, blocking or not as the gate
    /// was created. Returns false on timeout.</summary>
    /// <exception cref="OperationCanceledException">The token was cancelled first.</exception>
    /// <remarks>The asynchronous form's timeout runs on <paramref name="time"/>'s timers when given.</remarks>
    public async ValueTask<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken, TimeProvider? time = null)
    {
        if (_event is not null)
        {
            return _event.Wait(timeout, cancellationToken);
        }

        Task task = Volatile.Read(ref _source)!.Task;
        if (time is not null)
        {
            return await WaitOnClockAsync(task, timeout, time, cancellationToken).ConfigureAwait(false);
        }

        try
        {
            await task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    /// <summary>
    /// Waits for <paramref name="task"/> with a timeout on <paramref name="time"/>'s timers. Not
    /// <see cref="Task.WaitAsync(TimeSpan, TimeProvider, CancellationToken)"/>: that one counts whole
    /// milliseconds, so a sub-millisecond timeout (the virtual GPU's microseconds) times out at once, and
    /// a loop that waits for what is left would spin without time ever advancing (found by
    /// <c>TimeProviderTests.SyncObjAndReservationWaits_OnTheVirtualGpusClock_FollowVirtualTime</c>).
    /// </summary>
    private static async Task<bool> WaitOnClockAsync(Task task, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        if (timeout == Timeout.InfiniteTimeSpan)
        {
            await task.WaitAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }

        var timedOut = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using ITimer timer = time.CreateTimer(static s => ((TaskCompletionSource)s!).TrySetResult(), timedOut, timeout, Timeout.InfiniteTimeSpan);
        Task first = await Task.WhenAny(task, timedOut.Task).WaitAsync(cancellationToken).ConfigureAwait(false);
        return first == task;
    }
}

/// <summary>Sets a <see cref="WaitGate"/> when the fence it is queued on signals.</summary>
internal sealed class WaitGateCallback(WaitGate gate) : FenceCallback
{
    protected internal override void Invoke(Fence fence) => gate.Set();
}
