using Microsoft.Extensions.Time.Testing;

namespace FenceCore.Tests.Fences;

/// <summary>
/// Issue 12, the signal path: a fence takes its one-CAS fast signal unless an adder has announced a callback.
/// A poll (a wait with a zero timeout) and a public <see cref="Fence.EnableSignaling"/> enable signalling, as
/// the kernel's do, but add nothing, so they must not announce; a wait that adds a waiter, and any add, must.
/// </summary>
public sealed class SignalPathAnnounceTests
{
    private static FenceSource Pending() => new(FenceContext.Allocate(), 1);

    [Fact]
    public void PollWithAZeroTimeout_EnablesSignalling_ButDoesNotAnnounceACallback()
    {
        FenceSource blocking = Pending();
        Assert.False(blocking.Wait(TimeSpan.Zero));
        Assert.True(blocking.IsSignalingEnabled);
        Assert.False(blocking.HasAnnouncedCallbacks);

        FenceSource onClock = Pending();
        Assert.False(onClock.Wait(TimeSpan.Zero, new FakeTimeProvider()));
        Assert.True(onClock.IsSignalingEnabled);
        Assert.False(onClock.HasAnnouncedCallbacks);

        FenceSource async = Pending();
        ValueTask<bool> wait = async.WaitAsync(TimeSpan.Zero);
        Assert.True(wait.IsCompletedSuccessfully);
        Assert.False(wait.Result);
        Assert.True(async.IsSignalingEnabled);
        Assert.False(async.HasAnnouncedCallbacks);

        foreach (FenceSource f in new[] { blocking, onClock, async })
        {
            Assert.True(f.Signal());
            Assert.True(f.IsSignaled);
        }
    }

    [Fact]
    public void PublicEnableSignaling_DoesNotAnnounce_AndALaterAddAnnouncesAndRuns()
    {
        FenceSource fence = Pending();
        fence.EnableSignaling();
        Assert.True(fence.IsSignalingEnabled);
        Assert.False(fence.HasAnnouncedCallbacks);

        int runs = 0;
        Assert.NotNull(fence.AddCallback(_ => runs++));
        Assert.True(fence.HasAnnouncedCallbacks);
        fence.Signal();
        Assert.Equal(1, runs);
    }

    [Fact]
    public void WaitThatAddsAWaiter_Announces()
    {
        FenceSource blocking = Pending();
        Assert.False(blocking.Wait(TimeSpan.FromMilliseconds(1)));
        Assert.True(blocking.HasAnnouncedCallbacks);

        FenceSource async = Pending();
        Task<bool> wait = async.WaitAsync(TimeSpan.FromMinutes(5)).AsTask();
        Assert.False(wait.IsCompleted);
        Assert.True(async.HasAnnouncedCallbacks);
        async.Signal();
        Assert.True(wait.Wait(TimeSpan.FromSeconds(30)));
        Assert.True(wait.Result);
    }
}
