using System.Diagnostics.CodeAnalysis;

namespace FenceCore.Uapi;

/// <summary>What the simulated DRM driver supports (<c>DRIVER_SYNCOBJ</c>, <c>DRIVER_SYNCOBJ_TIMELINE</c>).</summary>
[Flags]
public enum DrmDriverFeatures
{
    /// <summary>No syncobj support: every syncobj ioctl fails with -EOPNOTSUPP.</summary>
    None = 0,

    /// <summary><c>DRIVER_SYNCOBJ</c>: create, destroy, handle/fd conversion, binary wait, reset, signal.</summary>
    Syncobj = 1,

    /// <summary><c>DRIVER_SYNCOBJ_TIMELINE</c>: timeline wait and signal, query, transfer, eventfd.</summary>
    SyncobjTimeline = 2,
}

/// <summary>The flag values of the syncobj ioctls, as <c>include/uapi/drm/drm.h</c> defines them.</summary>
public static class DrmSyncobjFlags
{
    /// <summary><c>DRM_SYNCOBJ_CREATE_SIGNALED</c>.</summary>
    public const uint CreateSignaled = 1;

    /// <summary><c>DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE</c>.</summary>
    public const uint ExportSyncFile = 1;

    /// <summary><c>DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE</c>.</summary>
    public const uint ImportSyncFile = 1;

    /// <summary><c>DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_TIMELINE</c> and <c>DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_TIMELINE</c>:
    /// the <c>point</c> field is used.</summary>
    public const uint Timeline = 2;

    /// <summary><c>DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL</c>.</summary>
    public const uint WaitAll = 1;

    /// <summary><c>DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT</c>.</summary>
    public const uint WaitForSubmit = 2;

    /// <summary><c>DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE</c>.</summary>
    public const uint WaitAvailable = 4;

    /// <summary><c>DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE</c>.</summary>
    public const uint WaitDeadline = 8;

    /// <summary><c>DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED</c>.</summary>
    public const uint QueryLastSubmitted = 1;
}

/// <summary><c>struct drm_syncobj_create</c>.</summary>
public struct DrmSyncobjCreate
{
    /// <summary>Out: the new handle.</summary>
    public uint Handle { get; set; }

    /// <summary>In: <see cref="DrmSyncobjFlags.CreateSignaled"/> or 0.</summary>
    public uint Flags { get; set; }
}

/// <summary><c>struct drm_syncobj_destroy</c>.</summary>
public struct DrmSyncobjDestroy
{
    /// <summary>The handle to destroy.</summary>
    public uint Handle { get; set; }

    /// <summary>Must be 0.</summary>
    public uint Pad { get; set; }
}

/// <summary><c>struct drm_syncobj_handle</c>, of <c>HANDLE_TO_FD</c> and <c>FD_TO_HANDLE</c>.</summary>
public struct DrmSyncobjHandle
{
    /// <summary>The syncobj handle (out of <c>FD_TO_HANDLE</c>, except with <see cref="DrmSyncobjFlags.ImportSyncFile"/>,
    /// where it names the target).</summary>
    public uint Handle { get; set; }

    /// <summary>The export or import flags.</summary>
    public uint Flags { get; set; }

    /// <summary>The file descriptor (out of <c>HANDLE_TO_FD</c>).</summary>
    public int Fd { get; set; }

    /// <summary>Must be 0.</summary>
    public uint Pad { get; set; }

    /// <summary>The timeline point, read only with <see cref="DrmSyncobjFlags.Timeline"/>.</summary>
    public ulong Point { get; set; }
}

/// <summary><c>struct drm_syncobj_eventfd</c>.</summary>
public struct DrmSyncobjEventfd
{
    /// <summary>The syncobj handle.</summary>
    public uint Handle { get; set; }

    /// <summary><see cref="DrmSyncobjFlags.WaitAvailable"/> or 0.</summary>
    public uint Flags { get; set; }

    /// <summary>The point to watch; 0 for the binary payload.</summary>
    public ulong Point { get; set; }

    /// <summary>An eventfd of the <see cref="FileTable"/>.</summary>
    public int Fd { get; set; }

    /// <summary>Must be 0.</summary>
    public uint Pad { get; set; }
}

