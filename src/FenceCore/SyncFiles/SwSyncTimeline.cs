using System.Globalization;
using FenceCore.Internal;

namespace FenceCore;

/// <summary>
/// A software timeline for tests and simulators. Mirrors <c>sw_sync</c> (the debugfs test timeline):
/// a context and a 32-bit value starting at 0, fences for points on it, and increments that signal
/// every point reached.
/// </summary>
/// <remarks>
/// <para>
/// Creation and increments serialize on a private lock, as the kernel's timeline spinlock does; the
/// lock guards the pending set, the queue of reached points and the count of signalled ones, and is
/// never held while a fence signals or a callback runs. One thread at a time signals the reached points,
/// in seqno order (the drainer, claimed lock-free through the library's serial drain, the funnel the
/// virtual GPU's engines use too); a thread whose increment reached points while another drains waits
/// until the drainer has signalled them.
/// </para>
/// <para>
/// So, as in the kernel, when <see cref="Increment"/> returns every point it reached has signalled, and
/// <see cref="CreateFence"/> for a reached point that is still being signalled returns that point's
/// fence, never a second one. One difference, on purpose: the kernel signals under the timeline lock,
/// so a callback that increments the same timeline deadlocks there; here such a re-entrant
/// <see cref="Increment"/> (from a callback running on the drainer's thread) queues its points and
/// returns at once, and the drainer signals them, still in order, before its own call returns.
/// </para>
/// <para>
/// A callback that throws does not stop the drain and never reaches the caller of <see cref="Increment"/>
/// or <see cref="Close"/>: it goes to the handler given to the constructor (the timeline's policy), or is
/// unhandled when there is none (see <see cref="Fence.OnCallbackFailed"/>). Every reached point still
/// signals, and the drain's bookkeeping is released in a <c>finally</c> whatever happens.
/// </para>
/// <para>
/// Points compare on 32 bits with wrap-around, like the kernel's. Unlike the kernel's, a point does not
/// answer the <c>signaled</c> poll from the timeline value: a poll could signal a later point before the
/// drainer reaches an earlier one, and FenceCore keeps the in-order guarantee instead.
/// </para>
/// </remarks>
public sealed class SwSyncTimeline : IDisposable
{
    private readonly object _gate = new();
    private readonly SortedDictionary<uint, SwSyncFence> _pending;
    private readonly Queue<SwSyncFence> _toSignal = new();

    /// <summary>The point the drainer is signalling now, or null. Under <see cref="_gate"/>.</summary>
    private SwSyncFence? _inFlight;

    /// <summary>The current value, as an int for atomics. Written under <see cref="_gate"/>; read lock-free.</summary>
    private int _value;

    /// <summary>How many points were ever queued for signalling. Written under <see cref="_gate"/> with
    /// Volatile.Write; read under it, or with Volatile.Read by <see cref="HasQueued"/>.</summary>
    private long _queued;

    /// <summary>How many queued points have signalled (their <c>Signal</c> returned). Written under
    /// <see cref="_gate"/> with Volatile.Write; read under it, or with Volatile.Read by <see cref="HasQueued"/>.</summary>
    private long _signalled;

    /// <summary>One thread at a time signals <see cref="_toSignal"/> (the library's serial drain, which the
    /// virtual GPU's engines use too); its owner is lock-free, the queue it drains is under <see cref="_gate"/>.</summary>
    private readonly SerialDrain _drain = new();

    /// <summary>Threads waiting in <see cref="Monitor.Wait(object)"/> for the drainer. Under <see cref="_gate"/>.</summary>
    private int _waiters;

    private bool _closed;

    /// <summary>The value the pending set is ordered from; moved only under <see cref="_gate"/>, after the
    /// points it passed have been removed, so the set's order never changes under it.</summary>
    private uint _orderBase;

    private readonly Action<Fence, Exception>? _callbackFailed;

