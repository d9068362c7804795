using Microsoft.Extensions.Time.Testing;

namespace FenceCore.Tests.Fences;

/// <summary>
/// Issue 13, one model of time: every blocking wait that takes a timeout also takes the clock it runs on.
/// Each case blocks a thread on a <see cref="FakeTimeProvider"/> with a 5 s timeout, and checks that the
/// wait is still blocked after 4 s of fake time, times out at 5 s with the wait's own timeout result, and
/// that a caller's cancellation is reported as the caller's, not as the timer's.
/// </summary>
public sealed class BlockingWaitsOnClockTests
{
    private static readonly TimeSpan Timeout5s = TimeSpan.FromSeconds(5);

    /// <summary>One blocking wait under test: how to start it, how to satisfy it, and what it returns on timeout.</summary>
    /// <param name="Name">For the test's display name.</param>
    /// <param name="Start">Runs the wait with the timeout, clock and token; returns its result as text.</param>
    /// <param name="Satisfy">Makes the wait succeed.</param>
    /// <param name="TimedOut">The wait's result, as text, when the timeout passed.</param>
    /// <param name="Satisfied">The wait's result, as text, when it was satisfied.</param>
    public sealed record WaitCase(string Name, Func<TimeSpan, TimeProvider, CancellationToken, string> Start, Action Satisfy, string TimedOut, string Satisfied)
    {
        public override string ToString() => Name;
    }

    /// <summary>A fake clock that counts the timers created on it, so a test knows the wait has armed its timeout.</summary>
    private sealed class CountingClock : FakeTimeProvider
    {
        private int _timers;

