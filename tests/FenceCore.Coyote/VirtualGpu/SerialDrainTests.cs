using FenceCore.Internal;
using Microsoft.Coyote.Specifications;
using Xunit.Abstractions;

namespace FenceCore.Coyote.VirtualGpu;

/// <summary>
/// The library's serial drain (<see cref="SerialDrain"/>, the funnel of sw_sync's reached points and of the
/// virtual GPU's completed jobs per engine): producers queue items and drain concurrently; every item is
/// taken exactly once, by one drainer at a time, none is left behind, a drain that throws does not wedge
/// the funnel, and a producer re-entering from inside the drain is told it is the drainer.
/// </summary>
public sealed class SerialDrainTests(ITestOutputHelper output)
{
    /// <summary>A queue under a lock, as the engine's completed queue is, drained through the funnel.</summary>
    internal sealed class Work : ISerialDrainWork
    {
        private readonly Queue<int> _queue = new();
        private int _inside;

        public List<int> Taken { get; } = [];

        public int MaxConcurrentDrainers { get; private set; }

        /// <summary>Runs after an item is taken, on the drainer's thread (a callback that produces more work).</summary>
        public Action<Work, int>? OnTaken { get; set; }

        /// <summary>Items whose drain throws once (the consumer fault the funnel must survive).</summary>
        public HashSet<int> ThrowOnce { get; } = [];

        public void Enqueue(int item)
        {
            lock (_queue)
            {
                _queue.Enqueue(item);
            }
        }

        public bool HasWork()
        {
            lock (_queue)
            {
                return _queue.Count > 0;
            }
        }

        public bool TakeOne()
        {
            int inside = Interlocked.Increment(ref _inside);
            try
            {
                MaxConcurrentDrainers = Math.Max(MaxConcurrentDrainers, inside);
                int item;
                lock (_queue)
                {
                    if (!_queue.TryDequeue(out item))
                    {
                        return false;
                    }
                }

                Taken.Add(item); // safe only because one drainer runs at a time (asserted)
                OnTaken?.Invoke(this, item);
                if (ThrowOnce.Remove(item))
                {
                    throw new InvalidOperationException("consumer fault");
                }

                return true;
            }
            finally
            {
                Interlocked.Decrement(ref _inside);
            }
        }
    }

    internal static void Produce(Action<Work> drain, Work work, int item)
    {
        work.Enqueue(item);
        try
        {
            drain(work);
        }
        catch (InvalidOperationException)
        {
            drain(work); // the producer that saw the fault drains again, as the engine's next event would
        }
    }

    internal static async Task Scenario(Action<Work> drain, bool withFault)
    {
        var work = new Work();
        if (withFault)
        {
            work.ThrowOnce.Add(1);
        }

        Task[] producers = [.. Enumerable.Range(0, 3).Select(i => Task.Run(() => Produce(drain, work, i)))];
        await Task.WhenAll(producers);

        Specification.Assert(work.MaxConcurrentDrainers <= 1, "{0} drainers ran at once", work.MaxConcurrentDrainers);
        Specification.Assert(!work.HasWork(), "an item was left in the queue with no drainer (lost wake-up)");
        Specification.Assert(work.Taken.Count == 3 && work.Taken.Distinct().Count() == 3,
            "items taken: {0}", string.Join(",", work.Taken));
    }

    private static void RealDrain(Work work) =>
        s_gate.Value!.Drain(work);

    // One drain per test iteration (the scenario runs many times in one process).
    private static readonly AsyncLocal<SerialDrain> s_gate = new();

    [Fact]
    public void ConcurrentProducers_EveryItemDrainedOnceByOneDrainer() => CoyoteHarness.Check(output, () =>
    {
        s_gate.Value = new SerialDrain();
        return Scenario(RealDrain, withFault: false);
    });

    [Fact]
    public void ADrainThatThrows_ReleasesTheDrain() => CoyoteHarness.Check(output, () =>
    {
        s_gate.Value = new SerialDrain();
        return Scenario(RealDrain, withFault: true);
    });

    [Fact]
    public void AProducerInsideTheDrain_IsToldItIsTheDrainer_AndItsItemIsDrained() => CoyoteHarness.Check(output, async () =>
    {
        var drain = new SerialDrain();
        var work = new Work();
        bool reentrantSawItself = false;
        work.OnTaken = (w, item) =>
        {
            if (item == 0)
            {
                w.Enqueue(100); // as a fence callback that increments the same timeline
                drain.Drain(w);
                reentrantSawItself = drain.IsDrainingOnThisThread;
            }
        };

        Task[] producers = [.. Enumerable.Range(0, 2).Select(i => Task.Run(() => Produce(x => drain.Drain(x), work, i)))];
        await Task.WhenAll(producers);

        Specification.Assert(reentrantSawItself, "a drain re-entered from its own callback was not told it is the drainer");
        Specification.Assert(!drain.IsDraining, "the drain was left claimed");
        Specification.Assert(!work.HasWork(), "the re-entrant item was left in the queue");
        Specification.Assert(work.Taken.Count == 3 && work.Taken.Distinct().Count() == 3, "items taken: {0}", string.Join(",", work.Taken));
    });
}
