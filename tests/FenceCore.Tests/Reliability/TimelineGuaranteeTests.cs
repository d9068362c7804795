using FenceCore.Uapi;

namespace FenceCore.Tests.Reliability;

/// <summary>
/// sw_sync and syncobj keep the kernel's guarantees (issue 11): an increment returns only after the points
/// it reached have signalled; one point is one fence; a syncobj waiter for submission captures the fence
/// submitted first, as <c>drm_syncobj_replace_fence</c> hands it over under the lock; WAIT_AVAILABLE on
/// its own watches for submission; a wait whose condition is met does not report cancellation.
/// </summary>
public class TimelineGuaranteeTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(10);

    private static Thread Start(Action action)
    {
        var t = new Thread(() => action()) { IsBackground = true };
        t.Start();
        return t;
    }

    private static void Eventually(Func<bool> condition, string what)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(sw.Elapsed < Long, $"timed out waiting for: {what}");
            Thread.Sleep(1);
        }
    }

    [Fact]
    public void SwSyncIncrement_WhileAnotherThreadDrains_ReturnsOnlyOnceItsPointHasSignalled()
    {
        using var timeline = new SwSyncTimeline("blocking");
        Fence p1 = timeline.CreateFence(1);
        Fence p2 = timeline.CreateFence(2);
        using var inCallback = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        p1.AddCallback(_ =>
        {
            inCallback.Set();
            release.Wait(Long);
        });

        Thread drainer = Start(() => timeline.Increment()); // signals point 1, blocks in its callback
        Assert.True(inCallback.Wait(Long));
        bool secondReturned = false;
        bool p2SignalledWhenReturned = false;
        Thread second = Start(() =>
        {
            timeline.Increment(); // reaches point 2 while the first thread still drains
            p2SignalledWhenReturned = p2.IsSignaled;
            Volatile.Write(ref secondReturned, true);
        });
        Eventually(() => timeline.Value == 2, "the second increment to move the value");
        Thread.Sleep(100);

        Assert.False(Volatile.Read(ref secondReturned)); // it waits for the drainer to signal point 2
        Assert.Same(p2, timeline.CreateFence(2));        // one point, one fence: not a new, born-signalled one
        Assert.False(p2.IsSignaled);                 // seqno 2 does not signal while seqno 1's callback runs

        release.Set();
        Assert.True(drainer.Join(Long) && second.Join(Long));
        Assert.True(p2SignalledWhenReturned);
    }

    [Fact]
    public void SwSyncIncrement_FromACallback_ReturnsEarlyAndItsPointsStillSignalInOrder()
    {
        using var timeline = new SwSyncTimeline("reentrant");
        Fence p1 = timeline.CreateFence(1);
        Fence p2 = timeline.CreateFence(2);
        bool p2SignalledInsideCallback = true;
        var order = new List<ulong>();
        p1.AddCallback(f =>
        {
            order.Add(f.Seqno);
            timeline.Increment(); // re-entrant: queues point 2 and returns; the outer drain signals it
            p2SignalledInsideCallback = p2.IsSignaled;
        });
        p2.AddCallback(f => order.Add(f.Seqno));

        timeline.Increment();

        Assert.False(p2SignalledInsideCallback);
        Assert.Equal([1ul, 2ul], order);
        Assert.True(p2.IsSignaled);
    }

    [Fact]
    public void SyncObjWaitForSubmit_CapturesTheFirstSubmittedFence_EvenWhenReplacedAtOnce()
    {
        for (int run = 0; run < 20; run++)
        {
            var syncobj = new SyncObj();
            var f1 = new FenceSource(FenceContext.Allocate(), 1);
            var f2 = new FenceSource(FenceContext.Allocate(), 1); // never signalled
            bool? result = null;
            Thread waiter = Start(() => result = SyncObj.Wait([syncobj], [0ul], Long, SyncObjWaitOptions.WaitForSubmit, out _));
            Eventually(() => syncobj.SubmitWaiterCountForTesting() == 1, "the waiter to register");

            syncobj.Replace(f1);
            syncobj.Replace(null);
            syncobj.Replace(f2);
            f1.Signal();

            Assert.True(waiter.Join(Long), $"run {run}: the wait did not end");
            Assert.True(result, $"run {run}: the wait lost f1, the fence submitted first");
            Assert.Equal(0, syncobj.SubmitWaiterCountForTesting());
        }
    }

    [Fact]
    public void SyncObjFindFenceWithTimeout_ReturnsTheFirstSubmittedFence_EvenWhenReplacedAtOnce()
    {
        for (int run = 0; run < 20; run++)
        {
            var syncobj = new SyncObj();
            var f1 = new FenceSource(FenceContext.Allocate(), 1);
            var f2 = new FenceSource(FenceContext.Allocate(), 1);
            Fence? found = null;
            Thread finder = Start(() => found = syncobj.FindFence(0, Long));
            Eventually(() => syncobj.SubmitWaiterCountForTesting() == 1, "the lookup to register");

            syncobj.Replace(f1);
            syncobj.Replace(null);
            syncobj.Replace(f2);

            Assert.True(finder.Join(Long));
            Assert.Same(f1, found);
        }
    }

    [Fact]
    public void SyncObjWaitAvailable_OnItsOwn_WatchesForSubmission()
    {
        var syncobj = new SyncObj();
        var f = new FenceSource(FenceContext.Allocate(), 1);
        bool? result = null;
        Thread waiter = Start(() => result = SyncObj.Wait([syncobj], [3ul], Long, SyncObjWaitOptions.WaitAvailable, out _));
        Eventually(() => syncobj.SubmitWaiterCountForTesting() == 1, "the waiter to register");

        syncobj.AddPoint(3, f);

        Assert.True(waiter.Join(Long));
        Assert.True(result);          // available: submitted ...
        Assert.False(f.IsSignaled); // ... not signalled
    }

    [Fact]
    public void SyncObjWait_ConditionMetBeforeTheCancellationIsSeen_ReportsSuccess()
    {
        var syncobj = new SyncObj();
        var f = new FenceSource(FenceContext.Allocate(), 1);
        syncobj.Replace(f);
        using var cts = new CancellationTokenSource();
        // Runs before the wait's own callback: when the waiter wakes on the cancellation, f is signalled.
        f.AddCallback(_ => cts.Cancel());
        bool? result = null;
        Exception? error = null;
        Thread waiter = Start(() =>
        {
            try
            {
                result = SyncObj.Wait([syncobj], [0ul], Long, SyncObjWaitOptions.WaitAny, out _, cts.Token);
            }
            catch (OperationCanceledException ex)
            {
                error = ex;
            }
        });
        Eventually(() => waiter.ThreadState.HasFlag(ThreadState.WaitSleepJoin), "the waiter to block");
        Thread.Sleep(20);

        f.Signal();

        Assert.True(waiter.Join(Long));
        Assert.Null(error);
        Assert.True(result);
    }
}