/// <summary>
/// A DRM file (an open render node) with its syncobj handle table: the kernel-shaped syncobj uAPI, each
/// ioctl returning 0 or the kernel's negative errno, checks in the kernel's order, and no state changed
/// by a call that fails. Follows <c>drivers/gpu/drm/drm_syncobj.c</c>.
/// </summary>
/// <remarks>
/// <para>
/// Handles are per file, start at 1 and reuse the lowest free one, as the kernel's IDR does; handle 0 is
/// never valid. An unknown handle is -EINVAL in <c>DESTROY</c> and the plain <c>HANDLE_TO_FD</c>, and
/// -ENOENT everywhere else, as in the kernel. Descriptors live in the <see cref="FileTable"/> given to the
/// constructor; a bad descriptor is -EINVAL in <c>FD_TO_HANDLE</c> and -EBADF in <c>EVENTFD</c>.
/// </para>
/// <para>
/// The handle table takes a private lock: it is not on any hot path, and the kernel's is a spinlock too.
/// The syncobjs themselves keep their lock-free reads. There is no reference count: a destroyed handle
/// stops naming its syncobj, and the syncobj lives on while an exported fd, another handle or anything
/// else still reaches it (the .NET GC drops it after the last), so a pending eventfd registration of a
/// syncobj nobody can reach never fires, as the kernel's is freed unsignalled.
/// </para>
/// </remarks>
public sealed class DrmFile
{
    private readonly object _gate = new();

    /// <summary>Slot i holds handle i + 1, or null when free. Under <see cref="_gate"/>.</summary>
    private readonly List<SyncObj?> _handles = [];

    /// <summary>Creates a DRM file whose descriptors live in <paramref name="files"/>.</summary>
    /// <param name="files">The process's descriptor table.</param>
    /// <param name="features">What the driver supports; both syncobj features by default.</param>
    /// <exception cref="ArgumentNullException"><paramref name="files"/> is null.</exception>
    public DrmFile(FileTable files, DrmDriverFeatures features = DrmDriverFeatures.Syncobj | DrmDriverFeatures.SyncobjTimeline)
    {
        ArgumentNullException.ThrowIfNull(files);
        Files = files;
        Features = features;
    }

    /// <summary>The descriptor table this file's fds live in.</summary>
    public FileTable Files { get; }

    /// <summary>What the driver supports.</summary>
    public DrmDriverFeatures Features { get; }

    private bool HasSyncobj => (Features & DrmDriverFeatures.Syncobj) != 0;

    private bool HasTimeline => (Features & DrmDriverFeatures.SyncobjTimeline) != 0;

    /// <summary>The syncobj a handle names. Mirrors <c>drm_syncobj_find</c>.</summary>
    public bool TryGetSyncObj(uint handle, [NotNullWhen(true)] out SyncObj? syncobj)
    {
        lock (_gate)
        {
            syncobj = handle >= 1 && handle <= _handles.Count ? _handles[(int)handle - 1] : null;
            return syncobj is not null;
        }
    }

    /// <summary>Gives <paramref name="syncobj"/> a new handle in this file. Mirrors <c>drm_syncobj_get_handle</c>.</summary>
    /// <returns>0, or -ENOSPC when every handle is in use.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="syncobj"/> is null.</exception>
    public int GetHandle(SyncObj syncobj, out uint handle)
    {
        ArgumentNullException.ThrowIfNull(syncobj);
        lock (_gate)
        {
            int free = _handles.IndexOf(null);
            if (free < 0)
            {
                if (_handles.Count == int.MaxValue)
                {
                    handle = 0;
                    return -Errno.ENOSPC;
                }

                _handles.Add(null);
                free = _handles.Count - 1;
            }

            _handles[free] = syncobj;
            handle = (uint)free + 1;
            return 0;
        }
    }

    /// <summary><c>DRM_IOCTL_SYNCOBJ_CREATE</c>.</summary>
    /// <returns>0; -EOPNOTSUPP without <see cref="DrmDriverFeatures.Syncobj"/>; -EINVAL for a flag other
    /// than <see cref="DrmSyncobjFlags.CreateSignaled"/>.</returns>
    public int SyncobjCreate(ref DrmSyncobjCreate args)
    {
        if (!HasSyncobj)
        {
            return -Errno.EOPNOTSUPP;
        }

        if ((args.Flags & ~DrmSyncobjFlags.CreateSignaled) != 0)
        {
            return -Errno.EINVAL;
        }

        int result = GetHandle(new SyncObj(signaled: (args.Flags & DrmSyncobjFlags.CreateSignaled) != 0), out uint handle);
        if (result == 0)
        {
            args.Handle = handle;
        }

        return result;
    }

