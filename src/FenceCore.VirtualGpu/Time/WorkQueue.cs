using System.Collections.Concurrent;

namespace FenceCore.VirtualGpu;

/// <summary>
/// The threads-mode run queue: any thread posts, the GPU's workers take, in FIFO order. A poster wakes a
/// worker only when one is idle, so a busy GPU pays a short enqueue per work item and no semaphore
/// operation (the <see cref="System.Collections.Concurrent.BlockingCollection{T}"/> it replaces released
/// and waited on its semaphore for every item).
/// </summary>
/// <remarks>
/// <para>No lock: the items are in a <see cref="ConcurrentQueue{T}"/> (lock-free; Coyote's rewriting controls it
/// and interleaves at each of its operations). Before, a lock guarded a <see cref="Queue{T}"/> for each enqueue
/// and dequeue, a few times per job, and in threads mode on two cores posters and workers met on it (PERF: the
/// throughput command in threads mode on two cores, about 5 % faster without it). The sleep and wake-up are
/// lock-free too:</para>
/// <para>A worker that finds the queue empty first counts itself idle (<see cref="_idle"/>, Interlocked: a
/// full fence), then looks at the queue once more, and only then sleeps on <see cref="_wake"/>. A poster
/// enqueues, then a full fence, then reads <see cref="_idle"/>. Either the worker's second look sees the item,
/// or the poster sees the worker idle and releases it: both cannot miss. A release that finds the worker
/// already awake leaves a spare count; the next sleep returns at once and looks again, which costs a loop and
/// loses nothing.</para>
/// <para>Coyote explores it (<c>WorkQueueTests</c>), with a canary that leaves out the second look.</para>
/// </remarks>
internal sealed class WorkQueue<T> : IDisposable
{
    private readonly ConcurrentQueue<T> _items = new();
    private readonly SemaphoreSlim _wake = new(0);

    /// <summary>Workers between their first empty look and waking: Interlocked; read with Volatile.Read.</summary>
    private int _idle;

    /// <summary>Set once by <see cref="Close"/>; read with Volatile.Read.</summary>
    private int _closed;

    public int Count => _items.Count;

    public void Post(T item)
    {
        _items.Enqueue(item);

        // The item is published before the idle count is read: a store then a load, which only a full fence
        // keeps in that order (the enqueue's own interlocked step comes before its publishing store).
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _idle) > 0)
        {
            _wake.Release();
        }
    }

    /// <summary>Takes the next item, sleeping while there is none; false once closed and empty.</summary>
    public bool Take(out T item)
    {
        while (true)
        {
            if (TryDequeue(out item))
            {
                return true;
            }

            Interlocked.Increment(ref _idle);
            if (TryDequeue(out item))
            {
                Interlocked.Decrement(ref _idle);
                return true;
            }

            if (Volatile.Read(ref _closed) != 0)
            {
                Interlocked.Decrement(ref _idle);
                return false;
            }

            _wake.Wait();
            Interlocked.Decrement(ref _idle);
        }
    }

    /// <summary>Wakes every worker for good: each takes what is left, then <see cref="Take"/> returns false.</summary>
    public void Close(int workers)
    {
        Volatile.Write(ref _closed, 1);
        _wake.Release(workers);
    }

    /// <summary>Frees the semaphore; only after every worker has left <see cref="Take"/>.</summary>
    public void Dispose() => _wake.Dispose();

    private bool TryDequeue(out T item) => _items.TryDequeue(out item!);
}
