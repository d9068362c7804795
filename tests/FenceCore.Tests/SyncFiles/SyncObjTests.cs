namespace FenceCore.Tests.SyncFiles;

/// <summary>drm_syncobj: binary and timeline semantics, waits, transfer, and the ioctls' bad input.</summary>
public class SyncObjTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(10);

    private static FenceSource Pending() => new(FenceContext.Allocate(), 1);

    private static SyncObj Timeline(params Fence[] pointFences)
    {
        var s = new SyncObj();
        for (int i = 0; i < pointFences.Length; i++)
        {
            s.AddPoint((ulong)i + 1, pointFences[i]);
        }

        return s;
    }

    private static FenceErrnoException Errno(Action action) => Assert.Throws<FenceErrnoException>(action);

    // A dedicated thread, not the thread pool: other tests may block pool threads, and a starved pool
    // could delay the action past the 5 s wait-for-submit limit.
    private static void SoonOnAnotherThread(Action action) =>
        new Thread(() =>
        {
            Thread.Sleep(30);
            action();
        })
        { IsBackground = true }.Start();

    // ---------------------------------------------------------------------------------------------
    // Binary

    [Fact]
    public void Create_EmptyHasNoFenceAndSignaledHasASignalledStub()
    {
        var empty = new SyncObj();
        var signaled = new SyncObj(signaled: true);

        Assert.Null(empty.Fence);
        Assert.True(signaled.Fence!.IsSignaled);
    }

    [Fact]
    public void Replace_InstallsTheFence()
    {
        var s = new SyncObj();
        var f = Pending();

        s.Replace(f);

        Assert.Same(f, s.FindFence(0));
    }

    [Fact]
    public void Reset_LeavesNothingSubmitted()
    {
        var s = new SyncObj();
        s.Replace(Pending());

        s.Reset();

        Assert.Null(s.Fence);
        Assert.Equal(-FenceCore.Errno.EINVAL, Errno(() => s.FindFence(0)).Errno);
    }

    [Fact]
    public void Signal_InstallsANewSignalledStub()
    {
        var s = new SyncObj();
        var f = Pending();
        s.Replace(f);

        s.Signal();

        Assert.NotSame(f, s.Fence);
        Assert.True(s.Fence!.IsSignaled);
        Assert.False(f.IsSignaled);
    }

    [Fact]
    public void ExportSyncFile_IsASnapshot()
    {
        var s = new SyncObj();
        var f = Pending();
        s.Replace(f);

        SyncFile file = s.ExportSyncFile();
        s.Replace(Pending());

        Assert.Same(f, file.Fence);
    }

    [Fact]
    public void ExportSyncFile_OfAnEmptySyncobjIsEinval() =>
        Assert.Equal(-FenceCore.Errno.EINVAL, Errno(() => new SyncObj().ExportSyncFile()).Errno);

    [Fact]
    public void ImportSyncFile_PointZeroReplacesTheFence()
    {
        var s = new SyncObj();
        var f = Pending();

        s.ImportSyncFile(new SyncFile(f));

        Assert.Same(f, s.Fence);
    }

    [Fact]
    public void ImportSyncFile_PointAddsATimelinePoint()
    {
        var s = new SyncObj();
        var f = Pending();

        s.ImportSyncFile(new SyncFile(f), point: 4);

        var head = Assert.IsType<FenceChain>(s.Fence);
        Assert.Equal((4ul, (Fence)f), (head.Seqno, head.ContainedFence));
    }

    [Fact]
    public void ImportSyncFile_NotASyncFileIsEinvalAndChangesNothing()
    {
        var s = new SyncObj();
        var f = Pending();
        s.Replace(f);

        Assert.Throws<ArgumentNullException>(() => s.ImportSyncFile(null!)); // was FenceErrnoException(-EINVAL)
        var files = new FenceCore.Uapi.FileTable();
        var drm = new FenceCore.Uapi.DrmFile(files);
        Assert.Equal(0, drm.GetHandle(s, out uint h));
        var import = new FenceCore.Uapi.DrmSyncobjHandle { Handle = h, Fd = files.CreateEventFd(), Flags = FenceCore.Uapi.DrmSyncobjFlags.ImportSyncFile };

        Assert.Equal(-FenceCore.Errno.EINVAL, drm.SyncobjFdToHandle(ref import)); // the uAPI keeps the kernel's errno
        Assert.Same(f, s.Fence);
    }

    [Fact]
    public void BinaryWait_CapturesTheFenceCurrentAtTheStart()
    {
        var s = new SyncObj();
        var f = Pending();
        s.Replace(f);
        SoonOnAnotherThread(() =>
        {
            s.Replace(Pending()); // a later submission does not change what the running wait waits for
            f.Signal();
        });

        bool done = SyncObj.Wait([s], Long, SyncObjWaitOptions.WaitAny, out int first);

        Assert.True(done);
        Assert.Equal(0, first);
    }

    [Fact]
    public void BinaryWait_WaitAvailableIsEinval() =>
        Assert.Equal(-FenceCore.Errno.EINVAL,
            Errno(() => SyncObj.Wait([new SyncObj(signaled: true)], TimeSpan.Zero, SyncObjWaitOptions.WaitAvailable, out _)).Errno);

    [Fact]
    public void BinaryWait_NullFenceWithoutWaitForSubmitIsEinval() =>
        Assert.Equal(-FenceCore.Errno.EINVAL, Errno(() => SyncObj.Wait([new SyncObj()], TimeSpan.Zero, SyncObjWaitOptions.WaitAny, out _)).Errno);

    // ---------------------------------------------------------------------------------------------
    // Timeline

    [Fact]
    public void AddPoint_WrapsTheFenceInAChainNodeOverTheOldHead()
    {
        var s = Timeline(Pending());
        var old = s.Fence;
        var f = Pending();

        FenceChain head = s.AddPoint(2, f);

        Assert.Same(head, s.Fence);
        Assert.Same(old, head.Previous);
        Assert.Equal((old!.Context, 1ul), (head.Context, head.PreviousSeqno));
    }

    [Fact]
    public void AddPoint_FlattensAChainIntoItsLeaves()
    {
        Fence a = Pending(), b = Pending();
        var chain = new FenceChain(new FenceChain(null, a, 1), b, 2);
        var s = new SyncObj();

        FenceChain head = s.AddPoint(1, chain);

        Assert.IsType<FenceArray>(head.ContainedFence);
    }

    [Fact]
    public void AddPoint_PointZeroIsRejected() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new SyncObj().AddPoint(0, Pending()));

    [Fact]
    public void AddPoint_ConcurrentAddersLoseNoPoint()
    {
        var s = new SyncObj();
        const int perThread = 500;

        Parallel.For(0, 4, t =>
        {
            for (int i = 0; i < perThread; i++)
            {
                s.AddPoint((ulong)((t * perThread) + i + 1), Pending());
            }
        });

        int nodes = 0;
        foreach (Fence _ in FenceChain.ForEach(s.Fence))
        {
            nodes++;
        }

        Assert.Equal(4 * perThread, nodes);
    }

    [Fact]
    public void FindFence_ReturnsTheNodeThatSignalsThePoint()
    {
        var s = Timeline(Pending(), Pending(), Pending());

        Fence found = s.FindFence(2);

        Assert.Equal(2ul, found.Seqno);
    }

    [Fact]
    public void FindFence_SignalledPointGivesTheStub()
    {
        var f1 = Pending();
        var s = Timeline(f1, Pending());
        f1.Signal();

        Fence found = s.FindFence(1);

        Assert.Same(Fence.Stub, found);
    }

    [Fact]
    public void FindFence_FuturePointIsEinval()
    {
        var s = Timeline(Pending());

        var ex = Errno(() => s.FindFence(2));

        Assert.Equal(-FenceCore.Errno.EINVAL, ex.Errno);
        Assert.Contains("point 2", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FindFence_PointOnABinaryFenceIsEinval()
    {
        var s = new SyncObj();
        s.Replace(Pending());

        Assert.Equal(-FenceCore.Errno.EINVAL, Errno(() => s.FindFence(1)).Errno);
    }

    [Fact]
    public void FindFence_WaitingForSubmitTimesOutWithEtime()
    {
        var s = Timeline(Pending());

        var ex = Errno(() => s.FindFence(5, TimeSpan.FromMilliseconds(20)));

        Assert.Equal(-FenceCore.Errno.ETIME, ex.Errno);
    }

    [Fact]
    public void FindFence_WaitingForSubmitReturnsOnceThePointIsAdded()
    {
        var s = Timeline(Pending());
        var f = Pending();
        SoonOnAnotherThread(() => s.AddPoint(5, f));

        Fence found = s.FindFence(5, Long);

        Assert.Same(f, FenceChain.Contained(found));
    }

    /// <summary>The reported pitfall: "a later signal is not a safe substitute for the producer of every
    /// earlier value". Waiting for point 1 must end when point 1's fence signals, although point 2's
    /// producer never signals.</summary>
    [Fact]
    public void Pitfall_WaitForEarlierPointDoesNotDependOnTheLaterPointsProducer()
    {
        FenceSource f1 = Pending(), neverSignalled = Pending();
        var s = Timeline(f1, neverSignalled);
        SoonOnAnotherThread(() => f1.Signal());

        bool done = SyncObj.Wait([s], [1ul], Long, SyncObjWaitOptions.WaitAny, out _);

        Assert.True(done);
        Assert.False(neverSignalled.IsSignaled);
    }

    [Fact]
    public void Pitfall_HostWaitOnTheFoundFenceOfAnEarlierPointEndsWithItsProducer()
    {
        FenceSource f1 = Pending(), neverSignalled = Pending();
        var s = Timeline(f1, neverSignalled);
        Fence point1 = s.FindFence(1);
        SoonOnAnotherThread(() => f1.Signal());

        bool done = point1.Wait(Long);

        Assert.True(done);
    }

    [Fact]
    public void Query_IsMonotonicWhenPointsSignalOutOfOrder()
    {
        var fences = Enumerable.Range(0, 5).Select(_ => Pending()).ToArray();
        var s = Timeline(fences);
        var seen = new List<ulong>();

        foreach (int i in new[] { 2, 4, 0, 1, 3 })
        {
            fences[i].Signal();
            seen.Add(s.QueryPoint());
        }

        Assert.Equal([0ul, 0, 1, 3, 5], seen);
    }

    [Fact]
    public void Query_LastSubmittedIsTheHeadPoint()
    {
        var s = Timeline(Pending(), Pending(), Pending());

        Assert.Equal(3ul, s.QueryPoint(lastSubmitted: true));
        Assert.Equal(0ul, s.QueryPoint());
    }

    [Fact]
    public void Query_BinaryFenceOrNoneIsZero()
    {
        var s = new SyncObj(signaled: true);

        Assert.Equal(0ul, s.QueryPoint());
        Assert.Equal(0ul, new SyncObj().QueryPoint());
    }

    [Fact]
    public void Query_AfterAnUnorderedPointCanAnswerZeroLikeTheKernel()
    {
        var f1 = Pending();
        var s = Timeline(f1, Pending());
        f1.Signal();
        s.AddPoint(1, Pending()); // not later than the head: new context, seqno stays 2

        Assert.Equal(0ul, s.QueryPoint());
        Assert.Equal(2ul, s.QueryPoint(lastSubmitted: true));
    }

    [Fact]
    public void QueryIoctl_FillsOnePointPerSyncobj()
    {
        var f = Pending();
        var a = Timeline(f, Pending());
        var b = Timeline(Pending());
        f.Signal();
        var points = new ulong[2];

        SyncObj.Query([a, b], points);

        Assert.Equal([1ul, 0], points);
    }

    [Fact]
    public void WaitAny_ReportsTheIndexOfTheSignalledOne()
    {
        FenceSource f0 = Pending(), f1 = Pending(), f2 = Pending();
        SyncObj[] objs = [Timeline(f0), Timeline(f1), Timeline(f2)];
        SoonOnAnotherThread(() => f2.Signal());

        bool done = SyncObj.Wait(objs, [1ul, 1, 1], Long, SyncObjWaitOptions.WaitAny, out int first);

        Assert.True(done);
        Assert.Equal(2, first);
    }

    [Fact]
    public void WaitAll_EndsOnlyWhenEverySignalledAndReportsTheFirstAlreadyDone()
    {
        FenceSource f0 = Pending(), f1 = Pending(), f2 = Pending();
        f1.Signal();
        SyncObj[] objs = [Timeline(f0), Timeline(f1), Timeline(f2)];
        SoonOnAnotherThread(() =>
        {
            f2.Signal();
            f0.Signal();
        });

        bool done = SyncObj.Wait(objs, [1ul, 1, 1], Long, SyncObjWaitOptions.WaitAll, out int first);

        Assert.True(done);
        Assert.True(f0.IsSignaled && f2.IsSignaled);
        Assert.Equal(1, first);
    }

    [Fact]
    public void WaitAll_TimesOutWhileOneIsPending()
    {
        FenceSource done = Pending();
        done.Signal();
        SyncObj[] objs = [Timeline(done), Timeline(Pending())];

        bool ok = SyncObj.Wait(objs, [1ul, 1], TimeSpan.FromMilliseconds(30), SyncObjWaitOptions.WaitAll, out _);

        Assert.False(ok);
    }

    [Fact]
    public void Wait_PastAbsoluteTimeoutPollsOnce()
    {
        var s = Timeline(Pending());

        bool ok = SyncObj.Wait([s], [1ul], TimeSpan.Zero, SyncObjWaitOptions.WaitAny, out int first);

        Assert.False(ok);
        Assert.Equal(-1, first);
    }

    [Fact]
    public void Wait_CancellationInterruptsTheWait()
    {
        var s = Timeline(Pending());
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(30));

        Assert.ThrowsAny<OperationCanceledException>(() =>
            SyncObj.Wait([s], [1ul], Long, SyncObjWaitOptions.WaitAny, out _, cts.Token));
    }

    [Fact]
    public void Wait_ZeroHandlesIsAllowedAndReturnsAtOnce()
    {
        bool ok = SyncObj.Wait([], [], TimeSpan.Zero, SyncObjWaitOptions.WaitAll, out int first);

        Assert.True(ok);
        Assert.Equal(-1, first);
    }

    [Fact]
    public void Wait_FuturePointWithoutWaitForSubmitIsEinval()
    {
        var s = Timeline(Pending());

        var ex = Errno(() => SyncObj.Wait([s], [2ul], Long, SyncObjWaitOptions.WaitAny, out _));

        Assert.Equal(-FenceCore.Errno.EINVAL, ex.Errno);
    }

    [Fact]
    public void Wait_InvalidElementAbortsBeforeAnySideEffect()
    {
        var f = new Fences.TestFences.HookedFence(FenceContext.Allocate(), 1);
        var s = Timeline(f);

        var drm = new FenceCore.Uapi.DrmFile(new FenceCore.Uapi.FileTable());
        Assert.Equal(0, drm.GetHandle(s, out uint h));

        Assert.Equal(-FenceCore.Errno.ENOENT, drm.SyncobjTimelineWait([h, 0], [1ul, 1], 0, FenceCore.Uapi.DrmSyncobjFlags.WaitDeadline, out _, deadlineNsec: 5));
        Assert.Null(f.Deadline);
        Assert.False(f.IsSignalingEnabled);
    }

    [Fact]
    public void Wait_UnknownFlagIsEinval() =>
        Assert.Equal(-FenceCore.Errno.EINVAL,
            Errno(() => SyncObj.Wait([new SyncObj(true)], [0ul], TimeSpan.Zero, (SyncObjWaitOptions)0x100, out _)).Errno);

    [Fact]
    public void Wait_PointsOfAnotherLengthIsEinval() =>
        Assert.Equal(-FenceCore.Errno.EINVAL,
            Errno(() => SyncObj.Wait([new SyncObj(true)], [0ul, 0], TimeSpan.Zero, SyncObjWaitOptions.WaitAny, out _)).Errno);

    [Fact]
    public void WaitForSubmit_WaitsForThePointToBeSubmittedAndSignalled()
    {
        var done1 = Pending();
        done1.Signal();
        var s = Timeline(done1);
        var f = Pending();
        SoonOnAnotherThread(() =>
        {
            s.AddPoint(3, f);
            f.Signal();
        });

        bool done = SyncObj.Wait([s], [3ul], Long, SyncObjWaitOptions.WaitForSubmit, out _);

        Assert.True(done);
        Assert.True(f.IsSignaled);
    }

    [Fact]
    public void WaitForSubmit_BinaryResetSyncobjWaitsForTheNextSubmission()
    {
        var s = new SyncObj();
        SoonOnAnotherThread(s.Signal);

        bool done = SyncObj.Wait([s], Long, SyncObjWaitOptions.WaitForSubmit, out _);

        Assert.True(done);
    }

    [Fact]
    public void WaitForSubmit_TimesOutWhenNothingIsSubmitted()
    {
        var s = Timeline(Pending());

        bool done = SyncObj.Wait([s], [2ul], TimeSpan.FromMilliseconds(30), SyncObjWaitOptions.WaitForSubmit, out _);

        Assert.False(done);
    }

    [Fact]
    public void WaitAvailable_CompletesWhenThePointMaterializesWithoutItSignalling()
    {
        var s = new SyncObj();
        var f = Pending();
        SoonOnAnotherThread(() => s.AddPoint(7, f));

        bool done = SyncObj.Wait([s], [7ul], Long, SyncObjWaitOptions.WaitForSubmit | SyncObjWaitOptions.WaitAvailable, out int first);

        Assert.True(done);
        Assert.Equal(0, first);
        Assert.False(f.IsSignaled);
    }

    [Fact]
    public void WaitDeadline_SetsTheDeadlineOnTheCapturedFences()
    {
        var f = new Fences.TestFences.HookedFence(FenceContext.Allocate(), 1);
        var s = Timeline(f);

        var drm = new FenceCore.Uapi.DrmFile(new FenceCore.Uapi.FileTable());
        Assert.Equal(0, drm.GetHandle(s, out uint h));

        Assert.Equal(-FenceCore.Errno.ETIME, drm.SyncobjTimelineWait([h], [1ul], 0, FenceCore.Uapi.DrmSyncobjFlags.WaitDeadline, out _, deadlineNsec: 4242));

        Assert.Equal(4242, f.DeadlineNs); // exact: finer than a TimeSpan tick
    }

    // ---------------------------------------------------------------------------------------------
    // Transfer

    [Fact]
    public void Transfer_TimelinePointToBinary()
    {
        var f = Pending();
        var src = Timeline(f);
        var dst = new SyncObj();

        SyncObj.Transfer(src, 1, dst, 0);

        Assert.Same(f, FenceChain.Contained(dst.Fence));
    }

    [Fact]
    public void Transfer_BinaryToTimelinePoint()
    {
        var f = Pending();
        var src = new SyncObj();
        src.Replace(f);
        var dst = Timeline(Pending());

        SyncObj.Transfer(src, 0, dst, 2);

        var head = Assert.IsType<FenceChain>(dst.Fence);
        Assert.Equal((2ul, (Fence)f), (head.Seqno, head.ContainedFence));
    }

    [Fact]
    public void Transfer_TimelineToTimelineFlattensTheChain()
    {
        Fence a = Pending(), b = Pending();
        var src = Timeline(a, b);
        var dst = new SyncObj();

        SyncObj.Transfer(src, 2, dst, 10);

        var head = Assert.IsType<FenceChain>(dst.Fence);
        Assert.IsNotType<FenceChain>(head.ContainedFence);
        var leaves = new List<Fence>();
        foreach (Fence leaf in FenceUnwrap.ForEach(head.ContainedFence))
        {
            leaves.Add(leaf);
        }

        Assert.Equal(new[] { a, b }.OrderBy(f => f.Context), leaves);
    }

    [Fact]
    public void Transfer_MissingSourcePointIsEinvalAndLeavesTheDestination()
    {
        var src = Timeline(Pending());
        var dst = new SyncObj();
        var kept = Pending();
        dst.Replace(kept);

        var ex = Errno(() => SyncObj.Transfer(src, 9, dst, 0));

        Assert.Equal(-FenceCore.Errno.EINVAL, ex.Errno);
        Assert.Same(kept, dst.Fence);
    }

    [Fact]
    public void Transfer_NonZeroPadOrOtherFlagsIsEinval()
    {
        var src = new SyncObj(true);
        var dst = new SyncObj();

        var drm = new FenceCore.Uapi.DrmFile(new FenceCore.Uapi.FileTable());
        Assert.Equal(0, drm.GetHandle(src, out uint hs));
        Assert.Equal(0, drm.GetHandle(dst, out uint hd));

        Assert.Equal(-FenceCore.Errno.EINVAL, drm.SyncobjTransfer(hs, 0, hd, 0, 0, pad: 1));
        Assert.Equal(-FenceCore.Errno.EINVAL, Errno(() => SyncObj.Transfer(src, 0, dst, 0, SyncObjWaitOptions.WaitAll)).Errno);
        Assert.Null(dst.Fence);
    }

    [Fact]
    public void Transfer_UnknownHandleIsEnoent() =>
        Assert.Equal(-FenceCore.Errno.ENOENT, Errno(() => SyncObj.Transfer(new SyncObj(true), 0, null, 0)).Errno);

    [Fact]
    public void Transfer_WaitForSubmitTakesThePointOnceSubmitted()
    {
        var src = new SyncObj();
        var f = Pending();
        var dst = new SyncObj();
        SoonOnAnotherThread(() => src.AddPoint(1, f));

        SyncObj.Transfer(src, 1, dst, 0, SyncObjWaitOptions.WaitForSubmit);

        Assert.Same(f, FenceChain.Contained(dst.Fence));
    }

    // ---------------------------------------------------------------------------------------------
    // Array ioctls: bad input changes nothing

    [Fact]
    public void ResetSignalQueryTimelineSignal_ZeroHandlesIsEinval()
    {
        Assert.Equal(-FenceCore.Errno.EINVAL, Errno(() => SyncObj.Reset([])).Errno);
        Assert.Equal(-FenceCore.Errno.EINVAL, Errno(() => SyncObj.Signal([])).Errno);
        Assert.Equal(-FenceCore.Errno.EINVAL, Errno(() => SyncObj.Query([], [])).Errno);
        Assert.Equal(-FenceCore.Errno.EINVAL, Errno(() => SyncObj.TimelineSignal([], [])).Errno);
    }

    [Fact]
    public void Signal_InvalidElementAbortsBeforeAnyIsSignalled()
    {
        var first = new SyncObj();

        var ex = Errno(() => SyncObj.Signal([first, null]));

        Assert.Equal(-FenceCore.Errno.ENOENT, ex.Errno);
        Assert.Null(first.Fence);
    }

    [Fact]
    public void Reset_InvalidElementAbortsBeforeAnyIsReset()
    {
        var first = new SyncObj(signaled: true);
        Fence? before = first.Fence;

        var ex = Errno(() => SyncObj.Reset([first, null]));

        Assert.Equal(-FenceCore.Errno.ENOENT, ex.Errno);
        Assert.Same(before, first.Fence);
    }

    [Fact]
    public void Reset_NonZeroPadIsEinvalAndChangesNothing()
    {
        var s = new SyncObj(signaled: true);
        var drm = new FenceCore.Uapi.DrmFile(new FenceCore.Uapi.FileTable());
        Assert.Equal(0, drm.GetHandle(s, out uint h));

        Assert.Equal(-FenceCore.Errno.EINVAL, drm.SyncobjReset([h], pad: 1));
        Assert.NotNull(s.Fence);
    }

    [Fact]
    public void Reset_StaticResetsEvery()
    {
        SyncObj a = new(true), b = new(true);

        SyncObj.Reset([a, b]);

        Assert.Null(a.Fence);
        Assert.Null(b.Fence);
    }

    [Fact]
    public void TimelineSignal_SignalsThePointsFromTheHost()
    {
        var f = Pending();
        var s = Timeline(f);
        var binary = new SyncObj();

        SyncObj.TimelineSignal([s, binary], [2ul, 0]);

        Assert.Equal(2ul, s.QueryPoint(lastSubmitted: true));
        Assert.False(s.FindFence(2).IsSignaled); // a host-signalled point still completes only after point 1
        Assert.True(binary.Fence!.IsSignaled);
    }

    [Fact]
    public void TimelineSignal_InvalidElementOrFlagsAbortsBeforeAnySideEffect()
    {
        var s = Timeline(Pending());
        Fence? before = s.Fence;

        Assert.Equal(-FenceCore.Errno.ENOENT, Errno(() => SyncObj.TimelineSignal([s, null], [2ul, 2])).Errno);
        var drm = new FenceCore.Uapi.DrmFile(new FenceCore.Uapi.FileTable());
        Assert.Equal(0, drm.GetHandle(s, out uint h));
        Assert.Equal(-FenceCore.Errno.EINVAL, drm.SyncobjTimelineSignal([h], [2ul], flags: 1));
        Assert.Equal(-FenceCore.Errno.EINVAL, Errno(() => SyncObj.TimelineSignal([s], [2ul, 3])).Errno);
        Assert.Same(before, s.Fence);
    }

    [Fact]
    public void QueryIoctl_UnknownFlagsOrInvalidHandleFail()
    {
        var points = new ulong[1];

        Assert.Equal(-FenceCore.Errno.EINVAL, Errno(() => SyncObj.Query([new SyncObj()], points, (SyncObjQueryOptions)2)).Errno);
        Assert.Equal(-FenceCore.Errno.ENOENT, Errno(() => SyncObj.Query([null], points)).Errno);
    }
}
