using FenceCore.Internal;

namespace FenceCore;

/// <summary>The <c>DMA_BUF_SYNC_*</c> flags of the dma-buf fence ioctls.</summary>
[Flags]
#pragma warning disable CA1028 // the values are the uapi u32 bits
public enum DmaBufSync : uint
#pragma warning restore CA1028
{
    /// <summary><c>DMA_BUF_SYNC_START</c> (0): begin CPU access.</summary>
    None = 0,

    /// <summary><c>DMA_BUF_SYNC_READ</c>.</summary>
    Read = 1,

    /// <summary><c>DMA_BUF_SYNC_WRITE</c>.</summary>
    Write = 2,

    /// <summary><c>DMA_BUF_SYNC_RW</c>.</summary>
    ReadWrite = Read | Write,

    /// <summary><c>DMA_BUF_SYNC_END</c>: end CPU access.</summary>
    End = 4,
}

/// <summary>
/// A shared buffer's fence surface. Mirrors the dma-buf file's fence ioctls
/// (<c>DMA_BUF_IOCTL_EXPORT_SYNC_FILE</c>, <c>DMA_BUF_IOCTL_IMPORT_SYNC_FILE</c>, <c>DMA_BUF_IOCTL_SYNC</c>)
/// and its <c>poll()</c>.
/// </summary>
/// <remarks>
/// <para>
/// Every entry point validates its flags as the kernel does and reports failures as a
/// <see cref="FenceErrnoException"/> whose <see cref="FenceErrnoException.Errno"/> is the kernel's
/// (-EINVAL for unknown bits or neither READ nor WRITE, -EINVAL for an import operand that is not a sync
/// file), with a message that names the rule; the object is left unchanged.
/// </para>
/// <para>
/// KERNEL fences (moves and clears) are part of every level a query or wait uses, so no path here can
/// skip them: not export, not poll, not CPU access, and not an explicit-sync client that only adds
/// BOOKKEEP fences. That is the security property of the thread this project grew from.
/// </para>
/// <para>
/// CPU access: <c>DMA_BUF_IOCTL_SYNC</c> with START waits, as the kernel's <c>dma_buf_begin_cpu_access</c>
/// does (<c>dma_resv_wait_timeout</c> on the direction's usage, interruptible, without a timeout), then
/// brackets the access; END does not wait. <see cref="Uapi.FileTable.DmaBufSync"/> is that ioctl; <see cref="BeginCpuAccess(DmaBufSync, TimeSpan, CancellationToken)"/>
/// and <see cref="EndCpuAccess"/> are the same with a timeout and standard errors.
/// </para>
/// </remarks>
public sealed class DmaBuf
{
    private int _cpuAccessDepth;

    /// <summary>Creates a dma-buf over <paramref name="reservation"/> (a new one when null).</summary>
    public DmaBuf(Reservation? reservation = null, string? name = null)
    {
        Reservation = reservation ?? new Reservation(name);
        Name = name ?? Reservation.Name;
    }

    /// <summary>The buffer's reservation object.</summary>
    public Reservation Reservation { get; }

    /// <summary>The buffer's name.</summary>
    public string Name { get; }

    /// <summary>Nesting depth of CPU accesses begun and not yet ended.</summary>
    public int CpuAccessDepth => Volatile.Read(ref _cpuAccessDepth);

    /// <summary>
    /// Exports the buffer's implicit fences as a sync file. Mirrors <c>DMA_BUF_IOCTL_EXPORT_SYNC_FILE</c>:
    /// READ waits for writers (and KERNEL fences); WRITE or READ|WRITE waits for readers and writers (and
    /// KERNEL fences); BOOKKEEP fences are never exported. With nothing pending it holds the signalled
    /// stub. It is a snapshot: fences added later are not waited for.
    /// </summary>
    /// <exception cref="FenceErrnoException">-EINVAL: bits outside READ|WRITE, or neither set.</exception>
    public SyncFile ExportSyncFile(DmaBufSync flags)
    {
        ValidateDirection(flags, "DMA_BUF_IOCTL_EXPORT_SYNC_FILE");
        FenceUsage usage = FenceUsages.WaitLevelFor((flags & DmaBufSync.Write) != 0);
        return new SyncFile(Reservation.GetSingleton(usage) ?? Fence.Stub);
    }

