using FenceCore.Tests.Fences;
using static FenceCore.Tests.Containers.ChainFixture;

namespace FenceCore.Tests.Containers;

/// <summary>Chain behaviour beyond the kernel self-tests: construction rules, collection, callbacks.</summary>
public class FenceChainTests
{
    private static FenceSource Leaf() => new(FenceContext.Allocate(), 1);

    [Fact]
    public void Constructor_LaterPointReusesPreviousContextAndKeepsPrevSeqno()
    {
        var first = new FenceChain(null, Leaf(), 5);

        var next = new FenceChain(first, Leaf(), 9);

        Assert.Equal((first.Context, 9ul, 5ul), (next.Context, next.Seqno, next.PreviousSeqno));
    }

    [Fact]
    public void Constructor_OutOfOrderPointTakesNewContextAndTheLargerSeqno()
    {
        var first = new FenceChain(null, Leaf(), 9);

        var next = new FenceChain(first, Leaf(), 5);

        Assert.NotEqual(first.Context, next.Context);
        Assert.Equal((9ul, 0ul), (next.Seqno, next.PreviousSeqno));
    }

    [Fact]
    public void Constructor_EqualPointIsOutOfOrder()
    {
        var first = new FenceChain(null, Leaf(), 7);

        var next = new FenceChain(first, Leaf(), 7);

        Assert.NotEqual(first.Context, next.Context);
    }

    [Fact]
    public void Constructor_ComparesPointsOn64Bits()
    {
        var first = new FenceChain(null, Leaf(), 1);

        var next = new FenceChain(first, Leaf(), (1ul << 40) + 1);

        Assert.True(next.UsesSeqno64);
        Assert.Equal(first.Context, next.Context);
    }

    [Fact]
    public void Constructor_PlainPreviousFenceStartsNewContextWithGivenPoint()
    {
        var plain = Leaf();

        var node = new FenceChain(plain, Leaf(), 3);

        Assert.NotEqual(plain.Context, node.Context);
        Assert.Equal(3ul, node.Seqno);
        Assert.Same(plain, node.Previous);
    }

