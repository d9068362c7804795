using FenceCore.Uapi;

namespace FenceCore.Tests.Uapi;

/// <summary>
/// The syncobj uAPI of <see cref="DrmFile"/> against the errno rules of <c>drm_syncobj.c</c>: one test per
/// rule, each also checking that a failing call changed nothing.
/// </summary>
public class DrmFileTests
{
    private readonly FileTable _files = new();
    private readonly DrmFile _drm;

    public DrmFileTests() => _drm = new DrmFile(_files);

    private uint Create(uint flags = 0)
    {
        var args = new DrmSyncobjCreate { Flags = flags };
        Assert.Equal(0, _drm.SyncobjCreate(ref args));
        return args.Handle;
    }

    private SyncObj Obj(uint handle) => _drm.TryGetSyncObj(handle, out SyncObj? s) ? s : throw new InvalidOperationException($"no syncobj {handle}");

    private static FenceSource Pending() => new(FenceContext.Allocate(), 1);

    // ------------------------------------------------------------------ CREATE / DESTROY / handles

    [Fact]
    public void Create_HandsOutHandlesFromOne_ReusingTheLowestFree_AndChecksItsFlags()
    {
        uint a = Create(), b = Create(DrmSyncobjFlags.CreateSignaled), c = Create();
        var destroy = new DrmSyncobjDestroy { Handle = b };
        Assert.Equal(0, _drm.SyncobjDestroy(ref destroy));
        uint reused = Create();
        var bad = new DrmSyncobjCreate { Flags = 2 };

        Assert.Equal([1u, 2u, 3u, 2u], [a, b, c, reused]);
        Assert.Null(Obj(a).Fence);
        Assert.Equal(-Errno.EINVAL, _drm.SyncobjCreate(ref bad));
        Assert.Equal(0u, bad.Handle);
        Assert.False(_drm.TryGetSyncObj(4, out _)); // the failed create allocated nothing
    }

    [Fact]
    public void Create_Signaled_StartsWithASignalledFence()
    {
        uint h = Create(DrmSyncobjFlags.CreateSignaled);
        Assert.True(Obj(h).Fence!.IsSignaled);
    }

    [Fact]
    public void Destroy_PadThenUnknownHandle_AreEinval_HandleZeroToo()
    {
        uint h = Create();
        var pad = new DrmSyncobjDestroy { Handle = h, Pad = 1 };
        var zero = new DrmSyncobjDestroy { Handle = 0 };
        var unknown = new DrmSyncobjDestroy { Handle = 99 };

        Assert.Equal(-Errno.EINVAL, _drm.SyncobjDestroy(ref pad));
        Assert.True(_drm.TryGetSyncObj(h, out _)); // the pad check left it alone
        Assert.Equal(-Errno.EINVAL, _drm.SyncobjDestroy(ref zero));
        Assert.Equal(-Errno.EINVAL, _drm.SyncobjDestroy(ref unknown));
        var ok = new DrmSyncobjDestroy { Handle = h };
        Assert.Equal(0, _drm.SyncobjDestroy(ref ok));
        Assert.Equal(-Errno.EINVAL, _drm.SyncobjDestroy(ref ok)); // twice: now unknown
    }

