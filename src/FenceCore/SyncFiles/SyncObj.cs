using System.Diagnostics;
using System.Globalization;
using FenceCore.Internal;

namespace FenceCore;

/// <summary>Flags of <see cref="SyncObj.WaitIoctl(ReadOnlySpan{SyncObj}, ReadOnlySpan{ulong}, long, SyncObjWaitOptions, out int, long, CancellationToken)"/>
/// (<c>DRM_SYNCOBJ_WAIT_FLAGS_*</c>, same values).</summary>
[Flags]
public enum SyncObjWaitOptions
{
    /// <summary>Wait for any one syncobj (no flag set: the kernel's default).</summary>
    WaitAny = 0,

    /// <summary>Wait for every syncobj instead of any one (<c>WAIT_ALL</c>).</summary>
    WaitAll = 1,

    /// <summary>Wait for a missing fence or point to be submitted instead of failing (<c>WAIT_FOR_SUBMIT</c>).</summary>
    WaitForSubmit = 2,

    /// <summary>Complete when the fence exists, without waiting for it to signal (<c>WAIT_AVAILABLE</c>,
    /// Vulkan's wait-before-signal). Timeline waits only.</summary>
    WaitAvailable = 4,

    /// <summary>Set the given deadline on the fences waited for (<c>WAIT_DEADLINE</c>).</summary>
    WaitDeadline = 8,
}

/// <summary>The result of <c>SyncObj.WaitAsync</c>: what the blocking wait returns and reports.</summary>
/// <param name="Signaled">True when the condition was met; false when the wait timed out (-ETIME).</param>
/// <param name="FirstSignaled">For a wait-any, the lowest index found complete when the wait ended; for
/// wait-all, the lowest index already complete when it started; -1 when none (the kernel's ~0).</param>
public readonly record struct SyncObjWaitResult(bool Signaled, int FirstSignaled);

/// <summary>Flags of <see cref="SyncObj.Query"/> (<c>DRM_SYNCOBJ_QUERY_FLAGS_*</c>).</summary>
[Flags]
public enum SyncObjQueryOptions
{
    /// <summary>The highest point with everything up to it signalled.</summary>
    None = 0,

    /// <summary>The last submitted point instead (<c>LAST_SUBMITTED</c>).</summary>
    LastSubmitted = 1,
}

/// <summary>
/// A mutable pointer to a fence, used as a binary semaphore or, through chain nodes, as a timeline.
/// Mirrors <c>drm_syncobj</c> and its ioctls (wait, timeline wait, reset, signal, timeline signal,
/// query, transfer, sync-file import and export).
/// </summary>
/// <remarks>
/// <para>
/// Binary use: the fence is replaced on each submission, reset to null ("nothing submitted"), or set to
/// a signalled stub. Export to a sync file and import from one are snapshots: the sync file holds the
/// fence current at the time, and later replacements do not affect it.
/// </para>
/// <para>
/// Timeline use: <see cref="AddPoint"/> wraps a fence in a <see cref="FenceChain"/> node over the old
/// head, with the chain's context rules (a point not later than the head starts a new context; the
/// kernel logs "adding an unorder point" and so may the query then answer 0). <see cref="FindFence(ulong)"/>
/// finds the node that signals a point: a later point's producer is never needed for an earlier point,
/// because the lookup stops at the first node whose range starts below the point.
/// </para>
/// <para>
/// Readers are lock-free: the fence pointer is read with Volatile.Read, so <see cref="Fence"/>,
/// <see cref="TryFindFence"/>, queries and waits on captured fences take no lock. Writers
/// (<see cref="Replace"/>, <see cref="AddPoint"/>) take a private lock, as the kernel holds the
/// syncobj spinlock, and so do waiters for submission when they register: the lock is what lets a
/// writer hand the fence it installs to every waiter registered before it, at the moment of
/// submission, as <c>drm_syncobj_replace_fence</c> does with its wait list. Without it, a waiter that
/// woke after <c>Replace(f1)</c> could read the pointer after a later <c>Replace(null)</c> and miss f1.
/// The lock is never held while a fence signals or a callback runs.
/// </para>
/// <para>
/// Handles: the ioctl-shaped static members take spans of syncobjs where the kernel takes handles; a
/// null element is an unknown handle (-ENOENT). Every element is checked before anything changes, so a
/// failing call has no side effect. Failures throw <see cref="FenceErrnoException"/> with the kernel's
/// errno; a wait that times out returns false (the kernel's -ETIME), and cancellation throws
/// <see cref="OperationCanceledException"/> (-ERESTARTSYS).
/// </para>
/// </remarks>
public sealed class SyncObj
{
    /// <summary>How long a kernel-side lookup with <see cref="SyncObjWaitOptions.WaitForSubmit"/> waits for a
    /// point to be submitted (<c>drm_syncobj_find_fence</c>'s 5 s).</summary>
    public static readonly TimeSpan SubmitTimeout = TimeSpan.FromSeconds(5);

    private const SyncObjWaitOptions KnownWaitOptions =
        SyncObjWaitOptions.WaitAll | SyncObjWaitOptions.WaitForSubmit | SyncObjWaitOptions.WaitAvailable | SyncObjWaitOptions.WaitDeadline;

    /// <summary>
    /// The current fence, or null when nothing has been submitted. Written only under
    /// <see cref="_writeLock"/>, with Volatile.Write (a release: a chain node is fully built before it is
    /// seen); read with Volatile.Read, without the lock.
    /// </summary>
    private Fence? _fence;

    /// <summary>Guards writes of <see cref="_fence"/> and <see cref="_submitWaiters"/> (the kernel's syncobj lock).</summary>
    private readonly object _writeLock = new();

    /// <summary>Waiters for a point not yet submitted. Under <see cref="_writeLock"/>; null when none.</summary>
    private List<SubmitWaiter>? _submitWaiters;

    /// <summary>Creates a syncobj. Mirrors <c>drm_syncobj_create</c>.</summary>
    /// <param name="signaled">Start with a signalled stub (<c>DRM_SYNCOBJ_CREATE_SIGNALED</c>) instead of null.</param>
    public SyncObj(bool signaled = false)
    {
        if (signaled)
        {
            _fence = Fence.CreateSignaledStubNs(FenceClock.NowNs);
        }
    }

