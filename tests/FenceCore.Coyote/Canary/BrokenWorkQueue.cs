using System.Collections.Concurrent;

namespace FenceCore.Coyote.Canary;

/// <summary>
/// <c>FenceCore.VirtualGpu.WorkQueue</c> with its one subtle line left out: a worker that finds the queue
/// empty counts itself idle and sleeps without looking again. An item posted between the empty look and
/// the count, by a poster that then saw no idle worker, waits while the worker sleeps. Coyote must find it.
/// </summary>
internal sealed class BrokenWorkQueue
{
    private readonly ConcurrentQueue<int> _items = new();
    private readonly SemaphoreSlim _wake = new(0);
    private int _idle;
    private int _closed;

    public void Post(int item)
    {
        _items.Enqueue(item);
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _idle) > 0)
        {
            _wake.Release();
        }
    }

    public bool Take(out int item)
    {
        while (true)
        {
            if (_items.TryDequeue(out item))
            {
                return true;
            }

            Interlocked.Increment(ref _idle);

            // SEEDED BUG: WorkQueue looks at the queue once more here, after counting itself idle.
            if (Volatile.Read(ref _closed) != 0)
            {
                Interlocked.Decrement(ref _idle);
                return false;
            }

            _wake.Wait();
            Interlocked.Decrement(ref _idle);
        }
    }

    public void Close(int workers)
    {
        Volatile.Write(ref _closed, 1);
        _wake.Release(workers);
    }
}
