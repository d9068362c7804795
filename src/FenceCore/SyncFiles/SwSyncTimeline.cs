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
/// lock guards only the pending set and is never held while a fence signals or a callback runs.
/// Signalling is funnelled through one drainer at a time (a CAS flag), so points signal in seqno order
/// even when a callback increments the timeline re-entrantly or two threads increment at once.
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

    /// <summary>The current value, as an int for atomics. Written under <see cref="_gate"/>; read lock-free.</summary>
    private int _value;

    /// <summary>1 while some thread drains <see cref="_toSignal"/>. Taken and released by CAS / ordered write.</summary>
    private int _draining;

    private bool _closed;

    /// <summary>The value the pending set is ordered from; moved only under <see cref="_gate"/>, after the
    /// points it passed have been removed, so the set's order never changes under it.</summary>
    private uint _orderBase;

    /// <summary>Creates a timeline with a new context. Mirrors opening <c>/sys/kernel/debug/sync/sw_sync</c>.</summary>
    /// <param name="name">The timeline name reported by its fences.</param>
    public SwSyncTimeline(string name = "sw_sync")
    {
        ArgumentNullException.ThrowIfNull(name);
        Name = name;
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
                var reached = new SwSyncFence(this, value);
                reached.Signal();
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
    /// </summary>
    /// <exception cref="ObjectDisposedException">The timeline is closed.</exception>
    public void Increment(uint count = 1)
    {
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
        }

        Drain();
    }

    /// <summary>
    /// Closes the timeline: every pending point signals with -ENOENT, in seqno order. Mirrors releasing
    /// the timeline file. Closing twice does nothing.
    /// </summary>
    public void Close()
    {
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
                _toSignal.Enqueue(fence);
            }

            _pending.Clear();
        }

        Drain();
    }

    /// <inheritdoc/>
    public void Dispose() => Close();

    /// <summary>
    /// The earliest deadline set on one of this timeline's fences. Mirrors <c>SW_SYNC_GET_DEADLINE</c>.
    /// </summary>
    /// <returns>False when no deadline was set (the kernel's -ENOENT).</returns>
    /// <exception cref="ArgumentException">The fence does not belong to this timeline (the kernel's -EINVAL).</exception>
    public bool TryGetDeadline(Fence fence, out long deadlineNs)
    {
        ArgumentNullException.ThrowIfNull(fence);
        if (fence is not SwSyncFence point || !ReferenceEquals(point.Timeline, this))
        {
            throw new ArgumentException($"Fence {fence.Context}:{fence.Seqno} is not a point of sw_sync timeline '{Name}' (-EINVAL).", nameof(fence));
        }

        long? deadline = fence.Deadline;
        deadlineNs = deadline ?? 0;
        return deadline.HasValue;
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
            _toSignal.Enqueue(first.Value);
        }
    }

    private void Drain()
    {
        List<Exception>? failures = null;
        DrainLoop(ref failures); // never leaves the drain flag set: callback failures are collected
        if (failures is not null)
        {
            throw new AggregateException("Callbacks of sw_sync points threw; every reached point signalled.", failures);
        }
    }

    private void DrainLoop(ref List<Exception>? failures)
    {
        while (true)
        {
            // One drainer at a time keeps signals in queue (seqno) order.
            if (Interlocked.CompareExchange(ref _draining, 1, 0) != 0)
            {
                return; // the current drainer re-checks the queue after releasing the flag
            }

            while (true)
            {
                SwSyncFence? next;
                lock (_gate)
                {
                    if (!_toSignal.TryDequeue(out next))
                    {
                        break;
                    }
                }

                try
                {
                    next.Signal(next.ClosedError ? -Errno.ENOENT : 0);
                }
                catch (FenceCallbackException ex)
                {
                    (failures ??= []).Add(ex); // keep draining: later points must still signal
                }
            }

            Volatile.Write(ref _draining, 0); // release; then re-check for work queued meanwhile
            lock (_gate)
            {
                if (_toSignal.Count == 0)
                {
                    return;
                }
            }
        }
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
    private sealed class SwSyncFence(SwSyncTimeline timeline, uint value) : Fence(timeline.Context, value)
    {
        public SwSyncTimeline Timeline { get; } = timeline;

        /// <summary>Set under the timeline lock before the point is queued by <see cref="Close"/>.</summary>
        public bool ClosedError { get; set; }

        public override string DriverName => "sw_sync";

        public override string TimelineName => Timeline.Name;

    }
}
