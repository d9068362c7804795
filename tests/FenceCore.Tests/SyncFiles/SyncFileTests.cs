using FenceCore.Uapi;

namespace FenceCore.Tests.SyncFiles;

/// <summary>sync_file: names, merge, the two-phase info query, deadline, poll and waiting, bad arguments.</summary>
public class SyncFileTests
{
    private static FenceSource Pending(ulong? context = null, ulong seqno = 1) => new(context ?? FenceContext.Allocate(), seqno);

    [Fact]
    public void Name_DefaultIsDriverTimelineContextSeqno()
    {
        var f = Pending(seqno: 7);

        var file = new SyncFile(f);

        Assert.Equal($"fencecore-unbound{f.Context}-7", file.Name);
    }

    [Fact]
    public void Name_IsCutToTheKernelsThirtyOneBytes()
    {
        var file = SyncFile.Merge(new string('x', 40), new SyncFile(Pending()), new SyncFile(Pending()));

        Assert.Equal(new string('x', 31), file.Name);
    }

    [Fact]
    public void Merge_NamesTheNewFileAndMergesBothFences()
    {
        FenceSource f1 = Pending(), f2 = Pending();

        var merged = SyncFile.Merge("both", new SyncFile(f1), new SyncFile(f2));

        Assert.Equal("both", merged.Name);
        var array = Assert.IsType<FenceArray>(merged.Fence);
        Assert.Equal(new[] { f1, f2 }, array.Fences.ToArray());
    }

    [Fact]
    public void Merge_WithItselfDoesNotGrow()
    {
        var f = Pending();
        var file = new SyncFile(f);

        var merged = SyncFile.Merge("same", file, file);

        Assert.Same(f, merged.Fence);
    }

    [Fact]
    public void Merge_ExpiredFencesGiveASignalledFreshStub()
    {
        FenceSource f1 = Pending(), f2 = Pending();
        f1.SignalWithTimestamp(TimeSpan.FromTicks(10));
        f2.SignalWithTimestamp(TimeSpan.FromTicks(20));

        var merged = SyncFile.Merge("expired", new SyncFile(f1), new SyncFile(f2));

        Assert.True(merged.IsReady);
        Assert.Equal(TimeSpan.FromTicks(20), merged.Fence.Timestamp);
        Assert.NotSame(f1, merged.Fence);
        Assert.NotSame(f2, merged.Fence);
    }

    [Fact]
    public void Merge_InputsStayValidAndUnchanged()
    {
        FenceSource f1 = Pending(), f2 = Pending();
        SyncFile a = new(f1), b = new(f2);

        SyncFile.Merge("m", a, b);

        Assert.Same(f1, a.Fence);
        Assert.Same(f2, b.Fence);
    }

    [Fact]
    public void MergeIoctl_EmptyNameKeepsTheDefaultName()
    {
        var f = Pending(seqno: 3);

        var files = new FileTable();
        var data = new SyncMergeData { Name = "", Fd2 = files.Install(new SyncFile(f)) };
        Assert.Equal(0, files.SyncMerge(files.Install(new SyncFile(f)), ref data));

        Assert.True(files.TryGetSyncFile(data.Fence, out SyncFile? merged));
        Assert.Equal($"fencecore-unbound{f.Context}-3", merged.Name);
    }

    [Theory]
    [InlineData(1u, 0u)]
    [InlineData(0u, 1u)]
    public void MergeIoctl_NonZeroFlagsOrPadIsEinval(uint flags, uint pad)
    {
        var files = new FileTable();
        int fd = files.Install(new SyncFile(Pending()));
        var data = new SyncMergeData { Name = "m", Fd2 = files.Install(new SyncFile(Pending())), Flags = flags, Pad = pad };
        int open = files.Count;

        Assert.Equal(-Errno.EINVAL, files.SyncMerge(fd, ref data));
        Assert.Equal(open, files.Count); // the reserved descriptor was released
    }