    /// <summary>
    /// Imports a sync file's fences. Mirrors <c>DMA_BUF_IOCTL_IMPORT_SYNC_FILE</c>: each leaf fence is
    /// added with WRITE usage when WRITE is set, else READ, following the reservation's replacement rules;
    /// all leaves are published in one atomic step, so the import cannot half-fail. A READ import blocks
    /// later writers but not readers; a WRITE import blocks everyone.
    /// </summary>
    /// <exception cref="FenceErrnoException">-EINVAL: bad flags.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="syncFile"/> is null (the uAPI answers a
    /// descriptor that is not a sync file with -EINVAL).</exception>
    public void ImportSyncFile(DmaBufSync flags, SyncFile syncFile)
    {
        ArgumentNullException.ThrowIfNull(syncFile);
        ValidateDirection(flags, "DMA_BUF_IOCTL_IMPORT_SYNC_FILE");

        FenceUsage usage = (flags & DmaBufSync.Write) != 0 ? FenceUsage.Write : FenceUsage.Read;
        Reservation.AddFences([syncFile.Fence], usage);
    }

    /// <summary>The ioctl-shaped export: 0 and the sync file, or a negative errno and null.</summary>
    internal int ExportSyncFileIoctl(uint flags, out SyncFile? syncFile)
    {
        try
        {
            syncFile = ExportSyncFile((DmaBufSync)flags);
            return 0;
        }
        catch (FenceErrnoException ex)
        {
            syncFile = null;
            return ex.Errno;
        }
    }

    /// <summary>The ioctl-shaped import: <paramref name="fd"/> may be anything; only a <see cref="SyncFile"/>
    /// is accepted. Returns 0 or a negative errno.</summary>
    internal int ImportSyncFileIoctl(uint flags, object? fd)
    {
        try
        {
            if (fd is not SyncFile file)
            {
                ValidateDirection((DmaBufSync)flags, "DMA_BUF_IOCTL_IMPORT_SYNC_FILE");
                return -Errno.EINVAL;
            }

            ImportSyncFile((DmaBufSync)flags, file);
            return 0;
        }
        catch (FenceErrnoException ex)
        {
            return ex.Errno;
        }
    }

    /// <summary>
    /// Poll-style readiness: readable (<c>EPOLLIN</c>) when no writer (or KERNEL fence) is pending,
    /// writable (<c>EPOLLOUT</c>) when no reader or writer is pending. Mirrors <c>dma_buf_poll</c>.
    /// </summary>
    public bool IsReady(bool write) => Reservation.TestSignaled(FenceUsages.WaitLevelFor(write));

