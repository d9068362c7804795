namespace FenceCore.Tests.Fences;

/// <summary>The asynchronous conveniences and the struct registration of issue 13.</summary>
public class AsyncConvenienceTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(10);

    private static FenceSource Pending() => new(FenceContext.Allocate(), 1);

    [Fact]
    public async Task WaitAnyAsync_ReturnsTheSignalledIndex_WithoutBlocking()
    {
        FenceSource a = Pending(), b = Pending(), c = Pending();
        ValueTask<int> wait = Fence.WaitAnyAsync([a, b, c], Long);
        bool pendingBefore = !wait.IsCompleted;
        b.Signal();

        Assert.True(pendingBefore);
        Assert.Equal(1, await wait);
        Assert.Equal(0, a.LinkedCallbackCellsForTesting()); // its wake-up callbacks are removed
        Assert.Equal(0, c.LinkedCallbackCellsForTesting());
    }

    [Fact]
    public async Task WaitAnyAsync_AlreadySignalled_CompletesSynchronously_WithTheLowestIndex()
    {
        FenceSource a = Pending(), b = Pending(), c = Pending();
        b.Signal();
        c.Signal();

        ValueTask<int> wait = Fence.WaitAnyAsync([a, b, c]);

        Assert.True(wait.IsCompletedSuccessfully);
        Assert.Equal(1, await wait);
    }

    [Fact]
    public async Task WaitAnyAsync_TimesOut_WithMinusOne_AndZeroTimeoutNeverWaits()
    {
        FenceSource a = Pending();
        ValueTask<int> poll = Fence.WaitAnyAsync([a], TimeSpan.Zero);

        Assert.True(poll.IsCompleted);
        Assert.Equal(-1, await poll);
        Assert.Equal(-1, await Fence.WaitAnyAsync([a], TimeSpan.FromMilliseconds(20)));
        Assert.Equal(0, a.LinkedCallbackCellsForTesting());
    }

    [Fact]
    public async Task WaitAnyAsync_Cancelled_Throws_AndLeavesNoCallback()
    {
        FenceSource a = Pending();
        using var cts = new CancellationTokenSource();
        ValueTask<int> wait = Fence.WaitAnyAsync([a], cts.Token);
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await wait);
        Assert.Equal(0, a.LinkedCallbackCellsForTesting());
    }

    [Fact]
    public void WaitAnyAsync_BadInput_ThrowsBeforeWaiting_NamingTheRule()
    {
        FenceSource a = Pending();
        Assert.Throws<ArgumentNullException>(() => Fence.WaitAnyAsync(null!, Long));
        var empty = Assert.Throws<ArgumentException>(() => Fence.WaitAnyAsync([], Long));
        Assert.Contains("At least one fence", empty.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentNullException>(() => Fence.WaitAnyAsync([a, null!], Long));
        Assert.Throws<ArgumentOutOfRangeException>(() => Fence.WaitAllAsync([a], TimeSpan.FromSeconds(-2)));
        Assert.Equal(0, a.LinkedCallbackCellsForTesting()); // nothing was registered
    }

    [Fact]
    public async Task WaitAllAsync_EndsWhenEveryFenceHasSignalled_OrTimesOut()
    {
        FenceSource a = Pending(), b = Pending();
        ValueTask<bool> all = Fence.WaitAllAsync([a, b], Long);
        a.Signal();
        bool afterOne = all.IsCompleted;
        b.Signal();

        Assert.False(afterOne);
        Assert.True(await all);
        Assert.False(await Fence.WaitAllAsync([a, Pending()], TimeSpan.FromMilliseconds(20)));
        await Fence.WaitAllAsync([a, b]).AsTask().WaitAsync(Long);
    }

    [Fact]
    public async Task ReservationWaitAsync_WithoutTimeout_WaitsForTheUsageLevel()
    {
        var resv = new Reservation();
        FenceSource write = Pending(), read = Pending();
        resv.AddFence(write, FenceUsage.Write);
        resv.AddFence(read, FenceUsage.Read);

        ValueTask forWriters = resv.WaitAsync(FenceUsage.Write);
        ValueTask forReaders = resv.WaitAsync(FenceUsage.Read);
        write.Signal();
        await forWriters.AsTask().WaitAsync(Long);
        bool readersDone = forReaders.IsCompleted;
        read.Signal();
        await forReaders.AsTask().WaitAsync(Long);

        Assert.False(readersDone);
        Assert.True(resv.WaitAsync(FenceUsage.Bookkeep).IsCompletedSuccessfully);
    }

    [Fact]
    public async Task SyncObjWaitAsync_WaitsForSubmitThenSignal_LikeTheBlockingWait()
    {
        var timeline = new SyncObj();
        var other = new SyncObj();
        FenceSource point2 = Pending();

        ValueTask<SyncObjWaitResult> wait = SyncObj.WaitAsync([other, timeline], [0, 2], Long, SyncObjWaitOptions.WaitForSubmit);
        bool beforeSubmit = wait.IsCompleted;
        _ = timeline.AddPoint(2, point2);
        bool beforeSignal = wait.IsCompleted;
        point2.Signal();
        SyncObjWaitResult result = await wait.AsTask().WaitAsync(Long);

        Assert.False(beforeSubmit);
        Assert.False(beforeSignal);
        Assert.Equal(new SyncObjWaitResult(true, 1), result);
        Assert.Equal(0, timeline.SubmitWaiterCountForTesting());
        Assert.Equal(0, other.SubmitWaiterCountForTesting());
    }

    [Fact]
    public async Task SyncObjWaitAsync_TimesOut_AndKeepsTheKernelsErrors()
    {
        var s = new SyncObj();
        _ = s.AddPoint(1, Pending());

        SyncObjWaitResult timedOut = await SyncObj.WaitAsync([s], [1], TimeSpan.FromMilliseconds(20), SyncObjWaitOptions.WaitAll);
        var missing = Assert.Throws<FenceErrnoException>(() => SyncObj.WaitAsync([s], [5], Long, SyncObjWaitOptions.WaitAny));
        var unknown = Assert.Throws<FenceErrnoException>(() => SyncObj.WaitAsync([s], [1], Long, (SyncObjWaitOptions)0x40));
        var nullHandle = Assert.Throws<FenceErrnoException>(() => SyncObj.WaitAsync([null], [1], Long, SyncObjWaitOptions.WaitAny));

        Assert.Equal(new SyncObjWaitResult(false, -1), timedOut);
        Assert.Equal(-Errno.EINVAL, missing.Errno);
        Assert.Equal(-Errno.EINVAL, unknown.Errno);
        Assert.Equal(-Errno.ENOENT, nullHandle.Errno);
    }

    [Fact]
    public void Registration_RunsWithItsState_AndDisposeRemovesIt()
    {
        FenceSource f = Pending();
        var seen = new List<(Fence, object?)>();
        FenceCallbackRegistration kept = f.AddCallback(static (fence, s) => ((List<(Fence, object?)>)s!).Add((fence, s)), seen);
        int removedRuns = 0;
        FenceCallbackRegistration removed = f.AddCallback((_, _) => removedRuns++, null);

        removed.Dispose();
        bool second = removed.Unregister();
        f.Signal();

        Assert.Same(f, kept.Fence);
        Assert.False(second);
        Assert.Equal(0, removedRuns);
        Assert.Equal([(f, (object?)seen)], seen);
        Assert.False(kept.Unregister()); // it ran
        Assert.NotEqual(kept, removed);
    }

    [Fact]
    public void Registration_OnASignalledFence_RunsAtOnce_AsACancelledTokenDoes()
    {
        FenceSource f = Pending();
        f.Signal();
        int runs = 0;

        FenceCallbackRegistration r = f.AddCallback((_, _) => runs++, null);

        Assert.Equal(1, runs);
        Assert.Equal(default, r);
        Assert.Null(r.Fence);
        Assert.False(r.Unregister());
        Assert.Throws<ArgumentNullException>(() => f.AddCallback(null!, null));
    }
}
