namespace FenceCore.VirtualGpu;

/// <summary>
/// The dependency timeout: a job whose dependencies have not all signalled <see cref="GpuConfig.DependencyTimeout"/>
/// after its wait began ends with -ETIME without running (so a foreign fence that never signals cannot
/// block its queue forever).
/// </summary>
/// <remarks>
/// <para>Every wait gets the same timeout, so deadlines come in the order the waits begin: they are kept in
/// one FIFO with one pending check event, at the earliest deadline, instead of one timed event per wait.
/// PERF: with a timed event per job the event queue held every wait of the last 100 ms of virtual time
/// (thousands of entries, each one a heap operation, nearly all of them no-ops).</para>
/// <para>Owns one lock, <see cref="_gate"/>: in threads mode waits begin on any worker. It guards the FIFO and
/// <see cref="_checkPosted"/> only; the timeouts themselves run outside it. In threads mode two workers may
/// enqueue deadlines a few microseconds out of order; a timeout then fires that much late, never early.</para>
/// </remarks>
internal sealed class DependencyTimeouts(Gpu gpu, long timeoutNs)
{
    private readonly object _gate = new();

    /// <summary>Waits in the order they began, with their deadlines. Under <see cref="_gate"/>.</summary>
    private readonly Queue<(long DeadlineNs, DependencyWaiter Waiter)> _armed = new();

    /// <summary>True while a check event is pending in the dispatcher. Under <see cref="_gate"/>.</summary>
    private bool _checkPosted;

    /// <summary>Starts the timeout of a wait that has just begun.</summary>
    public void Arm(DependencyWaiter waiter)
    {
        long deadline = gpu.NowNs + timeoutNs;
        bool post;
        lock (_gate)
        {
            _armed.Enqueue((deadline, waiter));
            post = !_checkPosted;
            _checkPosted = true;
        }

        if (post)
        {
            PostCheck(deadline);
        }
    }

    private void PostCheck(long atNs) => gpu.Dispatcher.PostAt(atNs, static s => ((DependencyTimeouts)s!).Check(), this);

    /// <summary>Times out every wait whose deadline has passed (a wait that ended meanwhile is a no-op), then
    /// posts the next check at the next deadline, if any.</summary>
    private void Check()
    {
        long now = gpu.NowNs;
        while (true)
        {
            DependencyWaiter due;
            lock (_gate)
            {
                if (!_armed.TryPeek(out (long DeadlineNs, DependencyWaiter Waiter) head))
                {
                    _checkPosted = false;
                    return;
                }

                if (head.DeadlineNs > now)
                {
                    break;
                }

                _armed.Dequeue();
                due = head.Waiter;
            }

            gpu.Scheduler.OnDependencyTimeout(due);
        }

        long next;
        lock (_gate)
        {
            next = _armed.Peek().DeadlineNs; // only Check dequeues, and a check is pending: the head is still there
        }

        PostCheck(next);
    }
}