    /// <summary>The current fence (a chain node for a timeline), or null when nothing is submitted.</summary>
    public Fence? Fence => Volatile.Read(ref _fence); // acquire: pairs with the writers' Interlocked publication

    // ----------------------------------------------------------------------------------------------
    // Binary

    /// <summary>Replaces the fence (null for none). Mirrors <c>drm_syncobj_replace_fence</c>.</summary>
    public void Replace(Fence? fence)
    {
        List<SubmitWaiter>? captured;
        lock (_writeLock)
        {
            if (ReferenceEquals(Volatile.Read(ref _fence), fence))
            {
                return;
            }

            Volatile.Write(ref _fence, fence); // publish; the lock orders it with the waiters' registration
            captured = fence is null ? null : CaptureWaiters();
        }

        Wake(captured);
    }

    /// <summary>Sets the fence to null. Mirrors the per-object part of <c>DRM_IOCTL_SYNCOBJ_RESET</c>.</summary>
    public void Reset() => Replace(null);

    /// <summary>Installs a new signalled stub. Mirrors <c>drm_syncobj_assign_null_handle</c>
    /// (<c>DRM_IOCTL_SYNCOBJ_SIGNAL</c>).</summary>
    public void Signal() => Replace(FenceCore.Fence.CreateSignaledStubNs(FenceClock.NowNs));

    /// <summary>A sync file holding the fence of <paramref name="point"/> as it is now (0: the current
    /// fence). Mirrors <c>drm_syncobj_export_sync_file</c>.</summary>
    /// <exception cref="FenceErrnoException">-EINVAL when nothing is submitted or the point is not.</exception>
    public SyncFile ExportSyncFile(ulong point = 0) => new(FindFence(point));

    /// <summary>
    /// Takes the fence of <paramref name="file"/>: point 0 replaces the fence, another point adds it as a
    /// timeline point. Mirrors <c>drm_syncobj_import_sync_file_fence</c>.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="file"/> is null (the uAPI answers a descriptor
    /// that is not a sync file with -EINVAL).</exception>
    public void ImportSyncFile(SyncFile file, ulong point = 0)
    {
        ArgumentNullException.ThrowIfNull(file);

        if (point == 0)
        {
            Replace(file.Fence);
        }
        else
        {
            AddPoint(point, file.Fence);
        }
    }

    // ----------------------------------------------------------------------------------------------
    // Timeline

    /// <summary>
    /// Adds timeline point <paramref name="point"/> completed by <paramref name="fence"/>: a new chain node
    /// over the current fence becomes the head. Mirrors <c>drm_syncobj_add_point</c>.
    /// </summary>
    /// <remarks>
    /// A chain given as the fence is flattened first (<see cref="FenceUnwrap.Merge"/>), as the kernel's
    /// transfer does, since a chain may not contain a chain. After publishing, the old timeline is walked
    /// once to collect signalled nodes, as the kernel does.
    /// </remarks>
    /// <returns>The new head.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="point"/> is 0 (the binary payload: use
    /// <see cref="Replace"/>).</exception>
    public FenceChain AddPoint(ulong point, Fence fence)
    {
        ArgumentNullException.ThrowIfNull(fence);
        if (point == 0)
        {
            ThrowHelper.ThrowPointZero(nameof(point));
        }

        if (fence is FenceChain)
        {
            fence = FenceUnwrap.Merge(fence);
        }

        Fence? prev;
        FenceChain node;
        List<SubmitWaiter>? captured;
        lock (_writeLock)
        {
            prev = Volatile.Read(ref _fence);
            node = new FenceChain(prev, fence, point);
            Volatile.Write(ref _fence, node); // publish the fully built node
            captured = CaptureWaiters();
        }

        Wake(captured);
        foreach (Fence _ in FenceChain.ForEach(prev))
        {
            // Walking collects the signalled nodes of the old timeline.
        }

        return node;
    }

    /// <summary>
    /// The fence to wait on for <paramref name="point"/>: point 0 gives the current fence; otherwise the
    /// chain node that signals the point, or the signalled stub when the point has already signalled.
    /// Mirrors <c>drm_syncobj_find_fence</c> without waiting.
    /// </summary>
    /// <returns>False when nothing is submitted, the fence is not a timeline, or the point is later than
    /// the last submitted one (the kernel's -EINVAL).</returns>
    public bool TryFindFence(ulong point, out Fence? fence)
    {
        Fence? current = Volatile.Read(ref _fence); // acquire: see the published node fully built
        if (current is not null && FenceChain.TryFindSeqno(current, point, out Fence? found))
        {
            fence = found ?? FenceCore.Fence.Stub;
            return true;
        }

        fence = null;
        return false;
    }

    /// <summary>As <see cref="TryFindFence"/>, failing with the kernel's error.</summary>
    /// <exception cref="FenceErrnoException">-EINVAL when the point (or any fence, for point 0) has not been submitted.</exception>
    public Fence FindFence(ulong point)
    {
        if (!TryFindFence(point, out Fence? fence))
        {
            ThrowNotSubmitted(point);
        }

        return fence!;
    }

    /// <summary>
    /// As <see cref="FindFence(ulong)"/>, but first waits up to <paramref name="timeout"/> for the point to
    /// be submitted (<c>drm_syncobj_find_fence</c> with <c>WAIT_FOR_SUBMIT</c>; the kernel waits
    /// <see cref="SubmitTimeout"/>).
    /// </summary>
    /// <exception cref="FenceErrnoException">-ETIME when the point was not submitted in time.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled first.</exception>
    public Fence FindFence(ulong point, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        return FindFenceOnSystemClock(point, timeout, cancellationToken);
    }

    /// <summary>As <see cref="FindFence(ulong, TimeSpan, CancellationToken)"/>, with the timeout measured on
    /// <paramref name="timeProvider"/>'s clock.</summary>
    /// <param name="point">The point (0: the binary payload).</param>
    /// <param name="timeout">How long to wait for the submission on that clock.</param>
    /// <param name="timeProvider">The clock the timeout runs on: with the virtual GPU's <c>Gpu.TimeProvider</c>
    /// the timeout follows virtual time, with a <c>FakeTimeProvider</c> it expires when the test advances the
    /// clock. Another thread must move that clock (or satisfy the wait): this one is blocked.</param>
    /// <param name="cancellationToken">Interrupts the wait.</param>
    /// <exception cref="ArgumentNullException"><paramref name="timeProvider"/> is null.</exception>
    /// <exception cref="FenceErrnoException">-ETIME when the point was not submitted in time.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled first.</exception>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026", Justification = "The blocking wait's shape plus a clock, as Task.WaitAsync(TimeSpan, TimeProvider, CancellationToken).")]
    public Fence FindFence(ulong point, TimeSpan timeout, TimeProvider timeProvider, CancellationToken cancellationToken = default)
    {
        return ClockTimeout.Run(timeout, timeProvider, (Obj: this, Point: point), static (s, t, token) => s.Obj.FindFenceOnSystemClock(s.Point, t, token), cancellationToken);
    }