    [Fact]
    public void Constructor_ChainAsContainedFenceIsRejected()
    {
        var inner = new FenceChain(null, Leaf(), 1);

        var ex = Assert.Throws<ArgumentException>(() => new FenceChain(null, inner, 2));

        Assert.Contains("must not itself be a chain", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_NullFenceIsRejected() =>
        Assert.Throws<ArgumentNullException>(() => new FenceChain(null, null!, 1));

    [Fact]
    public void Constructor_ArrayAsContainedFenceIsAccepted()
    {
        var array = new FenceArray([Leaf(), Leaf()]);

        var node = new FenceChain(null, array, 1);

        Assert.Same(array, node.ContainedFence);
    }

    [Fact]
    public void Contained_ReturnsTheChainsFenceOrTheFenceItself()
    {
        var leaf = Leaf();
        var node = new FenceChain(null, leaf, 1);

        Assert.Same(leaf, FenceChain.Contained(node));
        Assert.Same(leaf, FenceChain.Contained(leaf));
        Assert.Null(FenceChain.Contained(null));
    }

    [Fact]
    public void Walk_UnlinksSignalledPredecessorsByCompareAndSwap()
    {
        var fc = new ChainFixture(4, SeqnoInc, enableAll: false);
        fc.Fences[1].Signal();
        fc.Fences[2].Signal();

        Fence? next = FenceChain.Walk(fc.Tail);

        Assert.Same(fc.Chains[0], next);
        Assert.Same(fc.Chains[0], fc.Tail.Previous);
    }

    [Fact]
    public void Walk_SignalledPlainPredecessorIsReplacedByNull()
    {
        var plain = Leaf();
        var node = new FenceChain(plain, Leaf(), 1);
        plain.Signal();

        Fence? next = FenceChain.Walk(node);

        Assert.Null(next);
        Assert.Null(node.Previous);
    }

    [Fact]
    public void Walk_OfAPlainFenceIsNull() => Assert.Null(FenceChain.Walk(Leaf()));

    [Fact]
    public void ForEach_YieldsHeadThenUnsignalledOlderNodes()
    {
        var fc = new ChainFixture(5, SeqnoInc, enableAll: false);
        fc.Fences[1].Signal();
        fc.Fences[3].Signal();

        var seen = new List<Fence>();
        foreach (Fence node in FenceChain.ForEach(fc.Tail))
        {
            seen.Add(node);
        }

        Assert.Equal([fc.Chains[4], fc.Chains[2], fc.Chains[0]], seen);
    }

    [Fact]
    public void ForEach_PlainFenceOnceAndNullNothing()
    {
        var leaf = Leaf();
        int plain = 0, none = 0;

        foreach (Fence _ in FenceChain.ForEach(leaf))
        {
            plain++;
        }

        foreach (Fence _ in FenceChain.ForEach(null))
        {
            none++;
        }

        Assert.Equal((1, 0), (plain, none));
    }

    [Fact]
    public void ForEach_AllocatesNothing()
    {
        var fc = new ChainFixture(16, SeqnoInc, enableAll: false);
        static int Count(Fence head)
        {
            int n = 0;
            foreach (Fence _ in FenceChain.ForEach(head))
            {
                n++;
            }

            return n;
        }

        Count(fc.Tail);
        long before = GC.GetAllocatedBytesForCurrentThread();
        int n = Count(fc.Tail);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(16, n);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void TryFindSeqno_StaticOnPlainFenceFailsForNonZeroPoint()
    {
        var leaf = Leaf();

        bool zero = FenceChain.TryFindSeqno(leaf, 0, out Fence? same);
        bool one = FenceChain.TryFindSeqno(leaf, 1, out Fence? none);

        Assert.True(zero);
        Assert.Same(leaf, same);
        Assert.False(one);
        Assert.Null(none);
    }

    [Fact]
    public void FindSeqno_AcrossAnOutOfOrderPointReturnsTheNewHead()
    {
        var a = new FenceChain(null, Leaf(), 5);
        var b = new FenceChain(a, Leaf(), 3); // out of order: new context, seqno 5

        Fence? found = b.FindSeqno(4);

        Assert.Same(b, found);
    }

    [Fact]
    public void Signaling_OnlyOneCallbackIsInFlight()
    {
        var fc = new ChainFixture(8, SeqnoInc, enableAll: false);
        fc.Tail.EnableSignaling();

        int linked = fc.Fences.Sum(f => f.LinkedCallbackCellsForTesting());

        Assert.Equal(1, linked);
        Assert.Equal(1, fc.Fences[7].LinkedCallbackCellsForTesting());
    }

    [Fact]
    public void Signaling_CallbackRearmsOnTheNextUnsignalledFence()
    {
        var fc = new ChainFixture(8, SeqnoInc, enableAll: false);
        fc.Tail.EnableSignaling();
        fc.Fences[3].Signal();

        fc.Fences[7].Signal();

        Assert.Equal(1, fc.Fences[6].LinkedCallbackCellsForTesting());
        Assert.Equal(1, fc.Fences.Sum(f => f.LinkedCallbackCellsForTesting()));
        Assert.False(fc.Tail.Poll());
    }

    [Fact]
    public void Signaling_PollingWithoutEnablingSeesTheWholeTimeline()
    {
        var fc = new ChainFixture(4, SeqnoInc, enableAll: false);
        foreach (FenceSource f in fc.Fences[..3])
        {
            f.Signal();
        }

        bool before = fc.Tail.Poll();
        fc.Fences[3].Signal();
        bool read = fc.Tail.IsSignaled;
        bool after = fc.Tail.Poll();

        Assert.False(before);
        Assert.False(read); // a plain read does not poll
        Assert.True(after);
        Assert.False(fc.Tail.IsSignalingEnabled);
    }

    [Fact]
    public void Signaling_AllContainedAlreadySignalledSignalsAtEnable()
    {
        var fc = new ChainFixture(3, SeqnoInc, enableAll: false);
        foreach (FenceSource f in fc.Fences)
        {
            f.Signal();
        }

        fc.Tail.EnableSignaling();

        Assert.True(fc.Tail.IsSignaled);
    }

    [Fact]
    public void Signaling_ContainedErrorIsNotTakenOverLikeTheKernel()
    {
        var leaf = Leaf();
        var node = new FenceChain(null, leaf, 1);
        node.EnableSignaling();

        leaf.Signal(-Errno.EIO);

        Assert.Equal(1, node.Status);
        Assert.Equal(-Errno.EIO, FenceChain.Contained(node).Status);
    }

    [Fact]
    public void Signaling_ArrayContainedFenceSignalsTheNodeWhenAllMembersHave()
    {
        FenceSource a = Leaf(), b = Leaf();
        var node = new FenceChain(null, new FenceArray([a, b]), 1);
        node.EnableSignaling();

        a.Signal();
        bool afterOne = node.IsSignaled;
        b.Signal();

        Assert.False(afterOne);
        Assert.True(node.IsSignaled);
    }

    [Fact]
    public void SetDeadline_IsForwardedToEveryContainedFenceAlongTheWalk()
    {
        ulong ctx = FenceContext.Allocate();
        var leaves = Enumerable.Range(1, 3).Select(i => new TestFences.HookedFence(ctx, (ulong)i)).ToArray();
        FenceChain? head = null;
        foreach (var leaf in leaves)
        {
            head = new FenceChain(head, leaf, leaf.Seqno);
        }

        head!.SetDeadline(TimeSpan.FromTicks(12345));

        Assert.All(leaves, l => Assert.Equal(TimeSpan.FromTicks(12345), l.Deadline));
    }

    [Fact]
    public void DriverAndTimelineNamesMatchTheKernel()
    {
        var node = new FenceChain(null, Leaf(), 1);

        Assert.Equal(("dma_fence_chain", "unbound"), (node.DriverName, node.TimelineName));
    }
}