    [Fact]
    public void WithoutTheDriverFeature_EveryIoctlIsEopnotsupp()
    {
        var none = new DrmFile(_files, DrmDriverFeatures.None);
        var binaryOnly = new DrmFile(_files, DrmDriverFeatures.Syncobj);
        var create = new DrmSyncobjCreate();
        var destroy = new DrmSyncobjDestroy { Handle = 1 };
        var h2f = new DrmSyncobjHandle { Handle = 1 };
        var f2h = new DrmSyncobjHandle { Fd = 3 };
        Assert.Equal(0, binaryOnly.SyncobjCreate(ref create));
        var ev = new DrmSyncobjEventfd { Handle = create.Handle, Fd = _files.CreateEventFd() };

        Assert.Equal(-Errno.EOPNOTSUPP, none.SyncobjCreate(ref create));
        Assert.Equal(-Errno.EOPNOTSUPP, none.SyncobjDestroy(ref destroy));
        Assert.Equal(-Errno.EOPNOTSUPP, none.SyncobjHandleToFd(ref h2f));
        Assert.Equal(-Errno.EOPNOTSUPP, none.SyncobjFdToHandle(ref f2h));
        Assert.Equal(-Errno.EOPNOTSUPP, none.SyncobjWait([1], 0, 0, out _));
        Assert.Equal(-Errno.EOPNOTSUPP, none.SyncobjReset([1], 0));
        Assert.Equal(-Errno.EOPNOTSUPP, none.SyncobjSignal([1], 0));
        // The timeline ioctls need DRIVER_SYNCOBJ_TIMELINE; DRIVER_SYNCOBJ is not enough.
        Assert.Equal(-Errno.EOPNOTSUPP, binaryOnly.SyncobjEventfd(ref ev));
        Assert.Equal(-Errno.EOPNOTSUPP, binaryOnly.SyncobjQuery([create.Handle], new ulong[1], 0));
        Assert.Equal(-Errno.EOPNOTSUPP, binaryOnly.SyncobjTimelineWait([create.Handle], [1], 0, 0, out _));
        Assert.Equal(-Errno.EOPNOTSUPP, binaryOnly.SyncobjTimelineSignal([create.Handle], [1], 0));
        Assert.Equal(-Errno.EOPNOTSUPP, binaryOnly.SyncobjTransfer(create.Handle, 0, create.Handle, 1, 0, 0));
    }

    // ------------------------------------------------------------------ HANDLE_TO_FD / FD_TO_HANDLE

    [Fact]
    public void HandleToFd_ThenFdToHandle_GivesANewHandleToTheSameSyncobj()
    {
        uint h = Create();
        var export = new DrmSyncobjHandle { Handle = h };
        Assert.Equal(0, _drm.SyncobjHandleToFd(ref export));
        var import = new DrmSyncobjHandle { Fd = export.Fd };
        Assert.Equal(0, _drm.SyncobjFdToHandle(ref import));
        var again = new DrmSyncobjHandle { Fd = export.Fd };
        Assert.Equal(0, _drm.SyncobjFdToHandle(ref again));

        Assert.NotEqual(h, import.Handle);
        Assert.NotEqual(import.Handle, again.Handle); // no de-duplication
        Assert.Same(Obj(h), Obj(import.Handle));

        // Another DRM file on the same process imports it too: a cross-file share of one syncobj.
        var other = new DrmFile(_files);
        var there = new DrmSyncobjHandle { Fd = export.Fd };
        Assert.Equal(0, other.SyncobjFdToHandle(ref there));
        Assert.True(other.TryGetSyncObj(there.Handle, out SyncObj? shared));
        Assert.Same(Obj(h), shared);
    }

    [Fact]
    public void HandleToFd_PadIsCheckedBeforeFlags_AndBothAreEinval()
    {
        uint h = Create();
        var padAndFlags = new DrmSyncobjHandle { Handle = h, Pad = 1, Flags = 0x80 };
        var flags = new DrmSyncobjHandle { Handle = h, Flags = 0x80 };
        int open = _files.Count;

        Assert.Equal(-Errno.EINVAL, _drm.SyncobjHandleToFd(ref padAndFlags));
        Assert.Equal(-Errno.EINVAL, _drm.SyncobjHandleToFd(ref flags));
        Assert.Equal(open, _files.Count); // no descriptor was left behind
    }

    [Fact]
    public void HandleToFd_PlainExport_UnknownHandleIsEinval_AndAPointNeedsTheSyncFileFlag()
    {
        uint h = Create();
        var unknown = new DrmSyncobjHandle { Handle = 42 };
        var zero = new DrmSyncobjHandle { Handle = 0 };
        var pointed = new DrmSyncobjHandle { Handle = h, Flags = DrmSyncobjFlags.Timeline, Point = 3 };
        var ignored = new DrmSyncobjHandle { Handle = h, Point = 3 }; // no TIMELINE flag: point unused
        int open = _files.Count;

        Assert.Equal(-Errno.EINVAL, _drm.SyncobjHandleToFd(ref unknown));
        Assert.Equal(-Errno.EINVAL, _drm.SyncobjHandleToFd(ref zero));
        Assert.Equal(-Errno.EINVAL, _drm.SyncobjHandleToFd(ref pointed));
        Assert.Equal(open, _files.Count);
        Assert.Equal(0, _drm.SyncobjHandleToFd(ref ignored));
    }