    private Fence FindFenceOnSystemClock(ulong point, TimeSpan timeout, CancellationToken cancellationToken)
    {
        Fence.ValidateTimeout(timeout, nameof(timeout));
        if (TryFindFence(point, out Fence? found))
        {
            return found!;
        }

        var ready = new FenceSource(FenceContext.Stub, 0);
        SubmitWaiter waiter = AddSubmitWaiter(point, _ => ready.Signal());
        try
        {
            if (waiter.Captured is null && !ready.Wait(timeout, cancellationToken) && waiter.Captured is null)
            {
                ThrowHelper.ThrowErrno(-Errno.ETIME, string.Create(CultureInfo.InvariantCulture,
                    $"point {point} was not submitted within the timeout"));
            }

            return waiter.Captured!;
        }
        finally
        {
            RemoveSubmitWaiter(waiter);
        }
    }

    /// <summary>
    /// The payload of this syncobj: for a timeline, the highest point such that it and every earlier
    /// point have signalled (monotonic when points signal out of order), or with
    /// <paramref name="lastSubmitted"/> the newest point; 0 for a binary fence or none. Mirrors one
    /// element of <c>DRM_IOCTL_SYNCOBJ_QUERY</c>.
    /// </summary>
    /// <remarks>The walk stops where the context changes, so after an out-of-order point the answer can
    /// be 0 or stale, exactly as the kernel's "adding an unorder point" message warns.</remarks>
    public ulong QueryPoint(bool lastSubmitted = false)
    {
        if (Volatile.Read(ref _fence) is not FenceChain head) // acquire: as in Fence
        {
            return 0;
        }

        if (lastSubmitted)
        {
            return head.Seqno;
        }

        Fence oldest = head;
        foreach (Fence node in FenceChain.ForEach(head))
        {
            if (node.Context != head.Context)
            {
                break;
            }

            oldest = node;
        }

        return oldest.Poll() ? oldest.Seqno : ((FenceChain)oldest).PreviousSeqno;
    }

    // ----------------------------------------------------------------------------------------------
    // Ioctl shapes

    /// <summary><c>DRM_IOCTL_SYNCOBJ_RESET</c>: sets every fence to null.</summary>
    /// <exception cref="FenceErrnoException">-EINVAL for no handles; -ENOENT for a null element.</exception>
    public static void Reset(ReadOnlySpan<SyncObj?> syncobjs) => ResetIoctl(syncobjs, 0);

    /// <summary>The ioctl shape of <see cref="Reset(ReadOnlySpan{SyncObj})"/>, with its pad (<see cref="Uapi.DrmFile"/>).</summary>
    internal static void ResetIoctl(ReadOnlySpan<SyncObj?> syncobjs, uint pad)
    {
        ValidateArray(syncobjs, pad, "SYNCOBJ_RESET");
        foreach (SyncObj? s in syncobjs)
        {
            s!.Reset();
        }
    }

    /// <summary><c>DRM_IOCTL_SYNCOBJ_SIGNAL</c>: installs a signalled stub in every syncobj.</summary>
    /// <exception cref="FenceErrnoException">-EINVAL for no handles; -ENOENT for a null element.</exception>
    public static void Signal(ReadOnlySpan<SyncObj?> syncobjs) => SignalIoctl(syncobjs, 0);

    /// <summary>The ioctl shape of <see cref="Signal(ReadOnlySpan{SyncObj})"/>, with its pad (<see cref="Uapi.DrmFile"/>).</summary>
    internal static void SignalIoctl(ReadOnlySpan<SyncObj?> syncobjs, uint pad)
    {
        ValidateArray(syncobjs, pad, "SYNCOBJ_SIGNAL");
        foreach (SyncObj? s in syncobjs)
        {
            s!.Signal();
        }
    }

    /// <summary><c>DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL</c>: signals each point from the host (point 0
    /// replaces the fence with the stub, any other adds a point completed by the stub).</summary>
    /// <exception cref="FenceErrnoException">-EINVAL for no handles, non-zero flags or a points span of
    /// another length; -ENOENT for a null element.</exception>
    public static void TimelineSignal(ReadOnlySpan<SyncObj?> syncobjs, ReadOnlySpan<ulong> points) => TimelineSignalIoctl(syncobjs, points, 0);

    /// <summary>The ioctl shape of <see cref="TimelineSignal(ReadOnlySpan{SyncObj}, ReadOnlySpan{ulong})"/>, with its
    /// flags (<see cref="Uapi.DrmFile"/>).</summary>
    internal static void TimelineSignalIoctl(ReadOnlySpan<SyncObj?> syncobjs, ReadOnlySpan<ulong> points, uint flags)
    {
        ValidateArray(syncobjs, flags, "SYNCOBJ_TIMELINE_SIGNAL");
        ValidatePoints(syncobjs, points, "SYNCOBJ_TIMELINE_SIGNAL");
        for (int i = 0; i < syncobjs.Length; i++)
        {
            if (points[i] == 0)
            {
                syncobjs[i]!.Replace(FenceCore.Fence.Stub);
            }
            else
            {
                syncobjs[i]!.AddPoint(points[i], FenceCore.Fence.Stub);
            }
        }
    }

    /// <summary><c>DRM_IOCTL_SYNCOBJ_QUERY</c>: the payload of each syncobj (see <see cref="QueryPoint"/>).</summary>
    /// <exception cref="FenceErrnoException">-EINVAL for no handles, unknown flags or an output span of
    /// another length; -ENOENT for a null element.</exception>
    public static void Query(ReadOnlySpan<SyncObj?> syncobjs, Span<ulong> points, SyncObjQueryOptions flags = SyncObjQueryOptions.None)
    {
        if ((flags & ~SyncObjQueryOptions.LastSubmitted) != 0)
        {
            ThrowHelper.ThrowErrno(-Errno.EINVAL, "SYNCOBJ_QUERY: unknown flags");
        }

        ValidateArray(syncobjs, 0, "SYNCOBJ_QUERY");
        ValidatePoints(syncobjs, points, "SYNCOBJ_QUERY");
        for (int i = 0; i < syncobjs.Length; i++)
        {
            points[i] = syncobjs[i]!.QueryPoint((flags & SyncObjQueryOptions.LastSubmitted) != 0);
        }
    }

