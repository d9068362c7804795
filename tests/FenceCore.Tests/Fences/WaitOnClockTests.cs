using Microsoft.Extensions.Time.Testing;

namespace FenceCore.Tests.Fences;

/// <summary>Issue 13: a blocking wait follows the clock it is given (a <see cref="FakeTimeProvider"/> here, the
/// virtual GPU's in a simulation), not the machine's.</summary>
public sealed class WaitOnClockTests
{
    private static FenceSource Pending() => new(FenceContext.Allocate(), 1);

    private static Task<bool> WaitOnThread(Fence fence, TimeSpan timeout, TimeProvider clock, CancellationToken token = default) =>
        Task.Factory.StartNew(() => fence.Wait(timeout, clock, token), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    private static void UntilWaiting(Fence fence)
    {
        SpinWait.SpinUntil(() => fence.IsSignalingEnabled, TimeSpan.FromSeconds(10));
        Thread.Sleep(20); // past the add-callback, into the block
    }

    [Fact]
    public void TimesOut_WhenTheGivenClockPassesTheTimeout_NotBefore()
    {
        var clock = new FakeTimeProvider();
        FenceSource fence = Pending();
        Task<bool> wait = WaitOnThread(fence, TimeSpan.FromSeconds(5), clock);
        UntilWaiting(fence);

        clock.Advance(TimeSpan.FromSeconds(4));
        Assert.False(wait.Wait(TimeSpan.FromMilliseconds(200)), "returned before the fake clock reached the timeout");
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.True(wait.Wait(TimeSpan.FromSeconds(10)));
        Assert.False(wait.Result);
        Assert.Equal(0, fence.LinkedCallbackCellsForTesting()); // the timed-out waiter left the list
    }

    [Fact]
    public void ReturnsTrue_WhenTheFenceSignalsFirst_AndALateTimerIsHarmless()
    {
        var clock = new FakeTimeProvider();
        FenceSource fence = Pending();
        Task<bool> wait = WaitOnThread(fence, TimeSpan.FromSeconds(5), clock);
        UntilWaiting(fence);

        fence.Signal();
        Assert.True(wait.Wait(TimeSpan.FromSeconds(10)));
        Assert.True(wait.Result);
        clock.Advance(TimeSpan.FromSeconds(10)); // the timer was disposed; nothing fires
    }

    [Fact]
    public void ZeroTimeout_Polls_AndBadArgumentsNameTheRule()
    {
        var clock = new FakeTimeProvider();
        FenceSource fence = Pending();
        Assert.False(fence.Wait(TimeSpan.Zero, clock));
        fence.Signal();
        Assert.True(fence.Wait(TimeSpan.Zero, clock));
        Assert.Throws<ArgumentNullException>(() => fence.Wait(TimeSpan.FromSeconds(1), (TimeProvider)null!));
        Assert.Throws<ArgumentOutOfRangeException>(() => Pending().Wait(TimeSpan.FromSeconds(-2), clock));
    }

    [Fact]
    public void Cancellation_EndsTheWait_WithoutASignal()
    {
        var clock = new FakeTimeProvider();
        FenceSource fence = Pending();
        using var cts = new CancellationTokenSource();
        Task<bool> wait = WaitOnThread(fence, TimeSpan.FromSeconds(5), clock, cts.Token);
        UntilWaiting(fence);

        cts.Cancel();
        var ex = Assert.ThrowsAny<AggregateException>(() => wait.Wait(TimeSpan.FromSeconds(10)));
        Assert.IsAssignableFrom<OperationCanceledException>(ex.InnerException);
        Assert.Equal(0, fence.LinkedCallbackCellsForTesting());
    }
}
