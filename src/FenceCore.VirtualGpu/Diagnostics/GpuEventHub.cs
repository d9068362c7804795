using System.Runtime.CompilerServices;

namespace FenceCore.VirtualGpu;

/// <summary>
/// Where the GPU's events go: the event and fence-signal subscribers, the run digest and event count,
/// and consumer isolation (a subscriber's or callback's exception is counted and reported, never thrown
/// into the scheduler).
/// </summary>
/// <remarks>Holds no lock itself: each <see cref="SubscriberList{T}"/> owns the one that serializes its
/// subscribe and unsubscribe, and raising reads the published array without one.</remarks>
internal sealed class GpuEventHub(bool ordered)
{
    private readonly SubscriberList<GpuEvent> _events = new();
    private readonly SubscriberList<GpuFence> _fences = new();

    /// <summary>Virtual mode: an ordered FNV-style chain, written by the loop's thread only (plain writes);
    /// threads mode: a commutative sum, by Interlocked.Add. Read with Interlocked.Read.</summary>
    private ulong _digest = 14695981039346656037UL;

    /// <summary>Events raised: plain increments by the loop's thread in virtual mode, Interlocked in threads mode.</summary>
    private long _eventCount;

    /// <summary>Interlocked increments; read with Interlocked.Read.</summary>
    private long _consumerFailures;

    public ulong Digest => (ulong)Interlocked.Read(ref Unsafe.As<ulong, long>(ref _digest));

    public long EventCount => Interlocked.Read(ref _eventCount);

    public long ConsumerFailures => Interlocked.Read(ref _consumerFailures);

    /// <summary>Raised for each consumer exception, on the thread that caught it.</summary>
    public event Action<Exception>? ConsumerFailed;

    public IDisposable Subscribe(Action<GpuEvent> handler) => _events.Add(handler);

    public IDisposable SubscribeFenceSignals(Action<GpuFence> handler) => _fences.Add(handler);

    public void FenceSignaled(GpuFence fence) => Notify(_fences.Handlers, fence);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Raise(GpuEvent e)
    {
        ulong h = Mix(14695981039346656037UL, (ulong)e.Kind);
        h = Mix(h, (ulong)e.TimeNs);
        h = Mix(h, (ulong)(e.Job?.Id ?? -1));
        h = Mix(h, (ulong)(e.Engine?.Index ?? -1));
        h = Mix(h, (ulong)(uint)e.Error);
        h = Mix(h, (ulong)(e.Buffer?.Id ?? -1));
        if (ordered)
        {
            // Virtual mode: one thread raises every event, so an ordered chain of hashes needs no lock.
            _digest = Mix(_digest, h);
            _eventCount++;
        }
        else
        {
            // Threads mode: the order of events varies with the interleaving anyway; a commutative sum
            // keeps workers from serializing on one lock for every event.
            Interlocked.Add(ref Unsafe.As<ulong, long>(ref _digest), (long)h);
            Interlocked.Increment(ref _eventCount);
        }

        Notify(_events.Handlers, e);
    }

    /// <summary>Runs every subscriber; a subscriber's exception is counted and reported, never thrown.</summary>
    private void Notify<T>(Action<T>[] subscribers, T argument)
    {
        foreach (Action<T> s in subscribers)
        {
            try
            {
                s(argument);
            }
#pragma warning disable CA1031 // a subscriber's exception must not reach the scheduler
            catch (Exception ex)
#pragma warning restore CA1031
            {
                ReportConsumerFailure(ex);
            }
        }
    }

    /// <summary>Counts a consumer's exception and hands it to <see cref="ConsumerFailed"/>; never throws.</summary>
    public void ReportConsumerFailure(Exception exception)
    {
        Interlocked.Increment(ref _consumerFailures);
        try
        {
            ConsumerFailed?.Invoke(exception);
        }
#pragma warning disable CA1031 // the reporting handler is a consumer too
        catch (Exception)
#pragma warning restore CA1031
        {
            Interlocked.Increment(ref _consumerFailures);
        }
    }

    private static ulong Mix(ulong hash, ulong value)
    {
        // FNV-1a-style, a 64-bit word at a time, with a rotate so every bit of value reaches the hash.
        hash ^= value;
        hash *= 1099511628211UL;
        return ulong.RotateLeft(hash, 29);
    }
}

/// <summary>A copy-on-write list of handlers: adding and removing copy the array under this list's one
/// lock; readers take <see cref="Handlers"/> with a volatile read and see a complete array.</summary>
internal sealed class SubscriberList<T>
{
    private readonly object _gate = new();

    /// <summary>Replaced whole under <see cref="_gate"/>; read with Volatile.Read.</summary>
    private Action<T>[] _handlers = [];

    public Action<T>[] Handlers => Volatile.Read(ref _handlers);

    public IDisposable Add(Action<T> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        lock (_gate)
        {
            Volatile.Write(ref _handlers, [.. _handlers, handler]);
        }

        return new Unsubscriber(this, handler);
    }

    private void Remove(Action<T> handler)
    {
        lock (_gate)
        {
            Volatile.Write(ref _handlers, [.. _handlers.Where(h => h != handler)]);
        }
    }

    private sealed class Unsubscriber(SubscriberList<T> list, Action<T> handler) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                list.Remove(handler);
            }
        }
    }
}