    /// <summary>Creates a timeline with a new context. Mirrors opening <c>/sys/kernel/debug/sync/sw_sync</c>.</summary>
    /// <param name="name">The timeline name reported by its fences.</param>
    /// <param name="callbackFailed">Receives each exception a callback of one of its points throws; null
    /// to leave such exceptions unhandled. It must not throw.</param>
    public SwSyncTimeline(string name = "sw_sync", Action<Fence, Exception>? callbackFailed = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        Name = name;
        _callbackFailed = callbackFailed;
        Context = FenceContext.Allocate();
        _pending = new SortedDictionary<uint, SwSyncFence>(new WrapComparer(this));
    }

    /// <summary>The timeline's fence context.</summary>
    public ulong Context { get; }

    /// <summary>The timeline name.</summary>
    public string Name { get; }

    /// <summary>The current value.</summary>
    public uint Value => (uint)Volatile.Read(ref _value);

    /// <summary>True once closed.</summary>
    public bool IsClosed
    {
        get
        {
            lock (_gate)
            {
                return _closed;
            }
        }
    }

    /// <summary>The number of points created and not yet signalled.</summary>
    public int PendingCount
    {
        get
        {
            lock (_gate)
            {
                return _pending.Count;
            }
        }
    }

    /// <summary>
    /// Returns the fence for point <paramref name="value"/>. Mirrors <c>SW_SYNC_IOC_CREATE_FENCE</c>:
    /// a point already reached is born signalled; an unsignalled point requested again returns the same
    /// fence.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The timeline is closed.</exception>
    public Fence CreateFence(uint value)
    {
        lock (_gate)
        {
            if (_closed)
            {
                ThrowHelper.ThrowTimelineClosed(Name);
            }

            if (!Fence.IsSeqnoLater(value, Value, seqno64: false))
            {
                if (FindReached(value) is { } signalling)
                {
                    return signalling; // reached, and the drainer has not signalled it yet: the same point
                }

                var reached = new SwSyncFence(this, value);
                reached.SignalPoint();
                return reached;
            }

            if (_pending.TryGetValue(value, out SwSyncFence? existing))
            {
                return existing;
            }

            var fence = new SwSyncFence(this, value);
            _pending.Add(value, fence);
            return fence;
        }
    }

    /// <summary>
    /// Advances the value by <paramref name="count"/> and signals, in seqno order, every point now
    /// reached. Mirrors <c>SW_SYNC_IOC_INC</c> (applied in steps of at most <see cref="int.MaxValue"/>).
    /// When it returns, every point it reached has signalled, unless it was called from a callback of
    /// one of this timeline's points (see the remarks).
    /// </summary>
    /// <exception cref="ObjectDisposedException">The timeline is closed.</exception>
    public void Increment(uint count = 1)
    {
        long ticket;
        lock (_gate)
        {
            if (_closed)
            {
                ThrowHelper.ThrowTimelineClosed(Name);
            }

            while (count > 0)
            {
                uint step = Math.Min(count, int.MaxValue);
                count -= step;

                Volatile.Write(ref _value, (int)(Value + step));
                CollectReached();
                _orderBase = Value;
            }

            ticket = _queued;
        }

        Finish(ticket);
    }

    /// <summary>
    /// Closes the timeline: every pending point signals with -ENOENT, in seqno order. Mirrors releasing
    /// the timeline file. Closing twice does nothing.
    /// </summary>
    public void Close()
    {
        long ticket;
        lock (_gate)
        {
            if (_closed)
            {
                return;
            }

            _closed = true;
            foreach (SwSyncFence fence in _pending.Values)
            {
                fence.ClosedError = true;
                Queue(fence);
            }

            _pending.Clear();
            ticket = _queued;
        }

        Finish(ticket);
    }

    /// <inheritdoc/>
    public void Dispose() => Close();

