namespace FenceCore.VirtualGpu;

/// <summary>
/// Deterministic virtual time: one event queue ordered by (time, sequence), run on the caller's thread.
/// The same inputs give the same event order, so a seed replays a run exactly.
/// </summary>
internal sealed class VirtualDispatcher : GpuDispatcher
{
    // PERF: the priority is one Int128 (time, then sequence) so the queue compares with the default
    // comparer instead of an interface call per comparison.
    private readonly PriorityQueue<(Action<object?> Action, object? State), Int128> _queue = new();

    /// <summary>
    /// Work posted for the current time (<see cref="Post"/>), in posting order, with its sequence number.
    /// PERF: about half of a job's events are posted for "now" (readiness, a client's next submission, an
    /// ordered signal); a FIFO takes them in O(1) instead of a heap operation each. The order is exactly the
    /// queue's: the next event is whichever of the two heads has the smaller (time, sequence), and every
    /// entry here has time <see cref="_now"/>, which cannot advance past it while one waits (a later event
    /// has a larger key), so a seed still replays the same run.
    /// </summary>
    private readonly Queue<(Action<object?> Action, object? State, long Seq)> _nowQueue = new();

    /// <summary>Timed work posted from other threads (the timers of <see cref="GpuTimeProvider"/>, created by
    /// async continuations on the thread pool); moved into <see cref="_queue"/> by the loop's thread before it
    /// looks at the queue. Lock-free: a <see cref="System.Collections.Concurrent.ConcurrentQueue{T}"/>, and
    /// <see cref="_inboxed"/> so the loop pays one volatile read per event when it is empty.</summary>
    private readonly System.Collections.Concurrent.ConcurrentQueue<(long Time, Action<object?> Action, object? State)> _inbox = new();

    /// <summary>Items put in <see cref="_inbox"/> and not yet moved. Interlocked increments (posters) and
    /// decrements (the loop).</summary>
    private int _inboxed;
    private long _now;
    private long _seq;

    public override long NowNs => _now;

    public int Pending => _queue.Count + _nowQueue.Count;

    public override void Post(Action<object?> action, object? state) => _nowQueue.Enqueue((action, state, _seq++));

    public override void PostAt(long timeNs, Action<object?> action, object? state) =>
        _queue.Enqueue((action, state), Key(Math.Max(timeNs, _now), _seq++));

    /// <summary>Posts timed work from any thread; it joins the queue when the loop next looks at it.</summary>
    public void PostAtFromAnyThread(long timeNs, Action<object?> action, object? state)
    {
        _inbox.Enqueue((timeNs, action, state));
        Interlocked.Increment(ref _inboxed);
    }

    private static Int128 Key(long time, long seq) => ((Int128)time << 64) | (ulong)seq;

    /// <summary>Moves work posted from other threads into the queue. The loop's thread only.</summary>
    private void DrainInbox()
    {
        if (Volatile.Read(ref _inboxed) == 0)
        {
            return;
        }

        while (_inbox.TryDequeue(out (long Time, Action<object?> Action, object? State) item))
        {
            Interlocked.Decrement(ref _inboxed);
            PostAt(item.Time, item.Action, item.State);
        }
    }

    /// <summary>Runs every event due at or before <paramref name="timeNs"/>, then sets the clock to it.</summary>
    public void RunUntil(long timeNs)
    {
        DrainInbox();
        while (TryPeekTime(out long next) && next <= timeNs)
        {
            RunOne();
        }

        _now = Math.Max(_now, timeNs);
    }

    /// <summary>Runs events until none is left or the clock would pass <paramref name="limitNs"/>.</summary>
    public void RunUntilIdle(long limitNs)
    {
        DrainInbox();
        while (TryPeekTime(out long next) && next <= limitNs)
        {
            RunOne();
        }
    }

    /// <summary>The time of the next event, if any.</summary>
    private bool TryPeekTime(out long timeNs)
    {
        if (_nowQueue.Count > 0)
        {
            timeNs = _now; // nothing in the heap is earlier than now
            return true;
        }

        bool any = _queue.TryPeek(out _, out Int128 key);
        timeNs = (long)(key >> 64);
        return any;
    }

    /// <summary>Runs the next event, if any; returns false when the queue is empty.</summary>
    public bool RunOne()
    {
        DrainInbox();
        Action<object?> action;
        object? state;
        if (_nowQueue.TryPeek(out (Action<object?> Action, object? State, long Seq) now)
            && !(_queue.TryPeek(out _, out Int128 head) && head < Key(_now, now.Seq)))
        {
            _nowQueue.Dequeue();
            (action, state) = (now.Action, now.State);
        }
        else if (_queue.TryDequeue(out (Action<object?> Action, object? State) item, out Int128 key))
        {
            _now = (long)(key >> 64);
            (action, state) = item;
        }
        else
        {
            return false;
        }

        action(state);
        DrainInbox(); // before the caller peeks again
        return true;
    }
}