    [Fact]
    public void HandleToFd_SyncFileExport_UnknownIsEnoent_NothingSubmittedIsEinval_UnsubmittedPointIsEinval()
    {
        uint empty = Create();
        uint binary = Create();
        Obj(binary).Replace(Pending());
        uint timeline = Create();
        _ = Obj(timeline).AddPoint(2, Pending());
        var unknown = new DrmSyncobjHandle { Handle = 77, Flags = DrmSyncobjFlags.ExportSyncFile };
        var none = new DrmSyncobjHandle { Handle = empty, Flags = DrmSyncobjFlags.ExportSyncFile };
        var binaryPoint = new DrmSyncobjHandle { Handle = binary, Flags = DrmSyncobjFlags.ExportSyncFile | DrmSyncobjFlags.Timeline, Point = 1 };
        var later = new DrmSyncobjHandle { Handle = timeline, Flags = DrmSyncobjFlags.ExportSyncFile | DrmSyncobjFlags.Timeline, Point = 3 };
        int open = _files.Count;

        Assert.Equal(-Errno.ENOENT, _drm.SyncobjHandleToFd(ref unknown));
        Assert.Equal(-Errno.EINVAL, _drm.SyncobjHandleToFd(ref none));
        Assert.Equal(-Errno.EINVAL, _drm.SyncobjHandleToFd(ref binaryPoint));
        Assert.Equal(-Errno.EINVAL, _drm.SyncobjHandleToFd(ref later));
        Assert.Equal(open, _files.Count); // each reserved descriptor was released
    }

    [Fact]
    public void HandleToFd_SyncFileExport_IsASnapshotOfThePointsFence()
    {
        uint h = Create();
        FenceSource p1 = Pending(), p2 = Pending();
        _ = Obj(h).AddPoint(1, p1);
        _ = Obj(h).AddPoint(2, p2);
        var export = new DrmSyncobjHandle { Handle = h, Flags = DrmSyncobjFlags.ExportSyncFile | DrmSyncobjFlags.Timeline, Point = 1 };
        Assert.Equal(0, _drm.SyncobjHandleToFd(ref export));
        Assert.True(_files.TryGetSyncFile(export.Fd, out SyncFile? file));
        Obj(h).Reset();

        p1.Signal();
        Assert.True(file.Poll()); // point 1 is done; point 2 is not needed, and the reset did not matter
    }

    [Fact]
    public void HandleToFd_FullDescriptorTable_IsEmfile_BeforeTheHandleIsLookedUp()
    {
        var files = new FileTable(maxFiles: 1);
        var drm = new DrmFile(files);
        var create = new DrmSyncobjCreate();
        Assert.Equal(0, drm.SyncobjCreate(ref create));
        Assert.True(files.CreateEventFd() >= FileTable.FirstFd);
        var export = new DrmSyncobjHandle { Handle = 999, Flags = DrmSyncobjFlags.ExportSyncFile };
        var plain = new DrmSyncobjHandle { Handle = create.Handle };

        Assert.Equal(-Errno.EMFILE, drm.SyncobjHandleToFd(ref export)); // not ENOENT: the fd comes first
        Assert.Equal(-Errno.EMFILE, drm.SyncobjHandleToFd(ref plain));
    }

    [Fact]
    public void FdToHandle_PadFlagsAndPoint_AreEinval()
    {
        uint h = Create();
        var export = new DrmSyncobjHandle { Handle = h };
        Assert.Equal(0, _drm.SyncobjHandleToFd(ref export));
        var pad = new DrmSyncobjHandle { Fd = export.Fd, Pad = 1 };
        var flags = new DrmSyncobjHandle { Fd = export.Fd, Flags = 4 };
        var point = new DrmSyncobjHandle { Fd = export.Fd, Flags = DrmSyncobjFlags.Timeline, Point = 1 };

        Assert.Equal(-Errno.EINVAL, _drm.SyncobjFdToHandle(ref pad));
        Assert.Equal(-Errno.EINVAL, _drm.SyncobjFdToHandle(ref flags));
        Assert.Equal(-Errno.EINVAL, _drm.SyncobjFdToHandle(ref point));
        Assert.False(_drm.TryGetSyncObj(h + 1, out _)); // no handle was allocated
    }

