using FenceCore.Uapi;

namespace FenceCore.Tests.Uapi;

/// <summary>The sync-file and dma-buf ioctls on descriptors (<see cref="FileTable"/>), moved out of the idiomatic types.</summary>
public class FileTableIoctlTests
{
    private readonly FileTable _files = new();

    private static FenceSource Pending() => new(FenceContext.Allocate(), 1);

    [Fact]
    public void DmaBufExportThenImport_ThroughDescriptors_MovesTheImplicitFences()
    {
        var src = new DmaBuf();
        var dst = new DmaBuf();
        FenceSource write = Pending();
        src.Reservation.AddFence(write, FenceUsage.Write);
        int srcFd = _files.Install(src), dstFd = _files.Install(dst);

        Assert.Equal(0, _files.DmaBufExportSyncFile(srcFd, (uint)DmaBufSync.Read, out int syncFd));
        Assert.Equal(0, _files.DmaBufImportSyncFile(dstFd, (uint)DmaBufSync.Write, syncFd));
        bool busy = !dst.IsReady(write: false);
        write.Signal();

        Assert.True(busy);
        Assert.True(dst.IsReady(write: true));
    }

    [Fact]
    public void DmaBufExportAndImport_BadInput_AndStateUnchanged()
    {
        var buf = new DmaBuf();
        int fd = _files.Install(buf);
        int eventFd = _files.CreateEventFd();
        int open = _files.Count;

        Assert.Equal(-Errno.EINVAL, _files.DmaBufExportSyncFile(fd, 8, out int none));
        Assert.Equal(-1, none);
        Assert.Equal(-Errno.EINVAL, _files.DmaBufExportSyncFile(fd, 0, out _)); // no direction
        Assert.Equal(-Errno.EINVAL, _files.DmaBufImportSyncFile(fd, (uint)DmaBufSync.Read, eventFd)); // not a sync file
        Assert.Equal(-Errno.ENOTTY, _files.DmaBufImportSyncFile(eventFd, (uint)DmaBufSync.Read, eventFd));
        Assert.Equal(-Errno.EBADF, _files.DmaBufExportSyncFile(999, (uint)DmaBufSync.Read, out _));
        Assert.Equal(open, _files.Count);
        Assert.Equal(0, buf.Reservation.Count);
    }

    [Fact]
    public void SyncFileInfo_TwoCallProtocol_CountThenEntries()
    {
        FenceSource a = Pending(), b = Pending();
        b.Signal(-Errno.EIO);
        var file = new SyncFile(new FenceArray([a, b]));
        int fd = _files.Install(file);
        var count = new SyncFileInfoData();
        Assert.Equal(0, _files.SyncFileInfo(fd, ref count, []));
        var buffer = new SyncFenceInfo[count.NumFences];
        var fill = new SyncFileInfoData { NumFences = count.NumFences };
        Assert.Equal(0, _files.SyncFileInfo(fd, ref fill, buffer));
        var lying = new SyncFileInfoData { NumFences = 5 };

        Assert.Equal(2u, count.NumFences);
        Assert.Equal(file.Name, fill.Name);
        Assert.Equal([0, -Errno.EIO], buffer.Select(x => x.Status));
        Assert.Equal(-Errno.EFAULT, _files.SyncFileInfo(fd, ref lying, buffer)); // claims more than the buffer holds
    }

    [Fact]
    public void SyncSetDeadline_ReachesTheFence()
    {
        FenceSource f = Pending();
        int fd = _files.Install(new SyncFile(f));

        Assert.Equal(0, _files.SyncSetDeadline(fd, 5_000, 0));
        Assert.Equal(5_000, f.DeadlineNs); // the uAPI's ns, exact (the idiomatic Deadline is the same point in 100 ns ticks)
        Assert.Equal(-Errno.EBADF, _files.SyncSetDeadline(fd + 50, 1, 0));
    }
}