    [Fact]
    public void MergeIoctl_SecondOperandNotASyncFileIsEnoent_AndTheFirstMustBeOne()
    {
        var files = new FileTable();
        int fd = files.Install(new SyncFile(Pending()));
        var closed = new SyncMergeData { Name = "m", Fd2 = 77 };
        var eventFd = new SyncMergeData { Name = "m", Fd2 = files.CreateEventFd() };
        var ok = new SyncMergeData { Name = "m", Fd2 = fd };

        Assert.Equal(-Errno.ENOENT, files.SyncMerge(fd, ref closed));
        Assert.Equal(-Errno.ENOENT, files.SyncMerge(fd, ref eventFd));
        Assert.Equal(-Errno.EBADF, files.SyncMerge(99, ref ok));
        Assert.Equal(-Errno.ENOTTY, files.SyncMerge(eventFd.Fd2, ref ok));
    }

    [Fact]
    public void Info_PollsAsDmaFenceGetStatusDoes_AnArrayOfSignalledLeavesReportsSignalled()
    {
        FenceSource a = Pending(), b = Pending();
        var hardware = new Fences.TestFences.HookedFence(FenceContext.Allocate(), 1) { HardwareDone = true };
        a.Signal();
        b.Signal();
        var file = new SyncFile(new FenceArray([a, b])); // never enabled: only a poll can see it is done
        var withHardware = new SyncFile(new FenceArray([hardware]));
        var entries = new SyncFenceInfo[1];

        SyncFileInfo count = file.GetInfo([]);
        withHardware.GetInfo(entries);

        Assert.Equal(1, count.Status); // 0 when the status was read without polling (issue 13's plain reads)
        Assert.Equal(1, entries[0].Status); // the leaf is polled too
    }

    [Fact]
    public void Info_CountOnlyReturnsLeafCountAndWholeFenceStatus()
    {
        FenceSource f1 = Pending(), f2 = Pending(), f3 = Pending();
        f1.Signal(-Errno.EIO);
        var file = new SyncFile(new FenceArray([f1, f2, f3]));

        SyncFileInfo info = file.GetInfo([]);

        Assert.Equal((3, 0), (info.NumFences, info.Status));
    }

    [Fact]
    public void Info_FullQueryDescribesEveryLeafInUnwrapOrder()
    {
        FenceSource f1 = Pending(), f2 = Pending();
        f1.SignalWithTimestamp(-Errno.ETIMEDOUT, TimeSpan.FromTicks(555));
        var file = new SyncFile(new FenceArray([f1, f2]));
        var buffer = new SyncFenceInfo[2];

        SyncFileInfo info = file.GetInfo(buffer);

        Assert.Equal(2, info.NumFences);
        Assert.Equal(new SyncFenceInfo("unbound", "fencecore", -Errno.ETIMEDOUT, 0, 55_500), buffer[0]); // the uAPI record counts ns
        Assert.Equal(TimeSpan.FromTicks(555), buffer[0].Timestamp);
        Assert.Equal(new SyncFenceInfo("unbound", "fencecore", 0, 0, 0), buffer[1]);
    }

    [Fact]
    public void Info_AggregateStatusIsFirstNonPositiveInOrder_PendingBeforeError()
    {
        FenceSource pending = Pending(), failed = Pending();
        failed.Signal(-Errno.EIO);
        var file = new SyncFile(new FenceArray([pending, failed]));

        SyncFileInfo info = file.GetInfo(new SyncFenceInfo[2]);

        Assert.Equal(0, info.Status);
    }

    [Fact]
    public void Info_AggregateStatusIsFirstNonPositiveInOrder_ErrorBeforePending()
    {
        FenceSource pending = Pending(), failed = Pending();
        failed.Signal(-Errno.EIO);
        var file = new SyncFile(new FenceArray([failed, pending]));

        SyncFileInfo info = file.GetInfo(new SyncFenceInfo[2]);

        Assert.Equal(-Errno.EIO, info.Status);
    }

