using FenceCore.Uapi;

namespace FenceCore.Tests.Reservations;

/// <summary>The dma-buf fence surface: export and import of sync files, flag errors, poll, CPU access,
/// and the rule that no path ever skips a KERNEL fence.</summary>
public class DmaBufTests
{
    private static FenceSource NewFence(ulong? ctx = null, ulong seqno = 1) => new(ctx ?? FenceContext.Allocate(), seqno);

    private static HashSet<Fence> Leaves(SyncFile file)
    {
        var set = new HashSet<Fence>(ReferenceEqualityComparer.Instance);
        foreach (Fence f in FenceUnwrap.ForEach(file.Fence))
        {
            set.Add(f);
        }

        return set;
    }

    [Fact]
    public void ExportRead_WaitsForWritersAndKernel_NotReaders()
    {
        var buf = new DmaBuf();
        var kernel = NewFence();
        var write = NewFence();
        var read = NewFence();
        var bookkeep = NewFence();
        buf.Reservation.AddFence(kernel, FenceUsage.Kernel);
        buf.Reservation.AddFence(write, FenceUsage.Write);
        buf.Reservation.AddFence(read, FenceUsage.Read);
        buf.Reservation.AddFence(bookkeep, FenceUsage.Bookkeep);

        Assert.Equal([kernel, write], Leaves(buf.ExportSyncFile(DmaBufSync.Read)).ToHashSet());
    }

    [Theory]
    [InlineData(DmaBufSync.Write)]
    [InlineData(DmaBufSync.ReadWrite)]
    public void ExportWrite_WaitsForReadersWritersAndKernel_NeverBookkeep(DmaBufSync flags)
    {
        var buf = new DmaBuf();
        var kernel = NewFence();
        var write = NewFence();
        var read = NewFence();
        buf.Reservation.AddFence(kernel, FenceUsage.Kernel);
        buf.Reservation.AddFence(write, FenceUsage.Write);
        buf.Reservation.AddFence(read, FenceUsage.Read);
        buf.Reservation.AddFence(NewFence(), FenceUsage.Bookkeep);

        Assert.Equal([kernel, write, read], Leaves(buf.ExportSyncFile(flags)).ToHashSet());
    }

    [Fact]
    public void Export_WithNothingPending_IsTheSignalledStub()
    {
        var buf = new DmaBuf();
        var done = NewFence();
        buf.Reservation.AddFence(done, FenceUsage.Write);
        done.Signal();
        SyncFile file = buf.ExportSyncFile(DmaBufSync.Write);
        Assert.Same(Fence.Stub, file.Fence);
        Assert.True(file.IsReady);
    }

    [Fact]
    public void Export_IsASnapshot_LaterFencesAreNotWaitedFor()
    {
        var buf = new DmaBuf();
        var before = NewFence();
        buf.Reservation.AddFence(before, FenceUsage.Write);
        SyncFile file = buf.ExportSyncFile(DmaBufSync.Write);
        var after = NewFence();
        buf.Reservation.AddFence(after, FenceUsage.Write);

        before.Signal();
        Assert.True(file.Wait(TimeSpan.Zero));
        Assert.False(after.IsSignaled);
    }

    [Fact]
    public void Export_ManyTimelines_IsOneArrayOverAllOfThem()
    {
        var buf = new DmaBuf();
        var fences = Enumerable.Range(0, 16).Select(_ => NewFence()).ToArray();
        foreach (Fence f in fences)
        {
            buf.Reservation.AddFence(f, FenceUsage.Read);
        }

        SyncFile file = buf.ExportSyncFile(DmaBufSync.Write);
        Assert.Equal(fences.ToHashSet<Fence>(), Leaves(file).ToHashSet());
        foreach (FenceSource f in fences[..^1])
        {
            f.Signal();
        }

        Assert.False(file.Poll()); // the first poll arms the array, as sync_file_poll does
        fences[^1].Signal();
        Assert.True(file.IsReady);
    }

