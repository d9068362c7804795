using System.Collections.Concurrent;
using static FenceCore.Tests.Containers.ChainFixture;

namespace FenceCore.Tests.Containers;

/// <summary>The cases of the kernel's st-dma-fence-chain.c (suite dma_fence_chain), adapted to C#.</summary>
public class StDmaFenceChainTests
{
    private const int ChainSize = 4 << 10; // the kernel's CHAIN_SZ

    [Fact]
    public void Sanitycheck_OneNodeSignalsWithItsFence()
    {
        var f = new FenceSource(FenceContext.Allocate(), 1);
        var chain = new FenceChain(null, f, 1);
        chain.EnableSignaling();

        f.Signal();

        Assert.True(chain.Poll());
    }

    [Fact]
    public void FindSeqno_ZeroIsANoOpReturningTheNodeItself()
    {
        var fc = new ChainFixture(64, SeqnoInc);

        Fence? found = fc.Tail.FindSeqno(0);

        Assert.Same(fc.Tail, found);
    }

    [Fact]
    public void FindSeqno_FromTailFindsTheNodeOfEveryPoint()
    {
        var fc = new ChainFixture(64, SeqnoInc);

        var found = Enumerable.Range(0, 64).Select(i => fc.Tail.FindSeqno((ulong)i + 1)).ToArray();

        Assert.Equal(fc.Chains, found);
    }

    [Fact]
    public void FindSeqno_FromANodeItsOwnPointFindsItself()
    {
        var fc = new ChainFixture(64, SeqnoInc);

        var found = fc.Chains.Select(c => c.FindSeqno(c.Seqno)).ToArray();

        Assert.Equal(fc.Chains, found);
    }

    [Fact]
    public void FindSeqno_FuturePointFailsWithClearErrorAndTryReturnsFalse()
    {
        var fc = new ChainFixture(64, SeqnoInc);
        FenceChain node = fc.Chains[10]; // seqno 11

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => node.FindSeqno(12));
        bool ok = node.TryFindSeqno(12, out Fence? found);

