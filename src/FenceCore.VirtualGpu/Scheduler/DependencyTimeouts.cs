namespace FenceCore.VirtualGpu;

/// <summary>
/// The dependency timeout: a job whose dependencies have not all signalled <see cref="GpuConfig.DependencyTimeout"/>
/// after its wait began ends with -ETIME without running (so a foreign fence that never signals cannot
/// block its queue forever).
/// </summary>
/// <remarks>
/// <para>Every wait gets the same timeout, so deadlines come in the order the waits begin: the waits still
/// pending are kept in one list in that order, with one pending check event, at or before the earliest
/// deadline, instead of one timed event per wait. PERF: with a timed event per job the event queue held
/// every wait of the last 100 ms of virtual time (thousands of entries, each one a heap operation, nearly
/// all of them no-ops).</para>
/// <para>The list is intrusive and doubly linked (<see cref="DependencyWaiter.TimeoutPrevious"/>,
/// <see cref="DependencyWaiter.TimeoutNext"/>), so a wait that ends takes itself out at once, in O(1)
/// (<see cref="Disarm"/>), and the list holds only waits that are still pending. PERF: a FIFO that kept
/// every wait until its deadline held a whole timeout's worth of ended waits (in threads mode, 1 s: some
/// 300,000 of them), which every collection promoted and every check then touched, cold, to find them
/// over.</para>
/// <para>Owns one lock, <see cref="_gate"/>: in threads mode waits begin and end on any worker. It guards
/// the list, the waiters' list fields and <see cref="_checkPosted"/> only; the timeouts themselves run
/// outside it. In threads mode two workers may link deadlines a few microseconds out of order; a
/// timeout then fires that much late, never early.</para>
/// </remarks>
internal sealed class DependencyTimeouts(Gpu gpu, long timeoutNs)
{
    private readonly object _gate = new();

    /// <summary>The oldest pending wait (the earliest deadline), or null. Under <see cref="_gate"/>.</summary>
    private DependencyWaiter? _head;

    /// <summary>The newest pending wait, or null. Under <see cref="_gate"/>.</summary>
    private DependencyWaiter? _tail;

    /// <summary>True while a check event is pending in the dispatcher; while the list is not empty, that event
    /// is at or before the head's deadline. Under <see cref="_gate"/>.</summary>
    private bool _checkPosted;

    /// <summary>The Coyote canary's seeded bug: link a wait without looking, under the lock, at whether it has
    /// already ended. Never set outside that test.</summary>
    internal bool SeededBugLinkEndedWaitsForTesting { get; set; }

    /// <summary>Starts the timeout of a wait that has just begun. A wait that has already ended (its last
    /// dependency signalled on another thread meanwhile) is not linked.</summary>
    public void Arm(DependencyWaiter waiter)
    {
        long deadline = gpu.NowNs + timeoutNs;
        bool post;
        lock (_gate)
        {
            // Read under the lock: a wait that ends after this read disarms itself after it (Disarm takes the
            // lock), so it is either never linked or unlinked again.
            if (Volatile.Read(ref waiter.WaitState) != DependencyWaiter.Waiting && !SeededBugLinkEndedWaitsForTesting)
            {
                return;
            }

            waiter.TimeoutDeadlineNs = deadline;
            waiter.TimeoutPrevious = _tail;
            waiter.TimeoutNext = null;
            if (_tail is null)
            {
                _head = waiter;
            }
            else
            {
                _tail.TimeoutNext = waiter;
            }

            _tail = waiter;
            post = !_checkPosted;
            _checkPosted = true;
        }

        if (post)
        {
            PostCheck(deadline);
        }
    }

    /// <summary>Takes an ended wait (ready or abandoned) out of the list, if it is there.</summary>
    public void Disarm(DependencyWaiter waiter)
    {
        lock (_gate)
        {
            Unlink(waiter);
        }
    }

    /// <summary>The number of waits in the list. For tests.</summary>
    internal int PendingForTesting
    {
        get
        {
            lock (_gate)
            {
                int n = 0;
                for (DependencyWaiter? w = _head; w is not null; w = w.TimeoutNext)
                {
                    n++;
                }

                return n;
            }
        }
    }

    /// <summary>Unlinks <paramref name="waiter"/>; a no-op when it is not linked. The caller holds <see cref="_gate"/>.</summary>
    private void Unlink(DependencyWaiter waiter)
    {
        if (waiter.TimeoutPrevious is null && !ReferenceEquals(_head, waiter))
        {
            return; // not linked: only the head has no previous wait
        }

        DependencyWaiter? previous = waiter.TimeoutPrevious;
        DependencyWaiter? next = waiter.TimeoutNext;
        if (previous is null)
        {
            _head = next;
        }
        else
        {
            previous.TimeoutNext = next;
        }

        if (next is null)
        {
            _tail = previous;
        }
        else
        {
            next.TimeoutPrevious = previous;
        }

        waiter.TimeoutPrevious = null;
        waiter.TimeoutNext = null;
    }

    private void PostCheck(long atNs) => gpu.Dispatcher.PostAt(atNs, static s => ((DependencyTimeouts)s!).Check(), this);

    /// <summary>Times out every wait whose deadline has passed, then posts the next check at the next deadline,
    /// if any. A check that finds the head's deadline still ahead (the waits it was posted for have ended)
    /// only posts the next one.</summary>
    private void Check()
    {
        long now = gpu.NowNs;
        long next;
        while (true)
        {
            DependencyWaiter due;
            lock (_gate)
            {
                DependencyWaiter? head = _head;
                if (head is null)
                {
                    _checkPosted = false;
                    return;
                }

                if (head.TimeoutDeadlineNs > now)
                {
                    next = head.TimeoutDeadlineNs;
                    break;
                }

                Unlink(head);
                due = head;
            }

            gpu.Scheduler.OnDependencyTimeout(due);
        }

        PostCheck(next);
    }
}
