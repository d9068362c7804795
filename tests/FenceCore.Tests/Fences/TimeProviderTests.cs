using FenceCore.VirtualGpu;
using Microsoft.Extensions.Time.Testing;

namespace FenceCore.Tests.Fences;

/// <summary>Clocks and timers from a <see cref="TimeProvider"/> (issue 13's one model of time).</summary>
public class TimeProviderTests
{
    [Fact]
    public async Task WaitAsync_OnAFakeClock_TimesOutOnlyWhenTheClockPassesTheTimeout()
    {
        var time = new FakeTimeProvider();
        var f = new FenceSource(FenceContext.Allocate(), 1);

        ValueTask<bool> wait = f.WaitAsync(TimeSpan.FromSeconds(5), time);
        time.Advance(TimeSpan.FromSeconds(4));
        bool before = wait.IsCompleted;
        time.Advance(TimeSpan.FromSeconds(1));

        Assert.False(before); // 4 s of fake time: still waiting, however long the test really took
        Assert.False(await wait.AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(0, f.LinkedCallbackCellsForTesting()); // the timed-out wait removed its callback
    }

    [Fact]
    public async Task WaitAsync_OnAFakeClock_SignalBeforeTheTimeoutWins()
    {
        var time = new FakeTimeProvider();
        var f = new FenceSource(FenceContext.Allocate(), 1);

        ValueTask<bool> wait = f.WaitAsync(TimeSpan.FromSeconds(5), time);
        f.Signal();
        time.Advance(TimeSpan.FromSeconds(10));

        Assert.True(await wait.AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Throws<ArgumentNullException>(() => f.WaitAsync(TimeSpan.FromSeconds(1), null!));
    }

    [Fact]
    public void Timeline_StampsItsFencesWithItsClock_ACallersTimestampStillWins()
    {
        var time = new FakeTimeProvider();
        time.Advance(TimeSpan.FromMilliseconds(3));
        var timeline = new FenceTimeline("fake", timeProvider: time);
        FenceSource a = timeline.CreateFence(), b = timeline.CreateFence();

        a.Signal();
        time.Advance(TimeSpan.FromMilliseconds(2));
        b.SignalWithTimestamp(TimeSpan.FromTicks(42));

        Assert.Same(time, timeline.TimeProvider);
        Assert.Equal(FenceClock.GetNow(time) - TimeSpan.FromMilliseconds(2), a.Timestamp);
        Assert.Equal(TimeSpan.FromTicks(42), b.Timestamp);
    }

    [Fact]
    public async Task VirtualGpu_TimeProvider_IsVirtualTime_AndATimeoutFollowsTheEventLoop()
    {
        using var gpu = new Gpu(new GpuConfig { Mode = GpuTimeMode.Virtual });
        TimeProvider time = gpu.TimeProvider;
        var f = new FenceSource(FenceContext.Allocate(), 1);

        ValueTask<bool> wait = f.WaitAsync(TimeSpan.FromMilliseconds(2), time);
        gpu.RunFor(TimeSpan.FromMicroseconds(1999));
        bool beforeDue = wait.IsCompleted;
        gpu.RunFor(TimeSpan.FromMicroseconds(1));

        Assert.Equal(1_000_000_000, time.TimestampFrequency);
        Assert.Equal(gpu.Now, time.GetElapsedTime(0));
        Assert.False(beforeDue);
        Assert.False(await wait.AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public void VirtualGpu_Timer_ChangeAndDispose_AndPeriodic()
    {
        using var gpu = new Gpu(new GpuConfig { Mode = GpuTimeMode.Virtual });
        var fired = new List<TimeSpan>();
        ITimer periodic = gpu.TimeProvider.CreateTimer(_ => fired.Add(gpu.Now), null, TimeSpan.FromMicroseconds(10), TimeSpan.FromMicroseconds(10));
        ITimer cancelled = gpu.TimeProvider.CreateTimer(_ => fired.Add(TimeSpan.MinValue), null, TimeSpan.FromMicroseconds(5), Timeout.InfiniteTimeSpan);
        cancelled.Dispose();

        gpu.RunFor(TimeSpan.FromMicroseconds(35));
        periodic.Dispose();
        gpu.RunFor(TimeSpan.FromMicroseconds(100));

        Assert.Equal([TimeSpan.FromMicroseconds(10), TimeSpan.FromMicroseconds(20), TimeSpan.FromMicroseconds(30)], fired);
        Assert.False(cancelled.Change(TimeSpan.Zero, Timeout.InfiniteTimeSpan));
    }

    [Fact]
    public void ThreadsModeGpu_UsesTheSystemClock()
    {
        using var gpu = new Gpu(new GpuConfig { Mode = GpuTimeMode.Threads });
        Assert.Same(TimeProvider.System, gpu.TimeProvider);
    }

    [Fact]
    public async Task WaitAnyAndWaitAll_OnAFakeClock_TimeOutWithTheClock()
    {
        var time = new FakeTimeProvider();
        FenceSource a = new(FenceContext.Allocate(), 1), b = new(FenceContext.Allocate(), 1);

        ValueTask<int> any = Fence.WaitAnyAsync([a, b], TimeSpan.FromSeconds(2), time);
        ValueTask<bool> all = Fence.WaitAllAsync([a, b], TimeSpan.FromSeconds(3), time);
        time.Advance(TimeSpan.FromSeconds(1));
        bool anyEarly = any.IsCompleted;
        time.Advance(TimeSpan.FromSeconds(1));
        int index = await any.AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        a.Signal();
        bool allEarly = all.IsCompleted;
        time.Advance(TimeSpan.FromSeconds(1));

        Assert.False(anyEarly);
        Assert.Equal(-1, index);
        Assert.False(allEarly);
        Assert.False(await all.AsTask().WaitAsync(TimeSpan.FromSeconds(10))); // b never signalled within 3 s of fake time
        Assert.Throws<ArgumentNullException>(() => Fence.WaitAnyAsync([a], TimeSpan.FromSeconds(1), null!));
    }

    [Fact]
    public async Task SyncObjAndReservationWaits_OnTheVirtualGpusClock_FollowVirtualTime()
    {
        using var gpu = new Gpu(new GpuConfig { Mode = GpuTimeMode.Virtual });
        var syncobj = new SyncObj();
        var resv = new Reservation();
        resv.AddFence(new FenceSource(FenceContext.Allocate(), 1), FenceUsage.Write);

        ValueTask<SyncObjWaitResult> submit = SyncObj.WaitAsync([syncobj], [1], TimeSpan.FromMicroseconds(50), gpu.TimeProvider, SyncObjWaitOptions.WaitForSubmit);
        ValueTask<bool> busy = resv.WaitAsync(FenceUsage.Read, TimeSpan.FromMicroseconds(80), gpu.TimeProvider);
        gpu.RunFor(TimeSpan.FromMicroseconds(49));
        bool early = submit.IsCompleted || busy.IsCompleted;
        gpu.RunFor(TimeSpan.FromMicroseconds(40));

        Assert.False(early);
        Assert.Equal(new SyncObjWaitResult(false, -1), await submit.AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.False(await busy.AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(0, syncobj.SubmitWaiterCountForTesting());
    }
}
