using FenceCore.VirtualGpu;
using Microsoft.Coyote.Specifications;
using Xunit.Abstractions;

namespace FenceCore.Coyote.VirtualGpu;

/// <summary>
/// The engine drain (<see cref="DrainGate"/>, used by the virtual GPU to signal an engine's completed
/// jobs): producers queue items and drain concurrently; every item is taken exactly once, by one drainer
/// at a time, none is left behind, and a drain that throws does not wedge the gate.
/// </summary>
public sealed class DrainGateTests(ITestOutputHelper output)
{
    /// <summary>A queue under a lock, as the engine's completed queue is, drained through a gate.</summary>
    internal sealed class Work
    {
        private readonly Queue<int> _queue = new();
        private int _inside;

        public List<int> Taken { get; } = [];

        public int MaxConcurrentDrainers { get; private set; }

        /// <summary>Items whose drain throws once (the consumer fault the gate must survive).</summary>
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
        s_gate.Value!.Drain(work, static w => w.TakeOne(), static w => w.HasWork());

    // One gate per test iteration (the scenario runs many times in one process).
    private static readonly AsyncLocal<DrainGate> s_gate = new();

    [Fact]
    public void ConcurrentProducers_EveryItemDrainedOnceByOneDrainer() => CoyoteHarness.Check(output, () =>
    {
        s_gate.Value = new DrainGate();
        return Scenario(RealDrain, withFault: false);
    });

    [Fact]
    public void ADrainThatThrows_ReleasesTheGate() => CoyoteHarness.Check(output, () =>
    {
        s_gate.Value = new DrainGate();
        return Scenario(RealDrain, withFault: true);
    });
}