    /// <summary>
    /// <c>DRM_IOCTL_SYNCOBJ_TRANSFER</c>: takes the fence of <paramref name="srcPoint"/> of
    /// <paramref name="src"/> and installs it in <paramref name="dst"/>, replacing the fence when
    /// <paramref name="dstPoint"/> is 0, else adding that point (a chain is flattened first).
    /// </summary>
    /// <param name="src">The source syncobj.</param>
    /// <param name="srcPoint">The source point (0: the current fence).</param>
    /// <param name="dst">The destination syncobj.</param>
    /// <param name="dstPoint">The destination point (0: binary replace).</param>
    /// <param name="flags">0 or <see cref="SyncObjWaitOptions.WaitForSubmit"/> (wait up to
    /// <see cref="SubmitTimeout"/> for the source point).</param>
    /// <exception cref="FenceErrnoException">-EINVAL for other flags, or a source point not
    /// submitted; -ENOENT for a null syncobj; -ETIME when waiting for submission timed out.</exception>
    public static void Transfer(SyncObj? src, ulong srcPoint, SyncObj? dst, ulong dstPoint, SyncObjWaitOptions flags = SyncObjWaitOptions.WaitAny) =>
        TransferIoctl(src, srcPoint, dst, dstPoint, flags, 0);

    /// <summary>The ioctl shape of <see cref="Transfer"/>, with its pad (<see cref="Uapi.DrmFile"/>).</summary>
    internal static void TransferIoctl(SyncObj? src, ulong srcPoint, SyncObj? dst, ulong dstPoint, SyncObjWaitOptions flags, uint pad)
    {
        if (pad != 0 || (flags & ~SyncObjWaitOptions.WaitForSubmit) != 0)
        {
            ThrowHelper.ThrowErrno(-Errno.EINVAL, "SYNCOBJ_TRANSFER: pad must be zero and the only flag allowed is WAIT_FOR_SUBMIT");
        }

        if (src is null || dst is null)
        {
            ThrowHelper.ThrowErrno(-Errno.ENOENT, "SYNCOBJ_TRANSFER: unknown source or destination handle");
        }

        Fence fence = (flags & SyncObjWaitOptions.WaitForSubmit) != 0
            ? src.FindFence(srcPoint, SubmitTimeout)
            : src.FindFence(srcPoint);
        if (dstPoint == 0)
        {
            dst.Replace(fence);
        }
        else
        {
            dst.AddPoint(dstPoint, FenceUnwrap.Merge(fence));
        }
    }

    /// <summary>
    /// <c>DRM_IOCTL_SYNCOBJ_WAIT</c>, binary: waits for the current fences (point 0 of each).
    /// <see cref="SyncObjWaitOptions.WaitAvailable"/> is not allowed here, as in the kernel.
    /// </summary>
    /// <param name="syncobjs">The syncobjs (a null element is an unknown handle).</param>
    /// <param name="flags">The wait flags.</param>
    /// <param name="firstSignaled">For a wait-any, the lowest index found complete when the wait ended; for
    /// wait-all, the lowest index already complete when the wait started; -1 when none (the kernel's ~0).</param>
    /// <param name="cancellationToken">Interrupts the wait (-ERESTARTSYS).</param>
    /// <returns>True when the condition was met; false on timeout (-ETIME).</returns>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is negative (other than infinite) or too long.</exception>
    /// <exception cref="FenceErrnoException">-EINVAL for unknown flags, a points span of another length, or
    /// a missing fence or point without wait-for-submit; -ENOENT for a null element.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled first.</exception>
    /// <param name="timeout">How long to wait: <see cref="TimeSpan.Zero"/> polls once,
    /// <see cref="Timeout.InfiniteTimeSpan"/> waits without limit. (The kernel's absolute
    /// <c>timeout_nsec</c> lives on <see cref="Uapi.DrmFile"/>.)</param>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026", Justification = "The binary and the timeline wait, each with an optional token, as the kernel has two ioctls.")]
    public static bool Wait(ReadOnlySpan<SyncObj?> syncobjs, TimeSpan timeout, SyncObjWaitOptions flags, out int firstSignaled, CancellationToken cancellationToken = default)
    {
        Fence.ValidateTimeout(timeout, nameof(timeout));
        return WaitIoctl(syncobjs, Fence.AbsoluteNs(timeout), flags, out firstSignaled, cancellationToken);
    }

    /// <summary>As the binary <see cref="Wait(ReadOnlySpan{SyncObj}, TimeSpan, SyncObjWaitOptions, out int, CancellationToken)"/>,
    /// with the timeout measured on <paramref name="timeProvider"/>'s clock.</summary>
    /// <param name="syncobjs">The syncobjs (a null element is an unknown handle).</param>
    /// <param name="timeout">How long to wait on that clock.</param>
    /// <param name="timeProvider">The clock the timeout runs on: with the virtual GPU's <c>Gpu.TimeProvider</c>
    /// the timeout follows virtual time, with a <c>FakeTimeProvider</c> it expires when the test advances the
    /// clock. Another thread must move that clock (or satisfy the wait): this one is blocked.</param>
    /// <param name="flags">The wait flags.</param>
    /// <param name="firstSignaled">As for the wait on the system's clock.</param>
    /// <param name="cancellationToken">Interrupts the wait (-ERESTARTSYS).</param>
    /// <returns>True when the condition was met; false on timeout (-ETIME).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="timeProvider"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is negative (other than infinite) or too long.</exception>
    /// <exception cref="FenceErrnoException">As for the wait on the system's clock.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled first.</exception>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026", Justification = "The blocking wait's shape plus a clock, as Task.WaitAsync(TimeSpan, TimeProvider, CancellationToken).")]
    public static bool Wait(ReadOnlySpan<SyncObj?> syncobjs, TimeSpan timeout, TimeProvider timeProvider, SyncObjWaitOptions flags, out int firstSignaled, CancellationToken cancellationToken = default)
    {
        (bool met, firstSignaled) = ClockTimeout.Run(timeout, timeProvider, (Set: syncobjs.ToArray(), Flags: flags),
            static (s, t, token) => (Wait(s.Set, t, s.Flags, out int first, token), first), cancellationToken);
        return met;
    }