    [Fact]
    public void FdToHandle_BadDescriptors_AreEinval_NotEbadf()
    {
        int eventFd = _files.CreateEventFd();
        int syncFile = _files.Install(new SyncFile(Pending()));
        var closed = new DrmSyncobjHandle { Fd = 500 };
        var stdin = new DrmSyncobjHandle { Fd = 0 };
        var notASyncobj = new DrmSyncobjHandle { Fd = eventFd };
        var aSyncFile = new DrmSyncobjHandle { Fd = syncFile };
        var importFromEventFd = new DrmSyncobjHandle { Fd = eventFd, Handle = Create(), Flags = DrmSyncobjFlags.ImportSyncFile };

        Assert.Equal(-Errno.EINVAL, _drm.SyncobjFdToHandle(ref closed));
        Assert.Equal(-Errno.EINVAL, _drm.SyncobjFdToHandle(ref stdin));
        Assert.Equal(-Errno.EINVAL, _drm.SyncobjFdToHandle(ref notASyncobj));
        Assert.Equal(-Errno.EINVAL, _drm.SyncobjFdToHandle(ref aSyncFile)); // a sync file without the import flag
        Assert.Equal(-Errno.EINVAL, _drm.SyncobjFdToHandle(ref importFromEventFd));
    }

    [Fact]
    public void FdToHandle_SyncFileImport_ReplacesAtPointZero_AddsAPointOtherwise_UnknownTargetIsEnoent()
    {
        uint h = Create();
        FenceSource f = Pending(), g = Pending();
        int fdF = _files.Install(new SyncFile(f));
        int fdG = _files.Install(new SyncFile(g));
        var replace = new DrmSyncobjHandle { Handle = h, Fd = fdF, Flags = DrmSyncobjFlags.ImportSyncFile };
        var point = new DrmSyncobjHandle { Handle = h, Fd = fdG, Flags = DrmSyncobjFlags.ImportSyncFile | DrmSyncobjFlags.Timeline, Point = 5 };
        var missing = new DrmSyncobjHandle { Handle = 404, Fd = fdF, Flags = DrmSyncobjFlags.ImportSyncFile };
        var badFdFirst = new DrmSyncobjHandle { Handle = 404, Fd = 999, Flags = DrmSyncobjFlags.ImportSyncFile };

        Assert.Equal(0, _drm.SyncobjFdToHandle(ref replace));
        Assert.Same(f, Obj(h).Fence);
        Assert.Equal(0, _drm.SyncobjFdToHandle(ref point));
        Assert.Equal(5UL, Obj(h).QueryPoint(lastSubmitted: true));
        Assert.Same(g, FenceChain.Contained(Obj(h).Fence));
        Assert.Equal(-Errno.ENOENT, _drm.SyncobjFdToHandle(ref missing));
        Assert.Equal(-Errno.EINVAL, _drm.SyncobjFdToHandle(ref badFdFirst)); // the fd is checked before the handle
        Assert.True(_files.TryGetSyncFile(fdF, out _)); // the caller still owns the sync file's fd
    }

    // ------------------------------------------------------------------ EVENTFD

    private int Eventfd(uint handle, ulong point, uint flags, out EventFd eventFd)
    {
        int fd = _files.CreateEventFd();
        Assert.True(_files.TryGetEventFd(fd, out EventFd? ev));
        eventFd = ev;
        var args = new DrmSyncobjEventfd { Handle = handle, Point = point, Flags = flags, Fd = fd };
        return _drm.SyncobjEventfd(ref args);
    }

    [Fact]
    public void Eventfd_BadInput_FlagsBeforePad_UnknownHandleEnoent_ClosedFdEbadf_OtherFileEinval()
    {
        uint h = Create();
        int fd = _files.CreateEventFd();
        int notEventFd = _files.Install(new SyncFile(Pending()));
        var flagsAndPad = new DrmSyncobjEventfd { Handle = h, Fd = fd, Flags = DrmSyncobjFlags.WaitAll, Pad = 1 };
        var waitForSubmit = new DrmSyncobjEventfd { Handle = h, Fd = fd, Flags = DrmSyncobjFlags.WaitForSubmit };
        var pad = new DrmSyncobjEventfd { Handle = h, Fd = fd, Pad = 1 };
        var unknown = new DrmSyncobjEventfd { Handle = 0, Fd = 999 };
        var closed = new DrmSyncobjEventfd { Handle = h, Fd = 999 };
        var other = new DrmSyncobjEventfd { Handle = h, Fd = notEventFd };

        Assert.Equal(-Errno.EINVAL, _drm.SyncobjEventfd(ref flagsAndPad));
        Assert.Equal(-Errno.EINVAL, _drm.SyncobjEventfd(ref waitForSubmit));
        Assert.Equal(-Errno.EINVAL, _drm.SyncobjEventfd(ref pad));
        Assert.Equal(-Errno.ENOENT, _drm.SyncobjEventfd(ref unknown)); // the handle is checked before the fd
        Assert.Equal(-Errno.EBADF, _drm.SyncobjEventfd(ref closed));
        Assert.Equal(-Errno.EINVAL, _drm.SyncobjEventfd(ref other));
        Obj(h).Signal();
        Assert.True(_files.TryGetEventFd(fd, out EventFd? ev));
        Assert.Equal(0UL, ev.Count); // none of them registered anything
    }