    /// <summary><c>DRM_IOCTL_SYNCOBJ_DESTROY</c>.</summary>
    /// <returns>0; -EOPNOTSUPP; -EINVAL for a non-zero pad or an unknown handle (0 included).</returns>
    public int SyncobjDestroy(ref DrmSyncobjDestroy args)
    {
        if (!HasSyncobj)
        {
            return -Errno.EOPNOTSUPP;
        }

        if (args.Pad != 0)
        {
            return -Errno.EINVAL;
        }

        lock (_gate)
        {
            uint h = args.Handle;
            if (h < 1 || h > _handles.Count || _handles[(int)h - 1] is null)
            {
                return -Errno.EINVAL;
            }

            _handles[(int)h - 1] = null;
            return 0;
        }
    }

    /// <summary>
    /// <c>DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD</c>: a syncobj fd naming the same syncobj, or with
    /// <see cref="DrmSyncobjFlags.ExportSyncFile"/> a sync file holding the fence of the point as it is now.
    /// </summary>
    /// <returns>0 with <see cref="DrmSyncobjHandle.Fd"/> set; -EOPNOTSUPP; -EINVAL for a non-zero pad
    /// (checked first), unknown flags, a point without the sync-file flag, an unknown handle (plain export),
    /// nothing submitted or an unsubmitted point (sync-file export); -ENOENT for an unknown handle
    /// (sync-file export); -EMFILE when the descriptor table is full (before the handle is looked up).</returns>
    public int SyncobjHandleToFd(ref DrmSyncobjHandle args)
    {
        if (!HasSyncobj)
        {
            return -Errno.EOPNOTSUPP;
        }

        if (args.Pad != 0)
        {
            return -Errno.EINVAL;
        }

        if ((args.Flags & ~(DrmSyncobjFlags.ExportSyncFile | DrmSyncobjFlags.Timeline)) != 0)
        {
            return -Errno.EINVAL;
        }

        ulong point = (args.Flags & DrmSyncobjFlags.Timeline) != 0 ? args.Point : 0;
        if ((args.Flags & DrmSyncobjFlags.ExportSyncFile) != 0)
        {
            int fd = Files.InstallObject(Reserved.Instance); // the kernel reserves the fd first
            if (fd < 0)
            {
                return fd;
            }

            Fence? fence = null;
            int error = !TryGetSyncObj(args.Handle, out SyncObj? source) ? -Errno.ENOENT
                : !source.TryFindFence(point, out fence) ? -Errno.EINVAL
                : 0;
            if (error != 0)
            {
                Files.Close(fd);
                return error;
            }

            Files.Fill(fd, new SyncFile(fence!));
            args.Fd = fd;
            return 0;
        }

        if (point != 0)
        {
            return -Errno.EINVAL;
        }

        if (!TryGetSyncObj(args.Handle, out SyncObj? syncobj))
        {
            return -Errno.EINVAL;
        }

        int file = Files.InstallObject(new SyncObjFile(syncobj));
        if (file < 0)
        {
            return file;
        }

        args.Fd = file;
        return 0;
    }