    [Fact]
    public void ImportRead_BlocksLaterWritersNotReaders()
    {
        var buf = new DmaBuf();
        var f = NewFence();
        buf.ImportSyncFile(DmaBufSync.Read, new SyncFile(f));

        Assert.Equal([new ReservationEntry(f, FenceUsage.Read)], buf.Reservation.Snapshot.ToArray());
        Assert.True(buf.IsReady(write: false));
        Assert.False(buf.IsReady(write: true));
    }

    [Fact]
    public void ImportWrite_BlocksEveryone()
    {
        var buf = new DmaBuf();
        var f = NewFence();
        buf.ImportSyncFile(DmaBufSync.Write, new SyncFile(f));
        Assert.False(buf.IsReady(write: false));
        Assert.False(buf.IsReady(write: true));
        f.Signal();
        Assert.True(buf.IsReady(write: true));
    }

    [Fact]
    public void Import_AddsEachLeafOfAMergedFile()
    {
        var buf = new DmaBuf();
        var a = NewFence();
        var b = NewFence();
        SyncFile merged = SyncFile.Merge("m", new SyncFile(a), new SyncFile(b));
        buf.ImportSyncFile(DmaBufSync.Write, merged);

        Assert.Equal([a, b], buf.Reservation.GetFences(FenceUsage.Write));
        Assert.DoesNotContain(buf.Reservation.Snapshot.ToArray(), e => e.Fence is FenceArray or FenceChain);
    }

    [Fact]
    public void Import_SameContextLaterFence_ReplacesTheEntry()
    {
        ulong ctx = FenceContext.Allocate();
        var buf = new DmaBuf();
        var f1 = NewFence(ctx, 1);
        var f2 = NewFence(ctx, 2);
        buf.ImportSyncFile(DmaBufSync.Write, new SyncFile(f1));
        buf.ImportSyncFile(DmaBufSync.Write, new SyncFile(f2));
        Assert.Equal([new ReservationEntry(f2, FenceUsage.Write)], buf.Reservation.Snapshot.ToArray());
    }

    [Fact]
    public void Import_PromotesABookkeepFence()
    {
        var buf = new DmaBuf();
        var f = NewFence();
        buf.Reservation.AddFence(f, FenceUsage.Bookkeep);
        Assert.True(buf.IsReady(write: true));
        buf.ImportSyncFile(DmaBufSync.Read, new SyncFile(f));
        Assert.False(buf.IsReady(write: true));
        Assert.Single(buf.Reservation.Snapshot.ToArray());
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(4u)]
    [InlineData(8u)]
    [InlineData(0x80000001u)]
    public void BadFlags_AreEINVAL_AndChangeNothing(uint flags)
    {
        var buf = new DmaBuf();
        var f = NewFence();
        buf.Reservation.AddFence(f, FenceUsage.Write);

        var ex = Assert.Throws<FenceErrnoException>(() => buf.ExportSyncFile((DmaBufSync)flags));
        Assert.Equal(-Errno.EINVAL, ex.Errno);
        Assert.Contains("DMA_BUF_IOCTL_EXPORT_SYNC_FILE", ex.Message, StringComparison.Ordinal);
        Assert.Equal(-Errno.EINVAL, buf.ExportSyncFileIoctl(flags, out SyncFile? none));
        Assert.Null(none);
        Assert.Equal(-Errno.EINVAL, buf.ImportSyncFileIoctl(flags, new SyncFile(NewFence())));
        Assert.Throws<FenceErrnoException>(() => buf.ImportSyncFile((DmaBufSync)flags, new SyncFile(NewFence())));
        Assert.Equal([f], buf.Reservation.GetFences(FenceUsage.Bookkeep));
    }