    [Fact]
    public void Eventfd_Binary_FiresOnceWhenTheCurrentFenceSignals_EvenWithAnError()
    {
        uint h = Create();
        FenceSource f = Pending();
        Obj(h).Replace(f);
        Assert.Equal(0, Eventfd(h, 0, 0, out EventFd ev));
        ulong before = ev.Count;

        f.Signal(-Errno.EIO);
        Obj(h).Signal(); // later changes do not fire it again

        Assert.Equal(0UL, before);
        Assert.Equal(1UL, ev.Count);
        Assert.Equal(0, ev.Read(out ulong value));
        Assert.Equal(1UL, value);
        Assert.Equal(-Errno.EAGAIN, ev.Read(out _));
    }

    [Fact]
    public void Eventfd_AlreadySatisfied_FiresDuringTheCall()
    {
        uint h = Create(DrmSyncobjFlags.CreateSignaled);
        Assert.Equal(0, Eventfd(h, 0, 0, out EventFd ev));
        Assert.Equal(1UL, ev.Count);
    }

    [Fact]
    public void Eventfd_BoundToTheFenceSubmittedFirst_NotAffectedByALaterReplace()
    {
        uint h = Create(); // nothing submitted: pending until the first fence
        Assert.Equal(0, Eventfd(h, 0, 0, out EventFd ev));
        FenceSource first = Pending(), second = Pending();
        Obj(h).Replace(first);
        Obj(h).Replace(second);

        second.Signal();
        ulong afterSecond = ev.Count;
        first.Signal();

        Assert.Equal(0UL, afterSecond);
        Assert.Equal(1UL, ev.Count);
    }

    [Fact]
    public void Eventfd_ResetWhilePending_KeepsItPending()
    {
        uint h = Create();
        Assert.Equal(0, Eventfd(h, 0, 0, out EventFd ev));
        Obj(h).Reset();
        ulong afterReset = ev.Count;
        Obj(h).Signal();

        Assert.Equal(0UL, afterReset);
        Assert.Equal(1UL, ev.Count);
    }

    [Fact]
    public void Eventfd_Timeline_WaitsForThePointsSubmissionThenItsSignal()
    {
        uint h = Create();
        Assert.Equal(0, Eventfd(h, 3, 0, out EventFd ev));
        FenceSource p2 = Pending(), p3 = Pending();
        _ = Obj(h).AddPoint(2, p2);
        p2.Signal();
        ulong afterTwo = ev.Count;
        _ = Obj(h).AddPoint(3, p3);
        ulong afterSubmit = ev.Count;
        p3.Signal();

        Assert.Equal(0UL, afterTwo);
        Assert.Equal(0UL, afterSubmit);
        Assert.Equal(1UL, ev.Count);
    }

    [Fact]
    public void Eventfd_WaitAvailable_FiresOnSubmission_BeforeTheSignal()
    {
        uint h = Create();
        Assert.Equal(0, Eventfd(h, 2, DrmSyncobjFlags.WaitAvailable, out EventFd ev));
        Obj(h).Replace(Pending()); // a binary fence does not make point 2 available
        ulong afterBinary = ev.Count;
        _ = Obj(h).AddPoint(2, Pending());

        Assert.Equal(0UL, afterBinary);
        Assert.Equal(1UL, ev.Count);
        Assert.True(ev.Wait(TimeSpan.Zero));
    }

    // ------------------------------------------------------------------ QUERY and the array ioctls