    /// <summary>
    /// <c>DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE</c>: a new handle for the syncobj of a syncobj fd (a round trip
    /// through <see cref="SyncobjHandleToFd"/> names the same syncobj again), or with
    /// <see cref="DrmSyncobjFlags.ImportSyncFile"/> the sync file's fence put into the syncobj that
    /// <see cref="DrmSyncobjHandle.Handle"/> names: replacing its fence at point 0, as a new timeline point
    /// otherwise.
    /// </summary>
    /// <returns>0; -EOPNOTSUPP; -EINVAL for a non-zero pad, unknown flags, a point without the sync-file
    /// flag, or a descriptor that is not open or not of the right kind (sync file, or syncobj file); -ENOENT
    /// for an unknown target handle (sync-file import, checked after the descriptor); -ENOSPC when every
    /// handle is in use.</returns>
    public int SyncobjFdToHandle(ref DrmSyncobjHandle args)
    {
        if (!HasSyncobj)
        {
            return -Errno.EOPNOTSUPP;
        }

        if (args.Pad != 0)
        {
            return -Errno.EINVAL;
        }

        if ((args.Flags & ~(DrmSyncobjFlags.ImportSyncFile | DrmSyncobjFlags.Timeline)) != 0)
        {
            return -Errno.EINVAL;
        }

        ulong point = (args.Flags & DrmSyncobjFlags.Timeline) != 0 ? args.Point : 0;
        if ((args.Flags & DrmSyncobjFlags.ImportSyncFile) != 0)
        {
            if (!Files.TryGetSyncFile(args.Fd, out SyncFile? file))
            {
                return -Errno.EINVAL;
            }

            if (!TryGetSyncObj(args.Handle, out SyncObj? target))
            {
                return -Errno.ENOENT;
            }

            target.ImportSyncFile(file, point);
            return 0;
        }

        if (point != 0)
        {
            return -Errno.EINVAL;
        }

        if (Files.Resolve(args.Fd) is not SyncObjFile syncobjFile)
        {
            return -Errno.EINVAL;
        }

        int result = GetHandle(syncobjFile.SyncObj, out uint handle);
        if (result == 0)
        {
            args.Handle = handle;
        }

        return result;
    }

    /// <summary>
    /// <c>DRM_IOCTL_SYNCOBJ_EVENTFD</c>: adds 1 to the eventfd once, when the point is available (with
    /// <see cref="DrmSyncobjFlags.WaitAvailable"/>) or when the fence submitted for it has signalled. A
    /// condition already met fires during the call. Once a fence has been submitted for the point the
    /// registration follows that fence: replacing or resetting the syncobj later does not change it.
    /// </summary>
    /// <returns>0; -EOPNOTSUPP without <see cref="DrmDriverFeatures.SyncobjTimeline"/>; -EINVAL for a flag
    /// other than <see cref="DrmSyncobjFlags.WaitAvailable"/> (checked before the pad), a non-zero pad, or a
    /// descriptor that is not an eventfd; -ENOENT for an unknown handle; -EBADF for a descriptor that is not
    /// open.</returns>
    public int SyncobjEventfd(ref DrmSyncobjEventfd args)
    {
        if (!HasTimeline)
        {
            return -Errno.EOPNOTSUPP;
        }

        if ((args.Flags & ~DrmSyncobjFlags.WaitAvailable) != 0)
        {
            return -Errno.EINVAL;
        }

        if (args.Pad != 0)
        {
            return -Errno.EINVAL;
        }

        if (!TryGetSyncObj(args.Handle, out SyncObj? syncobj))
        {
            return -Errno.ENOENT;
        }

        object? file = Files.Resolve(args.Fd);
        if (file is null)
        {
            return -Errno.EBADF;
        }

        if (file is not EventFd eventFd)
        {
            return -Errno.EINVAL;
        }

        syncobj.AddEventFd(args.Point, (args.Flags & DrmSyncobjFlags.WaitAvailable) != 0, eventFd);
        return 0;
    }

    /// <summary>
    /// <c>DRM_IOCTL_SYNCOBJ_QUERY</c>: for each handle, the last signalled point (an unbroken run from the
    /// start), or with <see cref="DrmSyncobjFlags.QueryLastSubmitted"/> the last submitted point; 0 for a
    /// syncobj with no fence or a binary fence.
    /// </summary>
    /// <returns>0; -EOPNOTSUPP without <see cref="DrmDriverFeatures.SyncobjTimeline"/>; -EINVAL for unknown
    /// flags, no handles, or a points span of another length; -ENOENT for an unknown handle, before anything
    /// is written.</returns>
    public int SyncobjQuery(ReadOnlySpan<uint> handles, Span<ulong> points, uint flags)
    {
        if (!HasTimeline)
        {
            return -Errno.EOPNOTSUPP;
        }

        try
        {
            SyncObj.Query(Find(handles), points, (SyncObjQueryOptions)flags); // checks every handle before writing
            return 0;
        }
        catch (FenceErrnoException ex)
        {
            return ex.Errno;
        }
    }