    /// <summary>The kernel-shaped binary wait, with an absolute <see cref="FenceClock"/> timeout in ns
    /// (<see cref="Uapi.DrmFile.SyncobjWait"/>).</summary>
    internal static bool WaitIoctl(ReadOnlySpan<SyncObj?> syncobjs, long timeoutAbsNs, SyncObjWaitOptions flags, out int firstSignaled, CancellationToken cancellationToken = default)
    {
        if ((flags & SyncObjWaitOptions.WaitAvailable) != 0)
        {
            ThrowHelper.ThrowErrno(-Errno.EINVAL, "SYNCOBJ_WAIT: WAIT_AVAILABLE is only valid for timeline waits");
        }

        Span<ulong> zeros = syncobjs.Length <= 64 ? stackalloc ulong[syncobjs.Length] : new ulong[syncobjs.Length];
        zeros.Clear();
        return WaitIoctl(syncobjs, zeros, timeoutAbsNs, flags, out firstSignaled, 0, cancellationToken);
    }

    /// <summary>
    /// <c>DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT</c>: waits for point <c>points[i]</c> of each syncobj (0: its
    /// current fence), for all of them with <see cref="SyncObjWaitOptions.WaitAll"/>, else for any one.
    /// </summary>
    /// <remarks>
    /// The fences are captured when the wait starts (the kernel's binary semantics "in terms of the
    /// fence current at the time of the ioctl"); with <see cref="SyncObjWaitOptions.WaitForSubmit"/> a
    /// missing one is captured when it is submitted. Without that flag (and without
    /// <see cref="SyncObjWaitOptions.WaitAvailable"/>) a missing fence or point fails with -EINVAL before
    /// anything is waited for. <see cref="SyncObjWaitOptions.WaitAvailable"/> accepts a missing point
    /// too and watches for its submission (mainline since 2024, "drm/syncobj: call
    /// drm_syncobj_fence_add_wait when WAIT_AVAILABLE flag is set"); the wait then ends when the fences
    /// are available, signalled or not. A missing fence is captured at the moment it is submitted, under
    /// the syncobj's lock, so a later replacement cannot take it away. No handles is allowed and returns
    /// true at once. A wait that finds its condition met reports success even if the token was cancelled
    /// meanwhile.
    /// </remarks>
    /// <param name="syncobjs">The syncobjs (a null element is an unknown handle).</param>
    /// <param name="points">One point per syncobj.</param>
    /// <param name="timeoutAbsNs">Absolute <see cref="FenceClock"/> time to give up at; 0 or a past time
    /// polls once; <see cref="long.MaxValue"/> waits without limit.</param>
    /// <param name="flags">The wait flags.</param>
    /// <param name="firstSignaled">For a wait-any, the lowest index found complete when the wait ended; for
    /// wait-all, the lowest index already complete when the wait started; -1 when none (the kernel's ~0).</param>
    /// <param name="deadlineNs">With <see cref="SyncObjWaitOptions.WaitDeadline"/>, the deadline hint set on
    /// the fences waited for.</param>
    /// <param name="cancellationToken">Interrupts the wait (-ERESTARTSYS).</param>
    /// <returns>True when the condition was met; false on timeout (-ETIME).</returns>
    /// <exception cref="FenceErrnoException">-EINVAL for unknown flags, a points span of another length, or
    /// a missing fence or point without wait-for-submit; -ENOENT for a null element.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled first.</exception>
    internal static bool WaitIoctl(ReadOnlySpan<SyncObj?> syncobjs, ReadOnlySpan<ulong> points, long timeoutAbsNs, SyncObjWaitOptions flags, out int firstSignaled, long deadlineNs = 0, CancellationToken cancellationToken = default)
    {
        firstSignaled = -1;
        if ((flags & ~KnownWaitOptions) != 0)
        {
            ThrowHelper.ThrowErrno(-Errno.EINVAL, "SYNCOBJ_WAIT: unknown flags");
        }

        ValidatePoints(syncobjs, points, "SYNCOBJ_WAIT");
        ValidateHandles(syncobjs, "SYNCOBJ_WAIT");
        if (syncobjs.IsEmpty)
        {
            return true;
        }

        WaitEntry[] entries = Capture(syncobjs, points, flags, deadlineNs);
        ValueTask<SyncObjWaitResult> wait = WaitCoreAsync(entries, WaitDeadline.AtNs(timeoutAbsNs), flags, new WaitGate(blocking: true), cancellationToken);
        Debug.Assert(wait.IsCompleted, "a blocking gate completes the wait synchronously");
        SyncObjWaitResult result = wait.GetAwaiter().GetResult();
        firstSignaled = result.FirstSignaled;
        return result.Signaled;
    }

    /// <summary>
    /// The asynchronous <c>DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT</c>: the same rules, checks and results as the
    /// blocking <see cref="Wait(ReadOnlySpan{SyncObj}, ReadOnlySpan{ulong}, TimeSpan, SyncObjWaitOptions, out int, CancellationToken)"/>,
    /// without a thread blocked while it waits.
    /// </summary>
    /// <param name="syncobjs">The syncobjs (a null element is an unknown handle).</param>
    /// <param name="points">One point per syncobj (0: its current fence).</param>
    /// <param name="timeout">How long to wait; <see cref="TimeSpan.Zero"/> polls once,
    /// <see cref="Timeout.InfiniteTimeSpan"/> waits without limit.</param>
    /// <param name="flags">The wait flags.</param>
    /// <param name="cancellationToken">Interrupts the wait (-ERESTARTSYS).</param>
    /// <returns>Whether the condition was met (false: timed out) and the first signalled index, as the
    /// blocking wait reports them.</returns>
    /// <exception cref="FenceErrnoException">As the blocking wait, thrown before anything is waited for.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled first.</exception>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026", Justification = "With and without a TimeProvider, as Task.WaitAsync.")]
    public static ValueTask<SyncObjWaitResult> WaitAsync(ReadOnlySpan<SyncObj?> syncobjs, ReadOnlySpan<ulong> points, TimeSpan timeout, SyncObjWaitOptions flags, CancellationToken cancellationToken = default)
    {
        Fence.ValidateTimeout(timeout, nameof(timeout));
        return WaitAsyncCore(syncobjs, points, WaitDeadline.AtNs(Fence.AbsoluteNs(timeout)), flags, cancellationToken);
    }

