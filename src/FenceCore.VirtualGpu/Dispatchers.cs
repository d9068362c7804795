using System.Collections.Concurrent;
using System.Diagnostics;

namespace FenceCore.VirtualGpu;

/// <summary>
/// Runs the GPU's work items: "soon" (so a fence callback never recurses into the scheduler) and "at a
/// time" (job completions, timeouts). One implementation per <see cref="GpuTimeMode"/>.
/// </summary>
internal abstract class GpuDispatcher : IDisposable
{
    /// <summary>The current time in ns (virtual or monotonic).</summary>
    public abstract long NowNs { get; }

    /// <summary>Runs <paramref name="action"/> soon, after the current work item, in FIFO order.</summary>
    public abstract void Post(Action<object?> action, object? state);

    /// <summary>Runs <paramref name="action"/> at <paramref name="timeNs"/> (or soon, if that has passed).</summary>
    public abstract void PostAt(long timeNs, Action<object?> action, object? state);

    /// <summary>Where a worker thread reports a work item's exception, so it never kills the process.</summary>
    public Action<Exception>? WorkItemFailed { get; set; }

    public virtual void Dispose()
    {
    }
}

/// <summary>
/// Deterministic virtual time: one event queue ordered by (time, sequence), run on the caller's thread.
/// The same inputs give the same event order, so a seed replays a run exactly.
/// </summary>
internal sealed class VirtualDispatcher : GpuDispatcher
{
    // PERF: the priority is one Int128 (time, then sequence) so the queue compares with the default
    // comparer instead of an interface call per comparison.
    private readonly PriorityQueue<(Action<object?> Action, object? State), Int128> _queue = new();

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

    public int Pending => _queue.Count;

    public override void Post(Action<object?> action, object? state) => _queue.Enqueue((action, state), Key(_now, _seq++));

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
        while (_queue.TryPeek(out _, out Int128 key) && (long)(key >> 64) <= timeNs)
        {
            RunOne();
        }

        _now = Math.Max(_now, timeNs);
    }

    /// <summary>Runs events until none is left or the clock would pass <paramref name="limitNs"/>.</summary>
    public void RunUntilIdle(long limitNs)
    {
        DrainInbox();
        while (_queue.TryPeek(out _, out Int128 key) && (long)(key >> 64) <= limitNs)
        {
            RunOne();
        }
    }

    /// <summary>Runs the next event, if any; returns false when the queue is empty.</summary>
    public bool RunOne()
    {
        DrainInbox();
        if (!_queue.TryDequeue(out (Action<object?> Action, object? State) item, out Int128 key))
        {
            return false;
        }

        _now = (long)(key >> 64);
        item.Action(item.State);
        DrainInbox(); // before the caller peeks again
        return true;
    }
}

/// <summary>
/// Real threads: a pool of worker threads drains a FIFO of work items, and one timer thread releases
/// timed items when they are due. Time is the monotonic clock.
/// </summary>
internal sealed class ThreadedDispatcher : GpuDispatcher
{
    private readonly BlockingCollection<(Action<object?> Action, object? State)> _work = new(new ConcurrentQueue<(Action<object?>, object?)>());
    private readonly PriorityQueue<(Action<object?> Action, object? State), long> _timed = new();
    private readonly object _timedGate = new(); // guards _timed; the timer thread waits on it
    private readonly Thread[] _workers;
    private readonly Thread _timer;
    private readonly long _origin = Stopwatch.GetTimestamp();
    private volatile bool _stopping;
    private int _busy;

    public ThreadedDispatcher(int workers)
    {
        _workers = new Thread[workers];
        for (int i = 0; i < workers; i++)
        {
            _workers[i] = new Thread(WorkerLoop) { IsBackground = true, Name = $"vgpu-worker-{i}" };
            _workers[i].Start();
        }

        _timer = new Thread(TimerLoop) { IsBackground = true, Name = "vgpu-timer" };
        _timer.Start();
    }

    public override long NowNs => (long)Stopwatch.GetElapsedTime(_origin).TotalNanoseconds;

    /// <summary>True when no work item is queued or running.</summary>
    public bool IsIdle => _work.Count == 0 && Volatile.Read(ref _busy) == 0;

    public override void Post(Action<object?> action, object? state)
    {
        if (!_stopping)
        {
            _work.Add((action, state));
        }
    }

    public override void PostAt(long timeNs, Action<object?> action, object? state)
    {
        if (timeNs <= NowNs)
        {
            Post(action, state); // already due: skip the timer thread
            return;
        }

        lock (_timedGate)
        {
            _timed.Enqueue((action, state), timeNs);
            Monitor.Pulse(_timedGate);
        }
    }

    public override void Dispose()
    {
        _stopping = true;
        _work.CompleteAdding();
        lock (_timedGate)
        {
            Monitor.Pulse(_timedGate);
        }

        foreach (Thread t in _workers)
        {
            t.Join(TimeSpan.FromSeconds(5));
        }

        _timer.Join(TimeSpan.FromSeconds(5));
        _work.Dispose();
        base.Dispose();
    }

    private void WorkerLoop()
    {
        foreach ((Action<object?> action, object? state) in _work.GetConsumingEnumerable())
        {
            Interlocked.Increment(ref _busy);
            try
            {
                action(state);
            }
#pragma warning disable CA1031 // an exception on a worker thread would end the process
            catch (Exception ex)
#pragma warning restore CA1031
            {
                WorkItemFailed?.Invoke(ex);
            }
            finally
            {
                Interlocked.Decrement(ref _busy);
            }
        }
    }

    private void TimerLoop()
    {
        while (!_stopping)
        {
            (Action<object?> Action, object? State) due;
            lock (_timedGate)
            {
                if (!_timed.TryPeek(out _, out long at))
                {
                    Monitor.Wait(_timedGate, 50);
                    continue;
                }

                long waitNs = at - NowNs;
                if (waitNs > 0)
                {
                    Monitor.Wait(_timedGate, TimeSpan.FromTicks(Math.Clamp(waitNs / 100, 1, 500_000)));
                    continue;
                }

                due = _timed.Dequeue();
            }

            Post(due.Action, due.State);
        }
    }
}