    /// <summary>Completes when the buffer becomes readable (<paramref name="write"/> false) or writable,
    /// for the fences present now; true if ready, false on timeout.</summary>
    public ValueTask<bool> PollAsync(bool write, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        Reservation.WaitAsync(FenceUsages.WaitLevelFor(write), timeout, cancellationToken);

    /// <summary>As <see cref="PollAsync(bool, TimeSpan, CancellationToken)"/>, with the timeout measured on
    /// <paramref name="timeProvider"/>'s clock.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026", Justification = "The blocking wait's shape plus a clock, as Task.WaitAsync(TimeSpan, TimeProvider, CancellationToken).")]
    public ValueTask<bool> PollAsync(bool write, TimeSpan timeout, TimeProvider timeProvider, CancellationToken cancellationToken = default) =>
        Reservation.WaitAsync(FenceUsages.WaitLevelFor(write), timeout, timeProvider, cancellationToken);

    /// <summary>
    /// Begins CPU access in the direction of <paramref name="flags"/> (READ, WRITE or both), waiting for
    /// everything that direction must wait for: a read waits for writers, a write for readers and writers,
    /// and both always for KERNEL fences.
    /// </summary>
    /// <returns>True when access began; false on timeout (no access begun).</returns>
    /// <exception cref="FenceErrnoException">-EINVAL: bad flags.</exception>
    public bool BeginCpuAccess(DmaBufSync flags, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        BeginCpuAccess(flags, timeout, TimeProvider.System, cancellationToken);

    /// <summary>As <see cref="BeginCpuAccess(DmaBufSync, TimeSpan, CancellationToken)"/>, with the timeout
    /// measured on <paramref name="timeProvider"/>'s clock.</summary>
    /// <returns>True when access began; false on timeout (no access begun).</returns>
    /// <exception cref="FenceErrnoException">-EINVAL: bad flags.</exception>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026", Justification = "The blocking wait's shape plus a clock, as Task.WaitAsync(TimeSpan, TimeProvider, CancellationToken).")]
    public bool BeginCpuAccess(DmaBufSync flags, TimeSpan timeout, TimeProvider timeProvider, CancellationToken cancellationToken = default)
    {
        ValidateDirection(flags, "DMA_BUF_IOCTL_SYNC(START)");
        if (!Reservation.Wait(FenceUsages.WaitLevelFor((flags & DmaBufSync.Write) != 0), timeout, timeProvider, cancellationToken))
        {
            return false;
        }

        Interlocked.Increment(ref _cpuAccessDepth);
        return true;
    }

    /// <summary>Ends a CPU access begun with <see cref="BeginCpuAccess(DmaBufSync, TimeSpan, CancellationToken)"/>.</summary>
    /// <exception cref="FenceErrnoException">-EINVAL: bad flags, or no access is in progress.</exception>
    public void EndCpuAccess(DmaBufSync flags)
    {
        ValidateDirection(flags, "DMA_BUF_IOCTL_SYNC(END)");
        int depth = Volatile.Read(ref _cpuAccessDepth);
        while (true)
        {
            if (depth == 0)
            {
                ThrowHelper.ThrowErrno(-Errno.EINVAL, "DMA_BUF_IOCTL_SYNC(END): no CPU access is in progress");
            }

            int seen = Interlocked.CompareExchange(ref _cpuAccessDepth, depth - 1, depth);
            if (seen == depth)
            {
                return;
            }

            depth = seen;
        }
    }

    /// <summary>
    /// The kernel's <c>DMA_BUF_IOCTL_SYNC</c>: it validates the flags (only READ, WRITE and END, with a
    /// direction); START waits, without a timeout, for the fences the direction must wait for (READ: KERNEL
    /// and writers; WRITE: everyone), as <c>dma_buf_begin_cpu_access</c> does, and begins the access; END
    /// ends it without waiting. Returns 0, -EINVAL, or -EINTR when <paramref name="cancellationToken"/>
    /// interrupts the wait (the kernel's -ERESTARTSYS as user space sees it); nothing changes on failure.
    /// </summary>
    internal int SyncIoctl(ulong flags, CancellationToken cancellationToken)
    {
        if ((flags & ~(ulong)(DmaBufSync.ReadWrite | DmaBufSync.End)) != 0 || (flags & (ulong)DmaBufSync.ReadWrite) == 0)
        {
            return -Errno.EINVAL;
        }

        if ((flags & (ulong)DmaBufSync.End) != 0)
        {
            // The kernel keeps no count: END without START reaches the exporter, which returns 0 here.
            int depth = Volatile.Read(ref _cpuAccessDepth);
            while (depth > 0)
            {
                int seen = Interlocked.CompareExchange(ref _cpuAccessDepth, depth - 1, depth);
                if (seen == depth)
                {
                    break;
                }

                depth = seen;
            }

            return 0;
        }

        try
        {
            Reservation.Wait(FenceUsages.WaitLevelFor((flags & (ulong)DmaBufSync.Write) != 0), Timeout.InfiniteTimeSpan, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            return -Errno.EINTR;
        }

        Interlocked.Increment(ref _cpuAccessDepth);
        return 0;
    }

    private static void ValidateDirection(DmaBufSync flags, string call)
    {
        if ((flags & ~DmaBufSync.ReadWrite) != 0)
        {
            ThrowHelper.ThrowErrno(-Errno.EINVAL, $"{call}: flags 0x{(uint)flags:x} have bits outside DMA_BUF_SYNC_RW");
        }

        if ((flags & DmaBufSync.ReadWrite) == 0)
        {
            ThrowHelper.ThrowErrno(-Errno.EINVAL, $"{call}: flags must include DMA_BUF_SYNC_READ or DMA_BUF_SYNC_WRITE");
        }
    }
}
