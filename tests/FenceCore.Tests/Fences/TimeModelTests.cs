using FenceCore.Uapi;
using FenceCore.VirtualGpu;
using Microsoft.Extensions.Time.Testing;

namespace FenceCore.Tests.Fences;

/// <summary>
/// Issue 13, one model of time: points in time on the idiomatic surface are <see cref="TimeSpan"/>s since the
/// clock's origin, checked at the boundary; the uAPI's nanoseconds pass through the library unrounded.
/// </summary>
public sealed class TimeModelTests
{
    private static FenceSource Pending() => new(FenceContext.Allocate(), 1);

    [Theory]
    [InlineData(0L)]
    [InlineData(1L)]
    [InlineData(123_456_789L)]
    [InlineData(long.MaxValue / 100)] // the last tick whose ns fit the clock
    public void ACallersTimestamp_RoundTripsExactly(long ticks)
    {
        FenceSource f = Pending();

        Assert.True(f.SignalWithTimestamp(TimeSpan.FromTicks(ticks)));

        Assert.Equal(TimeSpan.FromTicks(ticks), f.Timestamp);
        Assert.True(f.TryGetTimestamp(out TimeSpan read));
        Assert.Equal(TimeSpan.FromTicks(ticks), read);
    }

    [Fact]
    public void TimesBeforeTheOriginOrPastTheClocksRange_AreRejected_AndChangeNothing()
    {
        FenceSource f = Pending();
        TimeSpan beyond = TimeSpan.FromTicks((long.MaxValue / 100) + 1);

        var early = Assert.Throws<ArgumentOutOfRangeException>(() => f.SignalWithTimestamp(TimeSpan.FromTicks(-1)));
        var late = Assert.Throws<ArgumentOutOfRangeException>(() => f.SignalWithTimestamp(-Errno.EIO, beyond));
        var deadline = Assert.Throws<ArgumentOutOfRangeException>(() => f.SetDeadline(TimeSpan.FromTicks(-5)));
        var stub = Assert.Throws<ArgumentOutOfRangeException>(() => Fence.CreateSignaledStub(TimeSpan.MaxValue));
        var resv = Assert.Throws<ArgumentOutOfRangeException>(() => new Reservation().SetDeadline(FenceUsage.Read, TimeSpan.MinValue));

        Assert.Equal("timestamp", early.ParamName);
        Assert.Equal("timestamp", late.ParamName);
        Assert.Equal("deadline", deadline.ParamName);
        Assert.Equal("timestamp", stub.ParamName);
        Assert.Equal("deadline", resv.ParamName);
        Assert.Contains("since the clock's origin", early.Message, StringComparison.Ordinal);
        Assert.False(f.IsSignaled);
        Assert.Null(f.Deadline);
        Assert.Equal(0, f.Error);
        Assert.True(f.SignalWithTimestamp(TimeSpan.FromTicks(7))); // still signallable, once
    }

    [Fact]
    public void ADeadlineFromTheUapi_ReachesAnArraysMembersAndSwSyncUnrounded()
    {
        using var timeline = new SwSyncTimeline();
        Fence p1 = timeline.CreateFence(1), p2 = timeline.CreateFence(2);
        var files = new FileTable();
        int fd = files.Install(new SyncFile(new FenceArray([p1, p2], FenceContext.Allocate(), 1, signalOnAny: false)));

        Assert.Equal(0, files.SyncSetDeadline(fd, 4_242, 0)); // 42.42 ticks

        Assert.Equal(4_242, p1.DeadlineNs); // the exact ns, through the array's forwarding
        Assert.Equal(4_242, p2.DeadlineNs);
        Assert.True(timeline.TryGetDeadlineNs(p1, out long ns));
        Assert.Equal(4_242, ns);
        Assert.True(timeline.TryGetDeadline(p1, out TimeSpan idiomatic));
        Assert.Equal(TimeSpan.FromTicks(42), idiomatic); // the same point, truncated to the tick
        Assert.Equal(TimeSpan.FromTicks(42), p2.Deadline);
    }

    [Fact]
    public void TheClocks_AreTimeSpansSinceTheirOrigin()
    {
        var fake = new FakeTimeProvider();
        TimeSpan before = FenceClock.GetNow(fake);
        fake.Advance(TimeSpan.FromMilliseconds(2));
        TimeSpan monotonic1 = FenceClock.Now;
        FenceSource f = Pending();
        f.Signal();
        TimeSpan monotonic2 = FenceClock.Now;

        Assert.Equal(TimeSpan.FromMilliseconds(2), FenceClock.GetNow(fake) - before);
        Assert.InRange(f.Timestamp, monotonic1, monotonic2);
        Assert.Throws<ArgumentNullException>(() => FenceClock.GetNow(null!));
    }