    /// <summary>As <see cref="WaitAsync(ReadOnlySpan{SyncObj}, ReadOnlySpan{ulong}, TimeSpan, SyncObjWaitOptions, CancellationToken)"/>,
    /// with the timeout measured on <paramref name="timeProvider"/>'s clock and its timers (the virtual GPU's
    /// <c>Gpu.TimeProvider</c>, a test's <c>FakeTimeProvider</c>).</summary>
    /// <param name="syncobjs">The syncobjs (a null element is an unknown handle).</param>
    /// <param name="points">One point per syncobj (0: its current fence).</param>
    /// <param name="timeout">How long to wait on that clock.</param>
    /// <param name="timeProvider">The clock.</param>
    /// <param name="flags">The wait flags.</param>
    /// <param name="cancellationToken">Interrupts the wait (-ERESTARTSYS).</param>
    /// <returns>Whether the condition was met (false: timed out) and the first signalled index.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="timeProvider"/> is null.</exception>
    /// <exception cref="FenceErrnoException">As the blocking wait, thrown before anything is waited for.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled first.</exception>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026", Justification = "With and without a TimeProvider, as Task.WaitAsync.")]
    public static ValueTask<SyncObjWaitResult> WaitAsync(ReadOnlySpan<SyncObj?> syncobjs, ReadOnlySpan<ulong> points, TimeSpan timeout, TimeProvider timeProvider, SyncObjWaitOptions flags, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        Fence.ValidateTimeout(timeout, nameof(timeout));
        return WaitAsyncCore(syncobjs, points, WaitDeadline.After(timeout, timeProvider), flags, cancellationToken);
    }

    private static ValueTask<SyncObjWaitResult> WaitAsyncCore(ReadOnlySpan<SyncObj?> syncobjs, ReadOnlySpan<ulong> points, WaitDeadline deadline, SyncObjWaitOptions flags, CancellationToken cancellationToken)
    {
        if ((flags & ~KnownWaitOptions) != 0)
        {
            ThrowHelper.ThrowErrno(-Errno.EINVAL, "SYNCOBJ_WAIT: unknown flags");
        }

        ValidatePoints(syncobjs, points, "SYNCOBJ_WAIT");
        ValidateHandles(syncobjs, "SYNCOBJ_WAIT");
        if (syncobjs.IsEmpty)
        {
            return new ValueTask<SyncObjWaitResult>(new SyncObjWaitResult(true, -1));
        }

        WaitEntry[] entries = Capture(syncobjs, points, flags, 0);
        return WaitCoreAsync(entries, deadline, flags, new WaitGate(blocking: false), cancellationToken);
    }

    /// <summary>Captures every fence first; a missing one without wait-for-submit fails before any wait.</summary>
    private static WaitEntry[] Capture(ReadOnlySpan<SyncObj?> syncobjs, ReadOnlySpan<ulong> points, SyncObjWaitOptions flags, long deadlineNs)
    {
        bool forSubmit = (flags & SyncObjWaitOptions.WaitForSubmit) != 0;
        bool available = (flags & SyncObjWaitOptions.WaitAvailable) != 0;
        var entries = new WaitEntry[syncobjs.Length];
        for (int i = 0; i < syncobjs.Length; i++)
        {
            entries[i] = new WaitEntry(syncobjs[i]!, points[i]);
            if (syncobjs[i]!.TryFindFence(points[i], out Fence? fence))
            {
                entries[i].Fence = fence;
            }
            else if (!forSubmit && !available)
            {
                ThrowHelper.ThrowErrno(-Errno.EINVAL, string.Create(CultureInfo.InvariantCulture,
                    $"SYNCOBJ_WAIT: syncobj {i} has no fence for point {points[i]} and WAIT_FOR_SUBMIT is not set"));
            }
        }

        if ((flags & SyncObjWaitOptions.WaitDeadline) != 0)
        {
            foreach (WaitEntry e in entries)
            {
                e.Fence?.SetDeadlineNs(deadlineNs);
            }
        }

        return entries;
    }