        Assert.Contains("not been submitted", ex.Message, StringComparison.Ordinal);
        Assert.False(ok);
        Assert.Null(found);
    }

    [Fact]
    public void FindSeqno_EarlierPointFromANodeFindsItsPredecessor()
    {
        var fc = new ChainFixture(64, SeqnoInc);

        var found = Enumerable.Range(1, 63).Select(i => fc.Chains[i].FindSeqno((ulong)i)).ToArray();

        Assert.Equal(fc.Chains[..63], found);
    }

    [Fact]
    public void FindSignaled_SignalledPointIsCollectedOrItsOwnNode()
    {
        var fc = new ChainFixture(2, SeqnoInc);
        fc.Fences[0].Signal();

        Fence? found = fc.Tail.FindSeqno(1);

        Assert.True(found is null || ReferenceEquals(found, fc.Chains[0]), $"found {found}");
    }

    [Fact]
    public void FindSignaled_AfterCollectionThePointResolvesToNull()
    {
        var fc = new ChainFixture(2, SeqnoInc, enableAll: false);
        fc.Fences[0].Signal();

        Fence? found = fc.Tail.FindSeqno(1);

        Assert.Null(found);
    }

    [Fact]
    public void FindOutOfOrder_LaterPointSignalledFirstStillWaitsForTheEarlierNode()
    {
        var fc = new ChainFixture(3, SeqnoInc);
        fc.Fences[1].Signal();

        Fence? found = fc.Tail.FindSeqno(2);

        Assert.Same(fc.Chains[0], found);
    }

    [Fact]
    public void FindGap_PointInAGapIsSignalledByTheNextNode()
    {
        var fc = new ChainFixture(64, SeqnoInc2);

        var found = Enumerable.Range(0, 64).Select(i => fc.Tail.FindSeqno((2 * (ulong)i) + 1)).ToArray();

        Assert.Equal(fc.Chains, found);
    }

    [Fact]
    public void FindGap_NodeFindsItsOwnEvenPoint()
    {
        var fc = new ChainFixture(64, SeqnoInc2);

        var found = Enumerable.Range(0, 64).Select(i => fc.Chains[i].FindSeqno((2 * (ulong)i) + 2)).ToArray();

        Assert.Equal(fc.Chains, found);
    }

    /// <summary>
    /// find_race: every core looks points up from the tail while signalling random fences, so lookups
    /// race with the lock-free collection. The kernel runs for up to 5 s; one second here is enough
    /// because each iteration takes microseconds, so every thread runs hundreds of thousands of
    /// find/signal interleavings, and the suite's time budget stays small on the shared 2-core machine.
    /// </summary>
    [Fact]
    public void FindRace_ConcurrentFindAndSignalNeverFails()
    {
        var fc = new ChainFixture(ChainSize, SeqnoInc);
        var failures = new ConcurrentQueue<string>();
        long deadline = Environment.TickCount64 + 1000;
        int threads = Math.Max(2, Environment.ProcessorCount);
        long lookups = 0;

        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            var rnd = new Random(t * 7919);
            long mine = 0;
            while (Environment.TickCount64 < deadline && failures.IsEmpty)
            {
                ulong seqno = (ulong)rnd.Next(1, ChainSize + 1);
                if (!fc.Tail.TryFindSeqno(seqno, out Fence? found))
                {
                    failures.Enqueue($"find {seqno} failed");
                }
                else if (found is not null)
                {
                    // The node found starts its range below the point. Its own seqno may be lower than
                    // the point when the nodes in between were collected: their fences have signalled,
                    // so this older node's signal completes the point.
                    if (found is not FenceChain node || node.PreviousSeqno >= seqno)
                    {
                        failures.Enqueue($"find {seqno} returned {found}, whose range does not start below the point");
                    }
                    else if (node.Seqno == seqno && !node.TryFindSeqno(seqno, out _))
                    {
                        failures.Enqueue($"find-self {seqno} failed");
                    }
                }

                fc.Fences[rnd.Next(0, ChainSize - 1)].Signal();
                mine++;
            }

            Interlocked.Add(ref lookups, mine);
        });

        Assert.True(failures.IsEmpty, string.Join("; ", failures.Take(5)));
        Assert.True(lookups > 0);
    }

    [Fact]
    public void SignalForward_EachFenceSignalsOnlyItsNode()
    {
        var fc = new ChainFixture(64, SeqnoInc);
        var wrong = new List<int>();

        for (int i = 0; i < 64; i++)
        {
            fc.Fences[i].Signal();
            if (!fc.Chains[i].Poll() || (i + 1 < 64 && fc.Chains[i + 1].Poll()))
            {
                wrong.Add(i);
            }
        }

        Assert.Empty(wrong);
    }

    [Fact]
    public void SignalBackward_NoNodeSignalsBeforeEveryOlderFenceHas()
    {
        var fc = new ChainFixture(64, SeqnoInc);
        for (int i = 63; i > 0; i--)
        {
            fc.Fences[i].Signal();
        }

        var early = Enumerable.Range(1, 63).Where(i => fc.Chains[i].Poll()).ToArray();
        fc.Fences[0].Signal();

        Assert.Empty(early);
        Assert.All(fc.Chains, c => Assert.True(c.IsSignaled));
    }

    [Fact]
    public void WaitForward_TailWaitEndsWhenSignalledInOrder() =>
        WaitWhileSignalling(Enumerable.Range(0, ChainSize).ToArray());

    [Fact]
    public void WaitBackward_TailWaitEndsWhenSignalledInReverse() =>
        WaitWhileSignalling(Enumerable.Range(0, ChainSize).Reverse().ToArray());

    [Fact]
    public void WaitRandom_TailWaitEndsWhenSignalledShuffled()
    {
        int[] order = Enumerable.Range(0, ChainSize).ToArray();
        new Random(4096).Shuffle(order);
        WaitWhileSignalling(order);
    }

    private static void WaitWhileSignalling(int[] order)
    {
        var fc = new ChainFixture(ChainSize, SeqnoInc);
        using var started = new ManualResetEventSlim();
        bool waited = false;
        var waiter = new Thread(() =>
        {
            started.Set();
            waited = fc.Tail.Wait(TimeSpan.FromSeconds(30));
        });
        waiter.Start();
        started.Wait();

        foreach (int i in order)
        {
            fc.Fences[i].Signal();
        }

        waiter.Join();
        Assert.True(waited);
    }
}