    [Fact]
    public void TheVirtualGpusTimes_AreTimeSpans_AndBadTimesNameTheRule()
    {
        using var gpu = new Gpu(new GpuConfig { Mode = GpuTimeMode.Virtual });
        GpuClient client = gpu.CreateClient("c");
        gpu.RunFor(TimeSpan.FromMicroseconds(3));
        GpuJob job = client.Submit(new JobDescription { Engine = EngineKind.Graphics, Duration = TimeSpan.FromMicroseconds(10) });
        GpuJob hung = client.Submit(new JobDescription { Engine = EngineKind.Compute, Hang = true });
        TimeSpan? startBefore = job.StartTime;
        var events = new List<GpuEvent>();
        using IDisposable subscription = gpu.Subscribe(events.Add);

        gpu.RunUntil(TimeSpan.FromMicroseconds(100));

        Assert.Null(startBefore); // not started at submit (null, not a -1 sentinel)
        Assert.Equal(TimeSpan.FromMicroseconds(3), job.SubmitTime);
        Assert.NotNull(job.StartTime);
        Assert.Equal(TimeSpan.FromMicroseconds(10), job.EndTime - job.StartTime);
        Assert.Equal(job.EndTime, job.Finished.Timestamp);
        Assert.Null(hung.EndTime); // a hung job never ends on its own
        Assert.Equal(TimeSpan.FromMicroseconds(100), gpu.Now);
        Assert.Contains(events, e => e.Kind == GpuEventKind.JobCompleted && e.Job == job && e.Time == job.EndTime);

        TimeSpan now = gpu.Now;
        var back = Assert.Throws<ArgumentOutOfRangeException>(() => gpu.RunFor(TimeSpan.FromTicks(-1)));
        var never = Assert.Throws<ArgumentOutOfRangeException>(() => gpu.Schedule(TimeSpan.FromTicks(-1), () => { }));
        var tooLong = Assert.Throws<ArgumentOutOfRangeException>(() => new JobDescription { Duration = TimeSpan.MaxValue });
        Assert.Equal("duration", back.ParamName);
        Assert.Contains("A duration must not be negative", back.Message, StringComparison.Ordinal);
        Assert.Equal("time", never.ParamName);
        Assert.Contains("36 years", tooLong.Message, StringComparison.Ordinal);
        Assert.Equal(now, gpu.Now);

        var made = new GpuEvent(GpuEventKind.JobSubmitted, TimeSpan.FromTicks(5), null, null, 0);
        Assert.Equal(TimeSpan.FromTicks(5), made.Time);
    }
    [Fact]
    public void AJobQueuedBehindAHungJob_HasNoStartTime_NotTheStallMark()
    {
        using var gpu = new Gpu(new GpuConfig { Mode = GpuTimeMode.Virtual });
        GpuClient client = gpu.CreateClient("c");
        GpuJob hung = client.Submit(new JobDescription { Engine = EngineKind.Graphics, Hang = true });
        GpuJob behind = gpu.CreateClient("d").Submit(new JobDescription { Engine = EngineKind.Graphics, Duration = TimeSpan.FromMicroseconds(5) });

        gpu.RunUntil(TimeSpan.FromMicroseconds(50)); // both on the ring; the engine timeout has not fired yet

        Assert.NotNull(hung.StartTime);
        Assert.Null(hung.EndTime);
        Assert.Null(behind.StartTime); // was about 73 years: the ring's stall mark
        Assert.Null(behind.EndTime);
    }

    [Fact]
    public void TimesPastTheGpuClocksRange_AreRejected()
    {
        using var gpu = new Gpu(new GpuConfig { Mode = GpuTimeMode.Virtual });
        TimeSpan forty = TimeSpan.FromDays(365 * 40);

        var until = Assert.Throws<ArgumentOutOfRangeException>(() => gpu.RunUntil(forty)); // was accepted: later jobs never completed
        var at = Assert.Throws<ArgumentOutOfRangeException>(() => gpu.Schedule(forty, () => { }));
        var idle = Assert.Throws<ArgumentOutOfRangeException>(() => gpu.RunUntilIdle(forty));
        var duration = Assert.Throws<ArgumentOutOfRangeException>(() => new JobDescription { Duration = forty });

        Assert.Equal("time", until.ParamName);
        Assert.Equal("time", at.ParamName);
        Assert.Equal("limit", idle.ParamName);
        Assert.Contains("36 years", until.Message, StringComparison.Ordinal);
        Assert.Contains("36 years", duration.Message, StringComparison.Ordinal);
        Assert.Equal(TimeSpan.Zero, gpu.Now);

        var negative = Assert.Throws<ArgumentOutOfRangeException>(() => gpu.CreateClient("c").Submit(new JobDescription { Duration = TimeSpan.FromTicks(-5) }));
        Assert.Contains("JobDescription.Duration", negative.Message, StringComparison.Ordinal);
        Assert.Equal(TimeSpan.FromTicks(-5), negative.ActualValue);
    }

    [Fact]
    public void AUapiDeadlinePastTwoToTheSixtyThree_IsTheOrigin_NeverANegativeTimeSpan()
    {
        var f = new TestFences.HookedFence(FenceContext.Allocate(), 1);
        var files = new FileTable();
        int fd = files.Install(new SyncFile(f));

        Assert.Equal(0, files.SyncSetDeadline(fd, ulong.MaxValue - 1000, 0)); // the kernel's negative ktime: already passed

        Assert.Equal(TimeSpan.Zero, f.Deadline); // was negative
        Assert.Equal([TimeSpan.Zero], f.DeadlinesSeen);
    }
}
