namespace FenceCore.Tests.Fences;

/// <summary>Bad input gets a clear exception naming the rule, and the fence is left as it was.</summary>
public class FenceBadInputTests
{
    private static FenceSource NewFence() => new(FenceContext.Allocate(), 1);

    [Fact]
    public void NullCallback_IsRejected()
    {
        var f = NewFence();
        Assert.Throws<ArgumentNullException>(() => f.AddCallback((FenceCallback)null!));
        Assert.Throws<ArgumentNullException>(() => f.AddCallback((Action<Fence>)null!));
        Assert.Throws<ArgumentNullException>(() => f.RemoveCallback(null!));
        Assert.False(f.IsSignalingEnabled);
    }

    [Fact]
    public void NegativeTimeout_IsRejected_WithoutEnablingSignalling()
    {
        var f = NewFence();
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => f.Wait(TimeSpan.FromMilliseconds(-5)));
        Assert.Contains("must be zero or positive", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => Fence.WaitAny([f], TimeSpan.FromMilliseconds(-2)));
        Assert.Throws<ArgumentOutOfRangeException>(() => f.WaitAsync(TimeSpan.FromMilliseconds(-2)));
        Assert.False(f.IsSignalingEnabled);
        Assert.False(f.IsSignaled);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    [InlineData(-4096)]
    [InlineData(int.MinValue)]
    public void SetError_OutsideErrnoRange_IsRejected_AndStatusUnchanged(int error)
    {
        var f = NewFence();
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => f.SetError(error));
        Assert.Contains("[-4095, -1]", ex.Message, StringComparison.Ordinal);
        f.Signal();
        Assert.Equal(1, f.Status);
    }

    [Theory]
    [InlineData(7)]
    [InlineData(-5000)]
    public void SignalWithError_OutsideErrnoRange_IsRejected_AndFenceStaysPending(int error)
    {
        var f = NewFence();
        Assert.Throws<ArgumentOutOfRangeException>(() => f.Signal(error));
        Assert.False(f.IsSignaled);
    }

    [Fact]
    public void SetError_AfterSignal_IsRejected_AndStatusUnchanged()
    {
        var f = NewFence();
        f.Signal();
        var ex = Assert.Throws<InvalidOperationException>(() => f.SetError(-Errno.EIO));
        Assert.Contains("before it signals", ex.Message, StringComparison.Ordinal);
        Assert.Equal(1, f.Status);
    }

    [Fact]
    public void Timestamp_BeforeSignal_IsRejected()
    {
        var f = NewFence();
        var ex = Assert.Throws<InvalidOperationException>(() => f.Timestamp);
        Assert.Contains("only once the fence has signalled", ex.Message, StringComparison.Ordinal);
        Assert.False(f.TryGetTimestamp(out _));
    }
}
