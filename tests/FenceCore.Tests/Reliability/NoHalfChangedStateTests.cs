namespace FenceCore.Tests.Reliability;

/// <summary>
/// No half-changed state (issue 11): an enable-signalling hook that throws leaves the enable bit clear, so
/// the next waiter calls it again; a timeout too long for the blocking primitives is rejected before any
/// waiter is registered.
/// </summary>
public class NoHalfChangedStateTests
{
    /// <summary>A fence whose enable-signalling hook throws the first <c>failures</c> times.</summary>
    private sealed class FlakyEnableFence(int failures) : FenceSource(FenceContext.Allocate(), 1)
    {
        private int _failuresLeft = failures;

        public int Calls { get; private set; }

        protected override bool OnEnableSignaling()
        {
            Calls++;
            if (_failuresLeft-- > 0)
            {
                throw new InvalidOperationException("enable-signalling failed");
            }

            return true;
        }
    }

    [Fact]
    public void ThrowingEnableSignalingHook_LeavesTheBitClear_AndIsCalledAgain()
    {
        var fence = new FlakyEnableFence(failures: 1);

        Assert.Throws<InvalidOperationException>(() => fence.EnableSignaling());
        Assert.False(fence.IsSignalingEnabled);

        fence.EnableSignaling();
        Assert.True(fence.IsSignalingEnabled);
        Assert.Equal(2, fence.Calls);
    }

    [Fact]
    public void ThrowingEnableSignalingHook_InAddCallback_LeavesTheNodeFree()
    {
        var fence = new FlakyEnableFence(failures: 1);
        FenceCallback node = FenceCallback.Create(_ => { });

        Assert.Throws<InvalidOperationException>(() => fence.AddCallback(node));
        Assert.False(node.IsQueued);
        Assert.True(fence.AddCallback(node)); // the same node can be added once the hook succeeds
    }

    [Fact]
    public void FenceArray_WhoseMembersEnableHookThrewOnce_StillSignalsWhenWaitedOnAgain()
    {
        var member = new FlakyEnableFence(failures: 1);
        var array = new FenceArray([member], FenceContext.Allocate(), 1, signalOnAny: false);
        Assert.Throws<InvalidOperationException>(() => array.EnableSignaling());

        bool signalled = false;
        var waiter = new Thread(() => signalled = array.Wait(TimeSpan.FromSeconds(10)));
        waiter.Start();
        SpinWait.SpinUntil(() => member.Calls == 2, TimeSpan.FromSeconds(10)); // the array enabled again
        member.Signal();

        Assert.True(waiter.Join(TimeSpan.FromSeconds(10)));
        Assert.True(signalled); // before the fix the array's bit stayed set and the wait timed out
    }

    [Fact]
    public void WaitLongerThanTheBlockingPrimitivesAllow_IsRejectedBeforeAnyWaiterIsQueued()
    {
        var fence = new FenceSource(FenceContext.Allocate(), 1);

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => fence.Wait(TimeSpan.FromDays(30)));
        Assert.Contains("24.8 days", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0, fence.LinkedCallbackCellsForTesting()); // before the fix the waiter stayed queued
        fence.Signal();
        Assert.True(fence.Wait(TimeSpan.FromDays(24))); // a long timeout within the limit is accepted
    }
}
