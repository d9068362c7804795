using System.Diagnostics;

namespace FenceCore.VirtualGpu;

/// <summary>
/// Real threads: a pool of worker threads drains a FIFO of work items, and one timer thread releases
/// timed items when they are due. Time is the monotonic clock.
/// </summary>
internal sealed class ThreadedDispatcher : GpuDispatcher
{
    private readonly WorkQueue<(Action<object?> Action, object? State)> _work = new();
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
            _work.Post((action, state));
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

    /// <summary>Waits until no work item is queued or running (three looks 1 ms apart in a row), up to
    /// <paramref name="timeout"/>.</summary>
    public bool WaitForIdle(TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        int idleStreak = 0;
        while (sw.Elapsed < timeout)
        {
            idleStreak = IsIdle ? idleStreak + 1 : 0;
            if (idleStreak >= 3)
            {
                return true;
            }

            Thread.Sleep(1);
        }

        return false;
    }

    public override void Dispose()
    {
        _stopping = true;
        _work.Close(_workers.Length);
        lock (_timedGate)
        {
            Monitor.Pulse(_timedGate);
        }

        foreach (Thread t in _workers)
        {
            t.Join(TimeSpan.FromSeconds(5));
        }

        _timer.Join(TimeSpan.FromSeconds(5));
        if (_workers.All(t => !t.IsAlive))
        {
            _work.Dispose(); // a worker still inside a work item after 5 s keeps its semaphore
        }

        base.Dispose();
    }

    private void WorkerLoop()
    {
        while (_work.Take(out (Action<object?> Action, object? State) item))
        {
            (Action<object?> action, object? state) = item;
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