        public int Timers => Volatile.Read(ref _timers);

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            Interlocked.Increment(ref _timers);
            return base.CreateTimer(callback, state, dueTime, period);
        }
    }

    private static FenceSource Pending() => new(FenceContext.Allocate(), 1);

    public static TheoryData<WaitCase> Cases()
    {
        var data = new TheoryData<WaitCase>();

        FenceSource a = Pending(), b = Pending();
        data.Add(new WaitCase("Fence.WaitAny", (t, c, k) => Fence.WaitAny([a, b], t, c, k).ToString(System.Globalization.CultureInfo.InvariantCulture), () => b.Signal(), "-1", "1"));

        FenceSource c1 = Pending(), c2 = Pending();
        data.Add(new WaitCase("Fence.WaitAll", (t, c, k) => Fence.WaitAll([c1, c2], t, c, k).ToString(), () => { c1.Signal(); c2.Signal(); }, "False", "True"));

        var resv = new Reservation();
        FenceSource writer = Pending();
        resv.AddFence(writer, FenceUsage.Write);
        data.Add(new WaitCase("Reservation.Wait", (t, c, k) => resv.Wait(FenceUsage.Read, t, c, k).ToString(), () => writer.Signal(), "False", "True"));

        FenceSource filed = Pending();
        var file = new SyncFile(filed);
        data.Add(new WaitCase("SyncFile.Wait", (t, c, k) => file.Wait(t, c, k).ToString(), () => filed.Signal(), "False", "True"));

        var binary = new SyncObj();
        FenceSource payload = Pending();
        binary.Replace(payload);
        data.Add(new WaitCase("SyncObj.Wait (binary)", (t, c, k) => Format(SyncObj.Wait([binary], t, c, SyncObjWaitOptions.WaitAll, out int first, k), first),
            () => payload.Signal(), "False -1", "True -1")); // wait-all: the index is the one complete at the start

        var timeline = new SyncObj();
        FenceSource point3 = Pending();
        data.Add(new WaitCase("SyncObj.Wait (timeline, wait-for-submit)", (t, c, k) => Format(SyncObj.Wait([timeline], [3ul], t, c, SyncObjWaitOptions.WaitForSubmit, out int first, k), first),
            () => { _ = timeline.AddPoint(3, point3); point3.Signal(); }, "False -1", "True 0"));

        var unsubmitted = new SyncObj();
        FenceSource point2 = Pending();
        data.Add(new WaitCase("SyncObj.FindFence", (t, c, k) =>
        {
            try
            {
                return unsubmitted.FindFence(2, t, c, k) is FenceChain { ContainedFence: var inside } && ReferenceEquals(inside, point2) ? "found" : "another fence";
            }
            catch (FenceErrnoException ex)
            {
                return ex.Errno.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
        }, () => _ = unsubmitted.AddPoint(2, point2), (-Errno.ETIME).ToString(System.Globalization.CultureInfo.InvariantCulture), "found"));

        var dmaBuf = new DmaBuf();
        FenceSource dmaWriter = Pending();
        dmaBuf.Reservation.AddFence(dmaWriter, FenceUsage.Write);
        data.Add(new WaitCase("DmaBuf.BeginCpuAccess", (t, c, k) => dmaBuf.BeginCpuAccess(DmaBufSync.Read, t, c, k).ToString(), () => dmaWriter.Signal(), "False", "True"));

        return data;
    }

    private static string Format(bool met, int first) => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{met} {first}");

    private static Task<string> StartOnThread(WaitCase wait, TimeProvider clock, CancellationToken token = default) =>
        Task.Factory.StartNew(() => wait.Start(Timeout5s, clock, token), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    private static void UntilArmed(CountingClock clock)
    {
        Assert.True(SpinWait.SpinUntil(() => clock.Timers > 0, TimeSpan.FromSeconds(10)), "the wait never armed its timeout on the given clock");
        Thread.Sleep(20); // into the block (the timeout counts from the arming, so this only makes the test meaningful)
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TimesOutWhenTheGivenClockPassesTheTimeout_NotBefore(WaitCase wait)
    {
        var clock = new CountingClock();
        Task<string> running = StartOnThread(wait, clock);
        UntilArmed(clock);

        clock.Advance(TimeSpan.FromSeconds(4));
        Assert.False(running.Wait(TimeSpan.FromMilliseconds(200)), "returned before the fake clock reached the timeout");
        clock.Advance(TimeSpan.FromSeconds(1));

        Assert.True(running.Wait(TimeSpan.FromSeconds(10)), "did not return once the fake clock passed the timeout");
        Assert.Equal(wait.TimedOut, running.Result);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ReturnsTheWaitsSuccess_WhenSatisfiedBeforeTheTimeout(WaitCase wait)
    {
        var clock = new CountingClock();
        Task<string> running = StartOnThread(wait, clock);
        UntilArmed(clock);

        wait.Satisfy();

        Assert.True(running.Wait(TimeSpan.FromSeconds(10)));
        Assert.Equal(wait.Satisfied, running.Result);
        clock.Advance(TimeSpan.FromSeconds(10)); // the timer was disposed with the wait: nothing fires
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TheCallersCancellation_IsReportedWithTheCallersToken(WaitCase wait)
    {
        var clock = new CountingClock();
        using var cts = new CancellationTokenSource();
        Task<string> running = StartOnThread(wait, clock, cts.Token);
        UntilArmed(clock);

        cts.Cancel();

        var ex = Assert.ThrowsAny<AggregateException>(() => running.Wait(TimeSpan.FromSeconds(10)));
        var cancelled = Assert.IsAssignableFrom<OperationCanceledException>(ex.InnerException);
        Assert.Equal(cts.Token, cancelled.CancellationToken);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ZeroTimeouts_AndTheSystemClock_ArmNoTimer(WaitCase wait)
    {
        var clock = new CountingClock();

        Assert.Equal(wait.TimedOut, wait.Start(TimeSpan.Zero, clock, default)); // a poll reads no clock
        Assert.Equal(wait.TimedOut, wait.Start(TimeSpan.FromMilliseconds(1), TimeProvider.System, default)); // the wait's own clock

        Assert.Equal(0, clock.Timers);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void BadArguments_NameTheRule_BeforeAnythingIsArmed(WaitCase wait)
    {
        var clock = new CountingClock();

        var nullClock = Assert.Throws<ArgumentNullException>(() => wait.Start(Timeout5s, null!, default));
        var negative = Assert.Throws<ArgumentOutOfRangeException>(() => wait.Start(TimeSpan.FromSeconds(-2), clock, default));
        var tooLong = Assert.Throws<ArgumentOutOfRangeException>(() => wait.Start(TimeSpan.FromDays(30), clock, default));

        Assert.Equal("timeProvider", nullClock.ParamName);
        Assert.Equal("timeout", negative.ParamName);
        Assert.Equal("timeout", tooLong.ParamName);
        Assert.Equal(0, clock.Timers);
    }
}