    /// <summary><c>DRM_IOCTL_SYNCOBJ_WAIT</c>: waits for the current fence of each handle, all of them with
    /// <see cref="DrmSyncobjFlags.WaitAll"/>, else any one.</summary>
    /// <param name="handles">The handles.</param>
    /// <param name="timeoutNsec">Absolute <see cref="FenceClock"/> time to give up at (<c>timeout_nsec</c>).</param>
    /// <param name="flags">Wait flags; <see cref="DrmSyncobjFlags.WaitAvailable"/> is not allowed here.</param>
    /// <param name="firstSignaled">The first signalled index, or <see cref="uint.MaxValue"/> (~0) for none.</param>
    /// <param name="deadlineNsec">With <see cref="DrmSyncobjFlags.WaitDeadline"/>, the deadline hint.</param>
    /// <param name="cancellationToken">Interrupts the wait.</param>
    /// <returns>0; -EOPNOTSUPP; -EINVAL for bad flags or a missing fence without wait-for-submit; -ENOENT for
    /// an unknown handle; -ETIME on timeout; -ERESTARTSYS when interrupted.</returns>
    public int SyncobjWait(ReadOnlySpan<uint> handles, long timeoutNsec, uint flags, out uint firstSignaled, long deadlineNsec = 0, CancellationToken cancellationToken = default)
    {
        Span<ulong> zeros = handles.Length <= 64 ? stackalloc ulong[handles.Length] : new ulong[handles.Length];
        zeros.Clear();
        firstSignaled = uint.MaxValue;
        if (!HasSyncobj)
        {
            return -Errno.EOPNOTSUPP;
        }

        if ((flags & DrmSyncobjFlags.WaitAvailable) != 0)
        {
            return -Errno.EINVAL;
        }

        return WaitCore(handles, zeros, timeoutNsec, flags, out firstSignaled, deadlineNsec, cancellationToken);
    }

    /// <summary><c>DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT</c>: waits for point <c>points[i]</c> of each handle.</summary>
    /// <param name="handles">The handles.</param>
    /// <param name="points">One point per handle (0: the current fence).</param>
    /// <param name="timeoutNsec">Absolute <see cref="FenceClock"/> time to give up at (<c>timeout_nsec</c>).</param>
    /// <param name="flags">Wait flags.</param>
    /// <param name="firstSignaled">The first signalled index, or <see cref="uint.MaxValue"/> (~0) for none.</param>
    /// <param name="deadlineNsec">With <see cref="DrmSyncobjFlags.WaitDeadline"/>, the deadline hint.</param>
    /// <param name="cancellationToken">Interrupts the wait.</param>
    /// <returns>0; -EOPNOTSUPP without <see cref="DrmDriverFeatures.SyncobjTimeline"/>; -EINVAL for bad flags,
    /// a points span of another length, or a missing point without wait-for-submit or wait-available; -ENOENT
    /// for an unknown handle; -ETIME on timeout; -ERESTARTSYS when interrupted.</returns>
    public int SyncobjTimelineWait(ReadOnlySpan<uint> handles, ReadOnlySpan<ulong> points, long timeoutNsec, uint flags, out uint firstSignaled, long deadlineNsec = 0, CancellationToken cancellationToken = default)
    {
        firstSignaled = uint.MaxValue;
        return HasTimeline
            ? WaitCore(handles, points, timeoutNsec, flags, out firstSignaled, deadlineNsec, cancellationToken)
            : -Errno.EOPNOTSUPP;
    }

    /// <summary><c>DRM_IOCTL_SYNCOBJ_RESET</c>: sets each handle's fence to none.</summary>
    /// <returns>0; -EOPNOTSUPP; -EINVAL for a non-zero pad or no handles; -ENOENT for an unknown handle
    /// (nothing changed).</returns>
    public int SyncobjReset(ReadOnlySpan<uint> handles, uint pad)
    {
        if (!HasSyncobj)
        {
            return -Errno.EOPNOTSUPP;
        }

        SyncObj?[] syncobjs = Find(handles);
        return Errnos(() => SyncObj.ResetIoctl(syncobjs, pad));
    }

