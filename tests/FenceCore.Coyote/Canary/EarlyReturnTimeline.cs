using FenceCore.Coyote.SyncFiles;

namespace FenceCore.Coyote.Canary;

/// <summary>
/// A deliberately broken sw_sync timeline for the canary: the drain of FenceCore before issue 11, a CAS
/// flag that lets one thread signal the reached points and makes every other thread return at once, so an
/// increment can return before the points it reached have signalled.
/// </summary>
internal sealed class EarlyReturnTimeline : IIncrementingTimeline
{
    private readonly object _gate = new();
    private readonly ulong _context = FenceContext.Allocate();
    private readonly SortedDictionary<uint, FenceSource> _pending = [];
    private readonly Queue<FenceSource> _toSignal = new();
    private uint _value;
    private int _draining;

    public Fence CreateFence(uint value)
    {
        lock (_gate)
        {
            if (value <= _value)
            {
                var reached = new FenceSource(_context, value);
                reached.Signal();
                return reached; // the old bug's second symptom: a new fence for a point still being signalled
            }

            if (!_pending.TryGetValue(value, out FenceSource? fence))
            {
                fence = new FenceSource(_context, value);
                _pending.Add(value, fence);
            }

            return fence;
        }
    }

    public void Increment()
    {
        lock (_gate)
        {
            _value++;
            while (_pending.Count > 0 && _pending.First().Key <= _value)
            {
                KeyValuePair<uint, FenceSource> first = _pending.First();
                _pending.Remove(first.Key);
                _toSignal.Enqueue(first.Value);
            }
        }

        while (Interlocked.CompareExchange(ref _draining, 1, 0) == 0)
        {
            while (true)
            {
                FenceSource? next;
                lock (_gate)
                {
                    if (!_toSignal.TryDequeue(out next))
                    {
                        break;
                    }
                }

                next.Signal();
            }

            Volatile.Write(ref _draining, 0);
            lock (_gate)
            {
                if (_toSignal.Count == 0)
                {
                    return;
                }
            }
        }

        // The seeded bug: another thread drains, and this increment returns without waiting for it.
    }
}
