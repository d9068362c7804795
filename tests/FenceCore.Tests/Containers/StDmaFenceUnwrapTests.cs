namespace FenceCore.Tests.Containers;

/// <summary>The cases of the kernel's st-dma-fence-unwrap.c (suite dma_fence_unwrap), adapted to C#.
/// Mock leaves have their own context and seqno 1 unless given; mock chains use seqno 1.</summary>
public class StDmaFenceUnwrapTests
{
    internal static FenceSource Mock(ulong? context = null, ulong seqno = 1) => new(context ?? FenceContext.Allocate(), seqno);

    internal static FenceArray MockArray(params Fence[] fences) => new(fences);

    internal static FenceChain MockChain(Fence? prev, Fence fence) => new(prev, fence, 1);

    internal static List<Fence> Unwrap(Fence? head)
    {
        var leaves = new List<Fence>();
        foreach (Fence f in FenceUnwrap.ForEach(head))
        {
            leaves.Add(f);
        }

        return leaves;
    }

    [Fact]
    public void Sanitycheck_FenceInArrayInChainUnwrapsToTheFence()
    {
        var f = Mock();
        var chain = MockChain(null, MockArray(f));

        var leaves = Unwrap(chain);

        Assert.Equal([f], leaves);
    }

    [Fact]
    public void UnwrapArray_YieldsExactlyTheMembers()
    {
        Fence f1 = Mock(), f2 = Mock();

        var leaves = Unwrap(MockArray(f1, f2));

        Assert.Equal([f1, f2], leaves);
    }

    [Fact]
    public void UnwrapChain_YieldsNewestFirstThenPrevious()
    {
        Fence f1 = Mock(), f2 = Mock();

        var leaves = Unwrap(MockChain(f1, f2));

        Assert.Equal([f2, f1], leaves);
    }

    [Fact]
    public void UnwrapChainArray_YieldsTheArrayMembers()
    {
        Fence f1 = Mock(), f2 = Mock();

        var leaves = Unwrap(MockChain(null, MockArray(f1, f2)));

        Assert.Equal([f1, f2], leaves);
    }

    [Fact]
    public void UnwrapMerge_DifferentContextsYieldBoth()
    {
        Fence f1 = Mock(), f2 = Mock();

        var leaves = Unwrap(FenceUnwrap.Merge(f1, f2));

        Assert.Equal([f1, f2], leaves);
    }

    [Fact]
    public void UnwrapMergeDuplicate_SameFenceTwiceYieldsItOnce()
    {
        var f1 = Mock();

        Fence merged = FenceUnwrap.Merge(f1, f1);

        Assert.Same(f1, merged);
    }

    [Fact]
    public void UnwrapMergeSeqno_KeepsLatestPerContextSortedByContext()
    {
        ulong ctxA = FenceContext.Allocate(), ctxB = FenceContext.Allocate();
        Fence f1 = Mock(ctxB, 1), f2 = Mock(ctxB, 2), f3 = Mock(ctxA, 1);

        var leaves = Unwrap(FenceUnwrap.Merge(f1, f2, f3));

        Assert.Equal([f3, f2], leaves);
    }

    [Fact]
    public void UnwrapMergeOrder_ArrayAndReversedChainYieldEachOnceInContextOrder()
    {
        Fence f1 = Mock(), f2 = Mock();
        var a1 = MockArray(f1, f2);
        var c2 = MockChain(MockChain(null, f1), f2);

        var leaves = Unwrap(FenceUnwrap.Merge(a1, c2));

        Assert.Equal([f1, f2], leaves);
    }

    [Fact]
    public void UnwrapMergeComplex_StubIsFilteredAndDuplicatesCollapse()
    {
        Fence f1 = Mock(), f2 = Mock();
        Fence f3 = FenceUnwrap.Merge(f1, f2);
        var f4 = MockArray(f2, f1);

        var leaves = Unwrap(FenceUnwrap.Merge(f3, f4, Fence.Stub));

        Assert.Equal([f1, f2], leaves);
    }

    [Fact]
    public void UnwrapMergeComplexSeqno_LatestPerContextAcrossArrays()
    {
        ulong c0 = FenceContext.Allocate(), c1 = FenceContext.Allocate();
        Fence f1 = Mock(c0, 2), f2 = Mock(c1, 1), f3 = Mock(c0, 1), f4 = Mock(c1, 2);

        var leaves = Unwrap(FenceUnwrap.Merge(MockArray(f1, f2), MockArray(f3, f4)));

        Assert.Equal([f1, f4], leaves);
    }
}