    [Fact]
    public void Info_AllSignalledWithoutErrorIsOne()
    {
        FenceSource f1 = Pending(), f2 = Pending();
        f1.Signal();
        f2.Signal();
        var file = new SyncFile(new FenceArray([f1, f2]));

        SyncFileInfo info = file.GetInfo(new SyncFenceInfo[4]);

        Assert.Equal((1, 2), (info.Status, info.NumFences));
    }

    [Fact]
    public void Info_BufferTooSmall_IsAnArgumentError_AndEinvalOnTheUapi()
    {
        var file = new SyncFile(new FenceArray([Pending(), Pending(), Pending()]));
        var files = new FileTable();
        var info = new SyncFileInfoData { NumFences = 2 };
        var buffer = new SyncFenceInfo[2];

        var ex = Assert.Throws<ArgumentException>(() => file.GetInfo(new SyncFenceInfo[2])); // was FenceErrnoException

        Assert.Equal("fences", ex.ParamName);
        Assert.Contains("holds 2 entries but the sync file has 3 fences", ex.Message, StringComparison.Ordinal);
        Assert.Equal(-Errno.EINVAL, files.SyncFileInfo(files.Install(file), ref info, buffer));
        Assert.Equal(default, buffer[0]);
    }

    [Theory]
    [InlineData(1u, 0u)]
    [InlineData(0u, 1u)]
    public void Info_NonZeroFlagsOrPadIsEinval(uint flags, uint pad)
    {
        var files = new FileTable();
        var info = new SyncFileInfoData { Flags = flags, Pad = pad };

        Assert.Equal(-Errno.EINVAL, files.SyncFileInfo(files.Install(new SyncFile(Pending())), ref info, []));
        Assert.Null(info.Name);
    }

    [Fact]
    public void Info_ChainUnwrapsThroughItsNodes()
    {
        ulong ctx = FenceContext.Allocate();
        Fence a = Pending(ctx, 1), b = Pending(ctx, 2);
        var file = new SyncFile(new FenceChain(new FenceChain(null, a, 1), b, 2));

        SyncFileInfo info = file.GetInfo([]);

        Assert.Equal(2, info.NumFences);
    }

    [Fact]
    public void SetDeadline_IsForwardedToTheFence()
    {
        var f = Pending();

        new SyncFile(f).SetDeadline(TimeSpan.FromTicks(9_000));

        Assert.Equal(TimeSpan.FromTicks(9_000), f.Deadline);
    }

    [Fact]
    public void SetDeadline_NonZeroPadIsEinvalAndSetsNothing()
    {
        var f = Pending();

        var files = new FileTable();

        Assert.Equal(-Errno.EINVAL, files.SyncSetDeadline(files.Install(new SyncFile(f)), 9_000, pad: 1));
        Assert.Null(f.Deadline);
    }

    [Fact]
    public void Poll_ReadyIffSignalledAndFirstPollEnablesSignalling()
    {
        var f = Pending();
        var file = new SyncFile(f);

        bool before = file.Poll();
        bool enabled = f.IsSignalingEnabled;
        f.Signal();
        bool after = file.Poll();

        Assert.False(before);
        Assert.True(enabled);
        Assert.True(after);
    }

    [Fact]
    public async Task WaitAsync_CompletesWhenTheFenceSignals()
    {
        var f = Pending();
        var file = new SyncFile(f);
        ValueTask<bool> wait = file.WaitAsync(TimeSpan.FromSeconds(10));

        f.Signal();

        Assert.True(await wait);
    }

    [Fact]
    public async Task WaitAsync_TimesOutOnAPendingFence()
    {
        var file = new SyncFile(Pending());

        bool signalled = await file.WaitAsync(TimeSpan.FromMilliseconds(20));

        Assert.False(signalled);
    }
}