    /// <summary>The wait loop, shared by the blocking and the asynchronous wait (the gate decides which).</summary>
    private static async ValueTask<SyncObjWaitResult> WaitCoreAsync(WaitEntry[] entries, WaitDeadline deadline, SyncObjWaitOptions flags, WaitGate gate, CancellationToken cancellationToken)
    {
        bool waitAll = (flags & SyncObjWaitOptions.WaitAll) != 0;
        bool forSubmit = (flags & SyncObjWaitOptions.WaitForSubmit) != 0;
        bool available = (flags & SyncObjWaitOptions.WaitAvailable) != 0;
        int firstSignaled = -1;
        try
        {
            bool firstPass = true;
            while (true)
            {
                gate.Reset(); // reset before checking: a wake-up after this point leaves the gate set
                int complete = 0;
                for (int i = 0; i < entries.Length; i++)
                {
                    WaitEntry e = entries[i];
                    if (e.Fence is null && (forSubmit || available))
                    {
                        e.Resolve(gate);
                    }

                    if (e.Fence is null || !(available || e.IsComplete(gate)))
                    {
                        continue;
                    }

                    if (!waitAll)
                    {
                        return new SyncObjWaitResult(true, i);
                    }

                    if (firstPass && firstSignaled < 0)
                    {
                        firstSignaled = i;
                    }

                    complete++;
                }

                firstPass = false;
                if (complete == entries.Length)
                {
                    return new SyncObjWaitResult(true, firstSignaled);
                }

                TimeSpan remaining = deadline.Remaining();
                if (remaining == TimeSpan.Zero)
                {
                    return new SyncObjWaitResult(false, firstSignaled);
                }

                try
                {
                    await gate.WaitAsync(remaining, cancellationToken, deadline.Time).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (AllComplete(entries, waitAll, available, ref firstSignaled))
                {
                    return new SyncObjWaitResult(true, firstSignaled); // the condition was met before the cancellation was seen
                }
            }
        }
        finally
        {
            foreach (WaitEntry e in entries)
            {
                e.Disarm();
            }
        }
    }

    /// <summary>
    /// <c>DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT</c>: waits for point <c>points[i]</c> of each syncobj (0: its
    /// current fence), for all of them with <see cref="SyncObjWaitOptions.WaitAll"/>, else for any one. The
    /// rules are those of the kernel-shaped wait described on <see cref="SyncObj"/>'s wait members; with
    /// <see cref="SyncObjWaitOptions.WaitDeadline"/> the hint set is "now" (an absolute deadline is a
    /// uAPI matter: <see cref="Uapi.DrmFile.SyncobjTimelineWait"/>).
    /// </summary>
    /// <param name="syncobjs">The syncobjs (a null element is an unknown handle).</param>
    /// <param name="flags">The wait flags.</param>
    /// <param name="firstSignaled">For a wait-any, the lowest index found complete when the wait ended; for
    /// wait-all, the lowest index already complete when the wait started; -1 when none (the kernel's ~0).</param>
    /// <param name="cancellationToken">Interrupts the wait (-ERESTARTSYS).</param>
    /// <returns>True when the condition was met; false on timeout (-ETIME).</returns>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is negative (other than infinite) or too long.</exception>
    /// <exception cref="FenceErrnoException">-EINVAL for unknown flags, a points span of another length, or
    /// a missing fence or point without wait-for-submit; -ENOENT for a null element.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled first.</exception>
    /// <param name="timeout">How long to wait: <see cref="TimeSpan.Zero"/> polls once,
    /// <see cref="Timeout.InfiniteTimeSpan"/> waits without limit. (The kernel's absolute
    /// <c>timeout_nsec</c> lives on <see cref="Uapi.DrmFile"/>.)</param>
    /// <param name="points">One point per syncobj.</param>
    public static bool Wait(ReadOnlySpan<SyncObj?> syncobjs, ReadOnlySpan<ulong> points, TimeSpan timeout, SyncObjWaitOptions flags, out int firstSignaled, CancellationToken cancellationToken = default)
    {
        Fence.ValidateTimeout(timeout, nameof(timeout));
        return WaitIoctl(syncobjs, points, Fence.AbsoluteNs(timeout), flags, out firstSignaled, 0, cancellationToken);
    }

    /// <summary>As the timeline <see cref="Wait(ReadOnlySpan{SyncObj}, ReadOnlySpan{ulong}, TimeSpan, SyncObjWaitOptions, out int, CancellationToken)"/>,
    /// with the timeout measured on <paramref name="timeProvider"/>'s clock.</summary>
    /// <param name="syncobjs">The syncobjs (a null element is an unknown handle).</param>
    /// <param name="points">One point per syncobj.</param>
    /// <param name="timeout">How long to wait on that clock.</param>
    /// <param name="timeProvider">The clock the timeout runs on: with the virtual GPU's <c>Gpu.TimeProvider</c>
    /// the timeout follows virtual time, with a <c>FakeTimeProvider</c> it expires when the test advances the
    /// clock. Another thread must move that clock (or satisfy the wait): this one is blocked.</param>
    /// <param name="flags">The wait flags.</param>
    /// <param name="firstSignaled">As for the wait on the system's clock.</param>
    /// <param name="cancellationToken">Interrupts the wait (-ERESTARTSYS).</param>
    /// <returns>True when the condition was met; false on timeout (-ETIME).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="timeProvider"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is negative (other than infinite) or too long.</exception>
    /// <exception cref="FenceErrnoException">As for the wait on the system's clock.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled first.</exception>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026", Justification = "The blocking wait's shape plus a clock, as Task.WaitAsync(TimeSpan, TimeProvider, CancellationToken).")]
    public static bool Wait(ReadOnlySpan<SyncObj?> syncobjs, ReadOnlySpan<ulong> points, TimeSpan timeout, TimeProvider timeProvider, SyncObjWaitOptions flags, out int firstSignaled, CancellationToken cancellationToken = default)
    {
        (bool met, firstSignaled) = ClockTimeout.Run(timeout, timeProvider, (Set: syncobjs.ToArray(), Points: points.ToArray(), Flags: flags),
            static (s, t, token) => (Wait(s.Set, s.Points, t, s.Flags, out int first, token), first), cancellationToken);
        return met;
    }

    /// <inheritdoc/>
    public override string ToString() => $"syncobj ({Fence?.ToString() ?? "no fence"})";

    // ----------------------------------------------------------------------------------------------
    // Internals

    /// <summary>
    /// Registers a wait for <paramref name="point"/> to be submitted. If it already is, the waiter comes
    /// back captured and <paramref name="onCaptured"/> is not called; otherwise the next writer that makes
    /// the point findable captures its fence, under the lock, and calls <paramref name="onCaptured"/>
    /// after releasing it. Mirrors <c>drm_syncobj_fence_add_wait</c>.
    /// </summary>
    internal SubmitWaiter AddSubmitWaiter(ulong point, Action<SubmitWaiter> onCaptured)
    {
        var waiter = new SubmitWaiter(point, onCaptured);
        lock (_writeLock)
        {
            if (TryFindFence(point, out Fence? fence))
            {
                waiter.Captured = fence;
            }
            else
            {
                (_submitWaiters ??= []).Add(waiter);
            }
        }

        return waiter;
    }

    /// <summary>
    /// Registers a one-shot notification of <paramref name="eventFd"/> for <paramref name="point"/>. Mirrors
    /// <c>drm_syncobj_add_eventfd</c>: once the point is available (a fence is submitted for it) the
    /// registration is bound to that fence; with <paramref name="available"/> the eventfd is signalled then,
    /// otherwise when the bound fence signals (at once if it already has). A later replacement of the
    /// syncobj's fence does not affect a bound registration.
    /// </summary>
    internal void AddEventFd(ulong point, bool available, Uapi.EventFd eventFd)
    {
        SubmitWaiter waiter = AddSubmitWaiter(point, w => BindEventFd(Volatile.Read(ref w.Captured)!, available, eventFd));
        if (waiter.Captured is { } now)
        {
            BindEventFd(now, available, eventFd); // available at registration: fires during the ioctl when satisfied
        }
    }

    private static void BindEventFd(Fence fence, bool available, Uapi.EventFd eventFd)
    {
        if (available || !fence.AddCallback(new EventFdCallback(eventFd)))
        {
            eventFd.Signal();
        }
    }

    /// <summary>Signals an eventfd when the fence it is queued on signals, with or without an error.</summary>
    private sealed class EventFdCallback(Uapi.EventFd eventFd) : FenceCallback
    {
        protected internal override void Invoke(Fence fence) => eventFd.Signal();
    }

    /// <summary>Unregisters a waiter (captured or not). Mirrors <c>drm_syncobj_remove_wait</c>.</summary>
    internal void RemoveSubmitWaiter(SubmitWaiter waiter)
    {
        lock (_writeLock)
        {
            _submitWaiters?.Remove(waiter);
        }
    }

    /// <summary>The number of registered submit waiters, for tests.</summary>
    internal int SubmitWaiterCountForTesting()
    {
        lock (_writeLock)
        {
            return _submitWaiters?.Count ?? 0;
        }
    }

    /// <summary>Hands the fence just installed to every waiter whose point it makes findable. Under the lock.</summary>
    private List<SubmitWaiter>? CaptureWaiters()
    {
        List<SubmitWaiter>? captured = null;
        if (_submitWaiters is null)
        {
            return null;
        }

        for (int i = _submitWaiters.Count - 1; i >= 0; i--)
        {
            SubmitWaiter w = _submitWaiters[i];
            if (TryFindFence(w.Point, out Fence? fence))
            {
                Volatile.Write(ref w.Captured, fence); // release: the waiter reads it after its wake-up
                _submitWaiters.RemoveAt(i);
                (captured ??= []).Add(w);
            }
        }

        return captured;
    }

    private static void Wake(List<SubmitWaiter>? captured)
    {
        if (captured is null)
        {
            return;
        }

        foreach (SubmitWaiter w in captured)
        {
            w.OnCaptured(w);
        }
    }

    private static bool AllComplete(WaitEntry[] entries, bool waitAll, bool available, ref int firstSignaled)
    {
        for (int i = 0; i < entries.Length; i++)
        {
            WaitEntry e = entries[i];
            e.TakeCaptured();
            bool complete = e.Fence is not null && (available || e.Fence.IsSignaled);
            if (complete && !waitAll)
            {
                firstSignaled = i;
                return true;
            }

            if (!complete && waitAll)
            {
                return false;
            }
        }

        return waitAll;
    }

    /// <summary>One wait for a point's submission: the point, the fence captured for it, the wake-up.</summary>
    internal sealed class SubmitWaiter(ulong point, Action<SubmitWaiter> onCaptured)
    {
        public ulong Point { get; } = point;

        /// <summary>The fence submitted for the point (the stub when it had already signalled). Written once
        /// under the syncobj's lock, with Volatile.Write; read with Volatile.Read after the wake-up.</summary>
        public Fence? Captured;

        /// <summary>Called with the waiter once a writer has captured its fence, after the lock is released.</summary>
        public Action<SubmitWaiter> OnCaptured { get; } = onCaptured;
    }

    private static void ThrowNotSubmitted(ulong point) =>
        ThrowHelper.ThrowErrno(-Errno.EINVAL, point == 0
            ? "syncobj has no fence: nothing has been submitted (or it was reset)"
            : string.Create(CultureInfo.InvariantCulture, $"timeline point {point} has not been submitted"));

    private static void ValidateHandles(ReadOnlySpan<SyncObj?> syncobjs, string ioctl)
    {
        for (int i = 0; i < syncobjs.Length; i++)
        {
            if (syncobjs[i] is null)
            {
                ThrowHelper.ThrowErrno(-Errno.ENOENT, string.Create(CultureInfo.InvariantCulture,
                    $"{ioctl}: handle {i} does not refer to a syncobj; nothing was changed"));
            }
        }
    }

    private static void ValidateArray(ReadOnlySpan<SyncObj?> syncobjs, uint padOrFlags, string ioctl)
    {
        if (padOrFlags != 0)
        {
            ThrowHelper.ThrowErrno(-Errno.EINVAL, $"{ioctl}: flags and pad must be zero");
        }

        if (syncobjs.IsEmpty)
        {
            ThrowHelper.ThrowErrno(-Errno.EINVAL, $"{ioctl}: at least one handle is required");
        }

        ValidateHandles(syncobjs, ioctl);
    }

    private static void ValidatePoints(ReadOnlySpan<SyncObj?> syncobjs, ReadOnlySpan<ulong> points, string ioctl)
    {
        if (points.Length != syncobjs.Length)
        {
            ThrowHelper.ThrowErrno(-Errno.EINVAL, string.Create(CultureInfo.InvariantCulture,
                $"{ioctl}: {syncobjs.Length} handles but {points.Length} points"));
        }
    }

    /// <summary>One syncobj of a wait: the captured fence and its two callback nodes.</summary>
    private sealed class WaitEntry(SyncObj syncobj, ulong point)
    {
        private WaitGateCallback? _fenceNode;
        private SubmitWaiter? _submit;

        /// <summary>The captured fence; written only by the waiting thread.</summary>
        public Fence? Fence;

        /// <summary>True when the fence has signalled; otherwise makes sure a callback will open the gate.</summary>
        public bool IsComplete(WaitGate gate)
        {
            Fence fence = Fence!;
            if (fence.Poll())
            {
                return true;
            }

            if (_fenceNode is null)
            {
                _fenceNode = new WaitGateCallback(gate);
                if (!fence.AddCallback(_fenceNode))
                {
                    return true; // signalled in between
                }
            }

            return false;
        }

        /// <summary>Captures the point's fence, registering a submit waiter the first time it is missing.</summary>
        public void Resolve(WaitGate gate)
        {
            if (_submit is null)
            {
                _submit = syncobj.AddSubmitWaiter(point, _ => gate.Set());
            }

            TakeCaptured();
        }

        /// <summary>Takes the fence a writer captured for this entry, if any.</summary>
        public void TakeCaptured()
        {
            if (Fence is null && _submit is not null)
            {
                Fence = Volatile.Read(ref _submit.Captured); // acquire: pairs with the writer's release
            }
        }

        public void Disarm()
        {
            if (_fenceNode is not null)
            {
                Fence?.RemoveCallback(_fenceNode);
            }

            if (_submit is not null)
            {
                syncobj.RemoveSubmitWaiter(_submit);
            }
        }
    }

}
