namespace FenceCore.Uapi;

/// <summary><c>struct sync_merge_data</c> of <c>SYNC_IOC_MERGE</c>.</summary>
public struct SyncMergeData
{
    /// <summary>The new sync file's name (at most 31 bytes are kept).</summary>
    public string? Name { get; set; }

    /// <summary>The second operand's descriptor.</summary>
    public int Fd2 { get; set; }

    /// <summary>Out: the new sync file's descriptor.</summary>
    public int Fence { get; set; }

    /// <summary>Must be 0.</summary>
    public uint Flags { get; set; }

    /// <summary>Must be 0.</summary>
    public uint Pad { get; set; }
}

/// <summary><c>struct sync_file_info</c> of <c>SYNC_IOC_FILE_INFO</c>, without the user pointer (the
/// entries are the span passed beside it).</summary>
public struct SyncFileInfoData
{
    /// <summary>Out: the sync file's name.</summary>
    public string? Name { get; set; }

    /// <summary>Out: the status (1 signalled, 0 pending, a negative error).</summary>
    public int Status { get; set; }

    /// <summary>Must be 0.</summary>
    public uint Flags { get; set; }

    /// <summary>In: 0 to ask for the count, else the buffer's length; out: the number of fences.</summary>
    public uint NumFences { get; set; }

    /// <summary>Must be 0.</summary>
    public uint Pad { get; set; }
}

/// <summary>The sync-file and dma-buf ioctls, on descriptors of this table.</summary>
public sealed partial class FileTable
{
    /// <summary>
    /// <c>SYNC_IOC_MERGE</c> on sync file <paramref name="fd"/>: a new sync file for both operands' fences,
    /// installed as <see cref="SyncMergeData.Fence"/>.
    /// </summary>
    /// <returns>0; -EBADF when <paramref name="fd"/> is not open; -ENOTTY when it is not a sync file;
    /// -EMFILE when the table is full; -EINVAL for non-zero flags or pad; -ENOENT when
    /// <see cref="SyncMergeData.Fd2"/> is not a sync file.</returns>
    public int SyncMerge(int fd, ref SyncMergeData data)
    {
        int error = SyncFileOf(fd, out SyncFile? file);
        if (error != 0)
        {
            return error;
        }

        int merged = InstallObject(DrmFile.Reserved.Instance); // the kernel takes the new fd first
        if (merged < 0)
        {
            return merged;
        }

        try
        {
            Fill(merged, file!.MergeIoctl(data.Name, Resolve(data.Fd2), data.Flags, data.Pad));
        }
        catch (FenceErrnoException ex)
        {
            Close(merged);
            return ex.Errno;
        }

        data.Fence = merged;
        return 0;
    }

    /// <summary>
    /// <c>SYNC_IOC_FILE_INFO</c> on sync file <paramref name="fd"/>: with <see cref="SyncFileInfoData.NumFences"/>
    /// 0, only the count and the whole fence's status; otherwise one entry per leaf into
    /// <paramref name="fences"/> (at least <see cref="SyncFileInfoData.NumFences"/> long).
    /// </summary>
    /// <returns>0; -EBADF; -ENOTTY; -EINVAL for non-zero flags or pad, a buffer shorter than the number of
    /// leaves, or a <see cref="SyncFileInfoData.NumFences"/> longer than <paramref name="fences"/>.</returns>
    public int SyncFileInfo(int fd, ref SyncFileInfoData info, Span<SyncFenceInfo> fences)
    {
        int error = SyncFileOf(fd, out SyncFile? file);
        if (error != 0)
        {
            return error;
        }

        if (info.NumFences > fences.Length)
        {
            return -Errno.EFAULT; // the user buffer is shorter than the count it claims
        }

        try
        {
            SyncFileInfo result = file!.GetInfoIoctl(fences[..(int)info.NumFences], info.Flags, info.Pad);
            info.Name = result.Name;
            info.Status = result.Status;
            info.NumFences = (uint)result.NumFences;
            return 0;
        }
        catch (FenceErrnoException ex)
        {
            return ex.Errno;
        }
    }

    /// <summary><c>SYNC_IOC_SET_DEADLINE</c> on sync file <paramref name="fd"/>: a deadline hint in absolute
    /// monotonic ns.</summary>
    /// <returns>0; -EBADF; -ENOTTY; -EINVAL for a non-zero pad.</returns>
    public int SyncSetDeadline(int fd, ulong deadlineNs, ulong pad)
    {
        int error = SyncFileOf(fd, out SyncFile? file);
        if (error != 0)
        {
            return error;
        }

        if (pad != 0)
        {
            return -Errno.EINVAL;
        }

        file!.Fence.SetDeadlineNs((long)deadlineNs);
        return 0;
    }

    /// <summary>
    /// <c>DMA_BUF_IOCTL_SYNC</c> on dma-buf <paramref name="fd"/>: START waits, without a timeout, for what the
    /// direction must wait for and begins CPU access; END ends it without waiting.
    /// </summary>
    /// <returns>0; -EBADF; -ENOTTY when it is not a dma-buf; -EINVAL for bits outside READ|WRITE|END or no
    /// direction; -EINTR when <paramref name="cancellationToken"/> interrupts the wait.</returns>
    public int DmaBufSync(int fd, ulong flags, CancellationToken cancellationToken = default)
    {
        int error = DmaBufOf(fd, out DmaBuf? buffer);
        return error != 0 ? error : buffer!.SyncIoctl(flags, cancellationToken);
    }

    /// <summary><c>DMA_BUF_IOCTL_EXPORT_SYNC_FILE</c> on dma-buf <paramref name="fd"/>: the implicit fences
    /// of the direction as a new sync file, installed as <paramref name="syncFileFd"/>.</summary>
    /// <returns>0; -EBADF; -ENOTTY; -EINVAL for bad flags; -EMFILE when the table is full.</returns>
    public int DmaBufExportSyncFile(int fd, uint flags, out int syncFileFd)
    {
        syncFileFd = -1;
        int error = DmaBufOf(fd, out DmaBuf? buffer);
        if (error != 0)
        {
            return error;
        }

        error = buffer!.ExportSyncFileIoctl(flags, out SyncFile? file);
        if (error != 0)
        {
            return error;
        }

        int installed = InstallObject(file!);
        if (installed < 0)
        {
            return installed;
        }

        syncFileFd = installed;
        return 0;
    }

    /// <summary><c>DMA_BUF_IOCTL_IMPORT_SYNC_FILE</c> on dma-buf <paramref name="fd"/>: adds the fences of sync
    /// file <paramref name="syncFileFd"/> as WRITE (with the write flag) or READ fences.</summary>
    /// <returns>0; -EBADF; -ENOTTY; -EINVAL for bad flags or when <paramref name="syncFileFd"/> is not a sync
    /// file.</returns>
    public int DmaBufImportSyncFile(int fd, uint flags, int syncFileFd)
    {
        int error = DmaBufOf(fd, out DmaBuf? buffer);
        return error != 0 ? error : buffer!.ImportSyncFileIoctl(flags, Resolve(syncFileFd));
    }

    private int SyncFileOf(int fd, out SyncFile? file)
    {
        object? o = Resolve(fd);
        file = o as SyncFile;
        return o is null ? -Errno.EBADF : file is null ? -Errno.ENOTTY : 0;
    }

    private int DmaBufOf(int fd, out DmaBuf? buffer)
    {
        object? o = Resolve(fd);
        buffer = o as DmaBuf;
        return o is null ? -Errno.EBADF : buffer is null ? -Errno.ENOTTY : 0;
    }
}