    /// <summary><c>DRM_IOCTL_SYNCOBJ_SIGNAL</c>: gives each handle a signalled stub.</summary>
    /// <returns>0; -EOPNOTSUPP; -EINVAL for a non-zero pad or no handles; -ENOENT for an unknown handle
    /// (nothing changed).</returns>
    public int SyncobjSignal(ReadOnlySpan<uint> handles, uint pad)
    {
        if (!HasSyncobj)
        {
            return -Errno.EOPNOTSUPP;
        }

        SyncObj?[] syncobjs = Find(handles);
        return Errnos(() => SyncObj.SignalIoctl(syncobjs, pad));
    }

    /// <summary><c>DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL</c>: adds a signalled point to each handle (0: replaces
    /// the fence with a signalled stub).</summary>
    /// <returns>0; -EOPNOTSUPP without <see cref="DrmDriverFeatures.SyncobjTimeline"/>; -EINVAL for flags, no
    /// handles or a points span of another length; -ENOENT for an unknown handle (nothing changed).</returns>
    public int SyncobjTimelineSignal(ReadOnlySpan<uint> handles, ReadOnlySpan<ulong> points, uint flags)
    {
        if (!HasTimeline)
        {
            return -Errno.EOPNOTSUPP;
        }

        SyncObj?[] syncobjs = Find(handles);
        ulong[] copy = points.ToArray();
        return Errnos(() => SyncObj.TimelineSignalIoctl(syncobjs, copy, flags));
    }

    /// <summary><c>DRM_IOCTL_SYNCOBJ_TRANSFER</c>: copies the fence of a source point to a destination point.</summary>
    /// <returns>0; -EOPNOTSUPP without <see cref="DrmDriverFeatures.SyncobjTimeline"/>; -EINVAL for bad flags,
    /// a non-zero pad or a missing source point; -ENOENT for an unknown source or destination handle.</returns>
    public int SyncobjTransfer(uint srcHandle, ulong srcPoint, uint dstHandle, ulong dstPoint, uint flags, uint pad)
    {
        if (!HasTimeline)
        {
            return -Errno.EOPNOTSUPP;
        }

        TryGetSyncObj(srcHandle, out SyncObj? src);
        TryGetSyncObj(dstHandle, out SyncObj? dst);
        return Errnos(() => SyncObj.TransferIoctl(src, srcPoint, dst, dstPoint, (SyncObjWaitOptions)flags, pad));
    }

    private int WaitCore(ReadOnlySpan<uint> handles, ReadOnlySpan<ulong> points, long timeoutNsec, uint flags, out uint firstSignaled, long deadlineNsec, CancellationToken cancellationToken)
    {
        firstSignaled = uint.MaxValue;
        SyncObj?[] syncobjs = Find(handles);
        try
        {
            bool done = SyncObj.WaitIoctl(syncobjs, points, timeoutNsec, (SyncObjWaitOptions)flags, out int first, deadlineNsec, cancellationToken);
            firstSignaled = first < 0 ? uint.MaxValue : (uint)first;
            return done ? 0 : -Errno.ETIME;
        }
        catch (FenceErrnoException ex)
        {
            return ex.Errno;
        }
        catch (OperationCanceledException)
        {
            return -Errno.ERESTARTSYS;
        }
    }

    /// <summary>Runs a throwing syncobj member and returns its errno, 0 when it succeeded.</summary>
    private static int Errnos(Action call)
    {
        try
        {
            call();
            return 0;
        }
        catch (FenceErrnoException ex)
        {
            return ex.Errno;
        }
    }

    /// <summary>Every handle's syncobj, null for an unknown one (the shared members answer -ENOENT for it).</summary>
    private SyncObj?[] Find(ReadOnlySpan<uint> handles)
    {
        var syncobjs = new SyncObj?[handles.Length];
        for (int i = 0; i < handles.Length; i++)
        {
            TryGetSyncObj(handles[i], out syncobjs[i]);
        }

        return syncobjs;
    }

    /// <summary>The file behind a syncobj fd (the kernel's anonymous "syncobj_file").</summary>
    internal sealed class SyncObjFile(SyncObj syncobj)
    {
        public SyncObj SyncObj { get; } = syncobj;
    }

    /// <summary>A descriptor reserved before the file that will fill it exists; resolves as nothing.</summary>
    internal sealed class Reserved
    {
        public static readonly Reserved Instance = new();
    }
}