    [Fact]
    public void Import_OfSomethingThatIsNotASyncFile_IsEINVAL()
    {
        var buf = new DmaBuf();
        var files = new FenceCore.Uapi.FileTable();
        int fd = files.Install(buf);
        Assert.Equal(-Errno.EINVAL, files.DmaBufImportSyncFile(fd, (uint)DmaBufSync.Read, 999));
        Assert.Equal(-Errno.EINVAL, files.DmaBufImportSyncFile(fd, (uint)DmaBufSync.Read, files.Install(new DmaBuf())));
        Assert.Throws<ArgumentNullException>(() => buf.ImportSyncFile(DmaBufSync.Read, null!)); // was FenceErrnoException(-EINVAL)
        Assert.Equal(0, buf.Reservation.Count);
    }

    [Fact]
    public async Task PollAsync_NotifiesWhenReadable()
    {
        var buf = new DmaBuf();
        var w = NewFence();
        buf.Reservation.AddFence(w, FenceUsage.Write);
        ValueTask<bool> readable = buf.PollAsync(write: false, TimeSpan.FromSeconds(10));
        Assert.False(readable.IsCompleted);
        w.Signal();
        Assert.True(await readable);
    }

    [Fact]
    public void CpuAccess_WaitsPerDirection_AndEndWithoutBeginIsEINVAL()
    {
        var buf = new DmaBuf();
        var read = NewFence();
        buf.Reservation.AddFence(read, FenceUsage.Read);

        Assert.True(buf.BeginCpuAccess(DmaBufSync.Read, TimeSpan.Zero));
        buf.EndCpuAccess(DmaBufSync.Read);
        Assert.False(buf.BeginCpuAccess(DmaBufSync.Write, TimeSpan.Zero));
        Assert.Equal(0, buf.CpuAccessDepth);
        var ex = Assert.Throws<FenceErrnoException>(() => buf.EndCpuAccess(DmaBufSync.Write));
        Assert.Equal(-Errno.EINVAL, ex.Errno);
        var files = new FileTable();
        int fd = files.Install(new DmaBuf());
        Assert.Equal(0, files.DmaBufSync(fd, (ulong)(DmaBufSync.ReadWrite | DmaBufSync.End)));
        Assert.Equal(-Errno.EINVAL, files.DmaBufSync(fd, 8));
        Assert.Equal(-Errno.EINVAL, files.DmaBufSync(fd, (ulong)DmaBufSync.End));
        Assert.Equal(-Errno.ENOTTY, files.DmaBufSync(files.CreateEventFd(), (ulong)DmaBufSync.Read)); // not a dma-buf
        Assert.Equal(-Errno.EBADF, files.DmaBufSync(fd + 100, (ulong)DmaBufSync.Read));
    }

    /// <summary>
    /// The seed thread's security property: a KERNEL fence (a buffer move) is seen by every path,
    /// including an explicit-sync client that only adds BOOKKEEP fences and opts out of implicit sync.
    /// </summary>
    [Fact]
    public void KernelFence_IsNeverSkipped_OnAnyPath()
    {
        var buf = new DmaBuf();
        var move = NewFence();
        buf.Reservation.AddFence(move, FenceUsage.Kernel);

        Assert.Contains(move, Leaves(buf.ExportSyncFile(DmaBufSync.Read)));
        Assert.Contains(move, Leaves(buf.ExportSyncFile(DmaBufSync.Write)));
        Assert.False(buf.IsReady(write: false));
        Assert.False(buf.IsReady(write: true));
        Assert.False(buf.BeginCpuAccess(DmaBufSync.Read, TimeSpan.Zero));
        foreach (FenceUsage level in Enum.GetValues<FenceUsage>())
        {
            Assert.False(buf.Reservation.TestSignaled(level));
            Assert.Same(move, buf.Reservation.GetSingleton(level));
        }

        // An explicit-sync (opt-out) submission waits at the KERNEL level and adds BOOKKEEP.
        var deps = new List<Fence>();
        var explicitJob = NewFence();
        buf.Reservation.AddFenceWithDependencies(explicitJob, FenceUsage.Bookkeep, FenceUsage.Kernel, deps);
        Assert.Equal([move], deps);
    }
}