    [Fact]
    public void Query_LastSubmittedAndLastSignalled_AndItsErrors()
    {
        uint t = Create(), binary = Create(DrmSyncobjFlags.CreateSignaled), empty = Create();
        FenceSource p1 = Pending(), p2 = Pending();
        _ = Obj(t).AddPoint(1, p1);
        _ = Obj(t).AddPoint(2, p2);
        p1.Signal();
        var points = new ulong[3];
        var last = new ulong[3];

        Assert.Equal(0, _drm.SyncobjQuery([t, binary, empty], points, 0));
        Assert.Equal(0, _drm.SyncobjQuery([t, binary, empty], last, DrmSyncobjFlags.QueryLastSubmitted));
        Assert.Equal([1UL, 0, 0], points);
        Assert.Equal([2UL, 0, 0], last);

        var untouched = new ulong[] { 7, 7 };
        Assert.Equal(-Errno.EINVAL, _drm.SyncobjQuery([t], new ulong[1], 2)); // bit 1 is not a query flag
        Assert.Equal(-Errno.EINVAL, _drm.SyncobjQuery([], [], 0));
        Assert.Equal(-Errno.ENOENT, _drm.SyncobjQuery([t, 0], untouched, 0));
        Assert.Equal([7UL, 7], untouched); // nothing written before the unknown handle was found
    }

    [Fact]
    public void ArrayIoctls_UnknownHandleIsEnoent_BadFlagsEinval_TimeoutEtime_AndNothingChanges()
    {
        uint a = Create();
        FenceSource f = Pending();
        Obj(a).Replace(f);

        Assert.Equal(-Errno.ENOENT, _drm.SyncobjReset([a, 9], 0));
        Assert.Same(f, Obj(a).Fence); // the unknown handle stopped the reset of a too
        Assert.Equal(-Errno.EINVAL, _drm.SyncobjReset([a], 1));
        Assert.Equal(-Errno.ENOENT, _drm.SyncobjSignal([9], 0));
        Assert.Equal(-Errno.EINVAL, _drm.SyncobjWait([a], 0, DrmSyncobjFlags.WaitAvailable, out _));
        Assert.Equal(-Errno.ETIME, _drm.SyncobjWait([a], 0, 0, out uint none));
        Assert.Equal(uint.MaxValue, none);
        Assert.Equal(-Errno.ENOENT, _drm.SyncobjTimelineWait([a, 9], [0, 0], 0, 0, out _));
        Assert.Equal(-Errno.EINVAL, _drm.SyncobjTimelineSignal([a], [1], 1));
        Assert.Equal(-Errno.ENOENT, _drm.SyncobjTransfer(a, 0, 9, 1, 0, 0));
        Assert.Equal(-Errno.EINVAL, _drm.SyncobjTransfer(a, 0, a, 1, 0, 1));

        f.Signal();
        Assert.Equal(0, _drm.SyncobjWait([a], 0, 0, out uint first));
        Assert.Equal(0u, first);
        Assert.Equal(0, _drm.SyncobjTimelineSignal([a], [4], 0));
        Assert.Equal(4UL, Obj(a).QueryPoint(lastSubmitted: true));
        Assert.Equal(0, _drm.SyncobjTransfer(a, 4, a, 6, 0, 0));
        Assert.Equal(6UL, Obj(a).QueryPoint(lastSubmitted: true));
    }

    [Fact]
    public void Wait_Interrupted_IsErestartsys()
    {
        uint a = Create();
        Obj(a).Replace(Pending());
        using var cts = new CancellationTokenSource();
        cts.Cancel();

        Assert.Equal(-Errno.ERESTARTSYS, _drm.SyncobjWait([a], long.MaxValue, 0, out _, cancellationToken: cts.Token));
    }

    // ------------------------------------------------------------------ the descriptor table

    [Fact]
    public void FileTable_HandsOutTheLowestFreeFromThree_AndCloseOfAnUnknownFdIsEbadf()
    {
        var files = new FileTable();
        int a = files.CreateEventFd(), b = files.CreateEventFd();
        Assert.Equal(0, files.Close(a));
        int c = files.CreateEventFd();

        Assert.Equal([3, 4, 3], [a, b, c]);
        Assert.Equal(-Errno.EBADF, files.Close(a + 10));
        Assert.Equal(-Errno.EBADF, files.Close(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FileTable(0));
    }
}
