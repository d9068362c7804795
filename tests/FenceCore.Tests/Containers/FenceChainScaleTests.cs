using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using Xunit.Abstractions;

namespace FenceCore.Tests.Containers;

/// <summary>
/// The million-node chain: built, signalled in random order while a thread waits on the tail, then
/// dropped. Everything runs on a thread with a 256 KiB stack, so any recursion per node would overflow
/// it; the time per node is compared with a chain eight times shorter to catch super-linear work. The
/// class runs alone (a non-parallel collection) so other tests do not skew the timing, and the short
/// chain takes the best of three runs, as a benchmark would.
/// </summary>
[Collection(nameof(SoloTiming))]
public class FenceChainScaleTests(ITestOutputHelper output)
{
    private const int StackBytes = 256 * 1024;

    [Fact]
    public void MillionNodes_BuiltSignalledRandomlyWaitedAndDroppedInLinearTime()
    {
        Measurement small = Enumerable.Range(0, 3).Select(_ => RunOnSmallStack(125_000)).MinBy(m => m.Elapsed);
        Measurement large = RunOnSmallStack(1_000_000);

        double ratio = large.NsPerNode / small.NsPerNode;
        output.WriteLine(large.ToString());
        output.WriteLine(small.ToString());
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"time per node, 1M vs 125k: {ratio:F2}x (linear ~1, quadratic ~8)"));

        Assert.True(large.Waited && small.Waited, "the tail wait must end");
        Assert.True(large.Collected && small.Collected, "the dropped chain must be collectable");
        // Linear work still costs 1.2-2.6x more per node at 1M (the heap outgrows the caches and the GC
        // promotes 164 MiB); quadratic work would cost about 8x. The bound sits between the two.
        Assert.True(ratio < 5.0, $"time per node grew {ratio:F2}x for an 8x longer chain");
    }

    private static Measurement RunOnSmallStack(int nodes)
    {
        Measurement result = default;
        Exception? failure = null;
        var thread = new Thread(
            () =>
            {
                try
                {
                    result = Run(nodes);
                }
#pragma warning disable CA1031 // rethrown on the test thread
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    failure = ex;
                }
            },
            StackBytes);
        thread.Start();
        thread.Join();
        if (failure is not null)
        {
            throw new InvalidOperationException("the scale run failed", failure);
        }

        return result;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Measurement Run(int nodes)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long heapBefore = GC.GetTotalMemory(forceFullCollection: true);
        long allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        var clock = Stopwatch.StartNew();

        (bool waited, long heapPeak, WeakReference tail) = BuildSignalWait(nodes);

        long heapAfterDrop = GC.GetTotalMemory(forceFullCollection: true);
        clock.Stop();
        return new Measurement(
            nodes,
            clock.Elapsed,
            heapPeak - heapBefore,
            GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore,
            heapAfterDrop - heapBefore,
            waited,
            !tail.IsAlive);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static (bool Waited, long HeapPeak, WeakReference Tail) BuildSignalWait(int nodes)
    {
        ulong context = FenceContext.Allocate();
        var leaves = new FenceSource[nodes];
        FenceChain? head = null;
        for (int i = 0; i < nodes; i++)
        {
            leaves[i] = new FenceSource(context, (ulong)i + 1);
            head = new FenceChain(head, leaves[i], (ulong)i + 1);
        }

        FenceChain tail = head!;
        long heapPeak = GC.GetTotalMemory(forceFullCollection: false);
        bool waited = false;
        using var started = new ManualResetEventSlim();
        var waiter = new Thread(
            () =>
            {
                started.Set();
                waited = tail.Wait(TimeSpan.FromMinutes(2));
            },
            StackBytes);
        waiter.Start();
        started.Wait();

        int[] order = new int[nodes];
        for (int i = 0; i < nodes; i++)
        {
            order[i] = i;
        }

        new Random(nodes).Shuffle(order);
        foreach (int i in order)
        {
            leaves[i].Signal();
        }

        waiter.Join();
        heapPeak = Math.Max(heapPeak, GC.GetTotalMemory(forceFullCollection: false));
        return (waited && tail.IsSignaled, heapPeak, new WeakReference(tail));
    }

    private readonly record struct Measurement(
        int Nodes, TimeSpan Elapsed, long PeakHeapDelta, long Allocated, long HeapAfterDrop, bool Waited, bool Collected)
    {
        public double NsPerNode => Elapsed.TotalNanoseconds / Nodes;

        public override string ToString() => string.Create(CultureInfo.InvariantCulture,
            $"{Nodes:N0} nodes: {Elapsed.TotalMilliseconds:F0} ms ({NsPerNode:F0} ns/node), peak managed heap +{PeakHeapDelta / (1024.0 * 1024):F1} MiB, allocated {Allocated / (1024.0 * 1024):F1} MiB, after drop {HeapAfterDrop / (1024.0 * 1024):F1} MiB, collected={Collected}");
    }
}

/// <summary>Tests whose timing matters run in this collection, after the parallel ones and alone.</summary>
[CollectionDefinition(nameof(SoloTiming), DisableParallelization = true)]
public sealed class SoloTiming
{
}