/// <summary><c>DMA_BUF_IOCTL_SYNC</c> waits in the kernel (<c>dma_buf_begin_cpu_access</c> →
/// <c>dma_resv_wait_timeout</c>); FenceCore's ioctl did not (issue 11).</summary>
public class DmaBufSyncIoctlTests
{
    [Fact]
    public void SyncStart_WaitsForTheWriter_AndEndDoesNotWait()
    {
        var buf = new DmaBuf();
        var files = new FileTable();
        int fd = files.Install(buf);
        var writer = new FenceSource(FenceContext.Allocate(), 1);
        buf.Reservation.AddFence(writer, FenceUsage.Write);
        int rc = int.MinValue;
        var t = new Thread(() => rc = files.DmaBufSync(fd, (ulong)DmaBufSync.Read));
        t.Start();

        Assert.False(t.Join(100)); // START for READ waits for the writer (before the fix it returned 0 at once)
        Assert.Equal(0, buf.CpuAccessDepth);
        writer.Signal();
        Assert.True(t.Join(TimeSpan.FromSeconds(10)));
        Assert.Equal(0, rc);
        Assert.Equal(1, buf.CpuAccessDepth);

        var reader = new FenceSource(FenceContext.Allocate(), 1);
        buf.Reservation.AddFence(reader, FenceUsage.Read);
        Assert.Equal(0, files.DmaBufSync(fd, (ulong)(DmaBufSync.Read | DmaBufSync.End))); // END never waits
        Assert.Equal(0, buf.CpuAccessDepth);
    }

    [Fact]
    public void SyncStart_InterruptedWait_IsEINTR_AndBeginsNothing()
    {
        var buf = new DmaBuf();
        buf.Reservation.AddFence(new FenceSource(FenceContext.Allocate(), 1), FenceUsage.Kernel); // a move that never ends
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
        var files = new FileTable();

        Assert.Equal(-Errno.EINTR, files.DmaBufSync(files.Install(buf), (ulong)DmaBufSync.Read, cts.Token));
        Assert.Equal(0, buf.CpuAccessDepth);
    }
}