    /// <summary>
    /// The earliest deadline set on one of this timeline's fences. Mirrors <c>SW_SYNC_GET_DEADLINE</c>.
    /// </summary>
    /// <param name="fence">One of this timeline's points.</param>
    /// <param name="deadline">The deadline, a point on the fence clock (see <see cref="Fence.Timestamp"/>); zero when none.</param>
    /// <returns>False when no deadline was set (the kernel's -ENOENT).</returns>
    /// <exception cref="ArgumentException">The fence does not belong to this timeline (the kernel's -EINVAL).</exception>
    public bool TryGetDeadline(Fence fence, out TimeSpan deadline)
    {
        bool set = TryGetDeadlineNs(fence, out long ns);
        deadline = TimeTicks.FromNs(ns);
        return set;
    }

    /// <summary>The exact form of <see cref="TryGetDeadline"/>, in ns.</summary>
    internal bool TryGetDeadlineNs(Fence fence, out long deadlineNs)
    {
        ArgumentNullException.ThrowIfNull(fence);
        if (fence is not SwSyncFence point || !ReferenceEquals(point.Timeline, this))
        {
            throw new ArgumentException($"Fence {fence.Context}:{fence.Seqno} is not a point of sw_sync timeline '{Name}'; only its own points have a deadline to report (the kernel answers -EINVAL).", nameof(fence));
        }

        long deadline = point.EarliestDeadlineNs;
        deadlineNs = deadline == long.MaxValue ? 0 : deadline;
        return deadline != long.MaxValue;
    }

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"sw_sync '{Name}' ctx {Context} at {Value}");

    private void CollectReached()
    {
        uint value = Value;
        while (_pending.Count > 0)
        {
            // The first entry is the earliest pending point.
            using SortedDictionary<uint, SwSyncFence>.Enumerator e = _pending.GetEnumerator();
            e.MoveNext();
            KeyValuePair<uint, SwSyncFence> first = e.Current;
            if (Fence.IsSeqnoLater(first.Key, value, seqno64: false))
            {
                return;
            }

            _pending.Remove(first.Key);
            Queue(first.Value);
        }
    }

    /// <summary>Queues a point for the drainer. Under <see cref="_gate"/>.</summary>
    private void Queue(SwSyncFence fence)
    {
        _toSignal.Enqueue(fence);
        Volatile.Write(ref _queued, _queued + 1); // read lock-free by the drain's second look (HasQueued)
    }

    /// <summary>A reached point that the drainer has not finished signalling, or null. Under <see cref="_gate"/>;
    /// the queue is empty but for the moments an increment is being drained.</summary>
    private SwSyncFence? FindReached(uint value)
    {
        if (_toSignal.Count == 0 && _inFlight is null)
        {
            return null; // PERF: the common case (SwSyncBenchmarks.SwSync_CreateReachedFence)
        }

        if (_inFlight is { } current && (uint)current.Seqno == value)
        {
            return current;
        }

        foreach (SwSyncFence queued in _toSignal)
        {
            if ((uint)queued.Seqno == value)
            {
                return queued;
            }
        }

        return null;
    }

    /// <summary>
    /// Drains the reached points, or, when another thread drains, waits until the first
    /// <paramref name="ticket"/> queued points have signalled. Returns at once when called from the
    /// drainer's own thread (a re-entrant increment from a callback): the drain this thread is running
    /// signals the rest before its own call returns.
    /// </summary>
    private void Finish(long ticket)
    {
        while (true)
        {
            try
            {
                if (_drain.Drain(new DrainWork(this)))
                {
                    return; // this thread drained the queue empty, its own points with it
                }
            }
            catch
            {
                lock (_gate)
                {
                    WakeWaiters(); // the drain was released without finishing: a waiter may take it over
                }

                throw;
            }

            if (_drain.IsDrainingOnThisThread)
            {
                return; // re-entrant, from a callback
            }

            lock (_gate)
            {
                // Woken after each signal (CompleteInFlight) and when a failed drain lets go (above). A
                // drain that ends normally has completed every queued point, so it woke this thread with
                // its ticket reached; only a failed one can leave the queue to this thread.
                while (_signalled < ticket && _drain.IsDraining)
                {
                    _waiters++;
                    try
                    {
                        Monitor.Wait(_gate);
                    }
                    finally
                    {
                        _waiters--;
                    }
                }

                if (_signalled >= ticket)
                {
                    return;
                }
            }
        }
    }

    /// <summary>The drain's step: books the point signalled last, then signals the next queued one; false
    /// when none is left.</summary>
    private bool SignalNext()
    {
        SwSyncFence? next;
        lock (_gate)
        {
            CompleteInFlight();
            if (!_toSignal.TryDequeue(out next))
            {
                return false;
            }

            _inFlight = next;
        }

        try
        {
            next.SignalPoint(); // never throws for a callback: those go to the timeline's policy
        }
        catch
        {
            lock (_gate)
            {
                CompleteInFlight(); // the point is signalled (the signal is published whatever happens)
            }

            throw;
        }

        return true;
    }

    /// <summary>The drain's second look, after it lets go: a point queued meanwhile. Lock-free: the drain's
    /// release is a full fence, and a producer that found the drain taken had published its count before
    /// its failed claim; after a normal drain every dequeued point is booked, so the counts differ exactly
    /// when a point waits in the queue.</summary>
    private bool HasQueued() => Volatile.Read(ref _queued) != Volatile.Read(ref _signalled);

    /// <summary>Books the point being signalled, if any, and wakes the threads waiting for it. Under <see cref="_gate"/>.</summary>
    private void CompleteInFlight()
    {
        if (_inFlight is null)
        {
            return;
        }

        _inFlight = null;
        Volatile.Write(ref _signalled, _signalled + 1);
        WakeWaiters();
    }

    /// <summary>Wakes every thread waiting for a signal. Under <see cref="_gate"/>.</summary>
    private void WakeWaiters()
    {
        if (_waiters > 0)
        {
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>The reached points' queue, as the serial drain sees it.</summary>
    private readonly struct DrainWork(SwSyncTimeline timeline) : ISerialDrainWork
    {
        public bool TakeOne() => timeline.SignalNext();

        public bool HasWork() => timeline.HasQueued();
    }

    /// <summary>Orders pending points by distance from the order base (32-bit wrap).</summary>
    private sealed class WrapComparer(SwSyncTimeline timeline) : IComparer<uint>
    {
        public int Compare(uint x, uint y)
        {
            uint v = timeline._orderBase;
            return (x - v).CompareTo(y - v);
        }
    }

    /// <summary>A point on a <see cref="SwSyncTimeline"/>.</summary>
    private sealed class SwSyncFence(SwSyncTimeline timeline, uint value)
        : Fence(timeline.Context, value, FenceOptions.None, FenceTraits.NoSignaledHook | FenceTraits.NoPollHook)
    {
        public SwSyncTimeline Timeline { get; } = timeline;

        /// <summary>Set under the timeline lock before the point is queued by <see cref="Close"/>.</summary>
        public bool ClosedError { get; set; }

        public override string DriverName => "sw_sync";

        public override string TimelineName => Timeline.Name;

        /// <summary>The earliest deadline set on the point, <see cref="long.MaxValue"/> when none; kept here
        /// because the base class's hint is gone once the point signals, and the kernel's sw_sync reports
        /// the deadline of its sync_pt whenever it was set (<c>sw_sync_ioctl_get_deadline</c>). Lowered by
        /// CAS from <see cref="OnDeadlineSetNs"/>.</summary>
        public long EarliestDeadlineNs => Volatile.Read(ref _deadlineNs);

        private long _deadlineNs = long.MaxValue;

        /// <summary>Signals the point, with -ENOENT when the timeline closed under it.</summary>
        public void SignalPoint() => Signal(ClosedError ? -Errno.ENOENT : 0);

        private protected override void OnDeadlineSetNs(long deadlineNs)
        {
            long current = Volatile.Read(ref _deadlineNs);
            while (deadlineNs < current)
            {
                long seen = Interlocked.CompareExchange(ref _deadlineNs, deadlineNs, current);
                if (seen == current)
                {
                    return;
                }

                current = seen;
            }
        }

        protected override void OnCallbackFailed(Exception exception)
        {
            if (Timeline._callbackFailed is { } handler)
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
