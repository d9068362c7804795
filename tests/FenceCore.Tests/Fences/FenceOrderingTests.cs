namespace FenceCore.Tests.Fences;

public class FenceOrderingTests
{
    [Fact]
    public void Contexts_AreUniqueNeverZeroAndConsecutiveInABlock()
    {
        ulong a = FenceContext.Allocate();
        ulong b = FenceContext.Allocate(3);
        ulong c = FenceContext.Allocate();
        Assert.NotEqual(0ul, a);
        Assert.True(b > a);
        Assert.Equal(b + 3, c);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void AllocateContexts_RejectsNonPositiveCount(int count)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => FenceContext.Allocate(count));
        Assert.Contains("positive", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Contexts_AllocatedConcurrently_AreDistinct()
    {
        var all = new System.Collections.Concurrent.ConcurrentBag<ulong>();
        Parallel.For(0, 10_000, _ => all.Add(FenceContext.Allocate()));
        Assert.Equal(10_000, all.Distinct().Count());
    }

    [Theory]
    [InlineData(2ul, 1ul, true)]
    [InlineData(1ul, 2ul, false)]
    [InlineData(5ul, 5ul, false)]
    [InlineData(0x1_0000_0001ul, 0xFFFF_FFFFul, true)]      // low 32 bits: 1 vs 0xFFFFFFFF, wrapped
    [InlineData(0x8000_0001ul, 1ul, false)]                  // more than 2^31 ahead compares as earlier
    [InlineData(0x7FFF_FFFFul, 0ul, true)]
    public void IsLater_32Bit_UsesWrapAroundOfLowBits(ulong s1, ulong s2, bool expected)
    {
        ulong ctx = FenceContext.Allocate();
        Assert.Equal(expected, Fence.IsLater(new FenceSource(ctx, s1), new FenceSource(ctx, s2)));
    }

    [Theory]
    [InlineData(0x8000_0001ul, 1ul, true)]
    [InlineData(0x1_0000_0000ul, 0xFFFF_FFFFul, true)]
    [InlineData(1ul, 0x1_0000_0000ul, false)]
    public void IsLater_64Bit_ComparesAllBits(ulong s1, ulong s2, bool expected)
    {
        ulong ctx = FenceContext.Allocate();
        Assert.Equal(expected, Fence.IsLater(new FenceSource(ctx, s1, FenceOptions.Seqno64), new FenceSource(ctx, s2, FenceOptions.Seqno64)));
    }

    [Fact]
    public void IsLaterOrSame_IsTrueForTheSameFence()
    {
        var f = new FenceSource(FenceContext.Allocate(), 3);
        Assert.False(Fence.IsLater(f, f));
        Assert.True(Fence.IsLaterOrSame(f, f));
    }

    [Fact]
    public void Later_ReturnsTheLaterPendingFence_OrNullWhenItSignalled()
    {
        ulong ctx = FenceContext.Allocate();
        var early = new FenceSource(ctx, 1);
        var late = new FenceSource(ctx, 2);
        Assert.Same(late, Fence.Later(early, late));
        Assert.Same(late, Fence.Later(late, early));
        late.Signal();
        Assert.Null(Fence.Later(early, late));
    }

    [Fact]
    public void Comparing_DifferentContexts_IsAnError()
    {
        var a = new FenceSource(FenceContext.Allocate(), 1);
        var b = new FenceSource(FenceContext.Allocate(), 2);
        var ex = Assert.Throws<InvalidOperationException>(() => Fence.IsLater(a, b));
        Assert.Contains("different contexts", ex.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => Fence.Later(a, b));
    }
}
