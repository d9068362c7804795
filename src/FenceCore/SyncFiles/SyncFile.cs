using System.Globalization;
using System.Text;
using FenceCore.Internal;

namespace FenceCore;

/// <summary>
/// A file-like handle on exactly one fence (which may be an array or a chain), with a name. Mirrors
/// <c>sync_file</c> and its ioctls (<c>SYNC_IOC_MERGE</c>, <c>SYNC_IOC_FILE_INFO</c>,
/// <c>SYNC_IOC_SET_DEADLINE</c>) and poll.
/// </summary>
/// <remarks>
/// <para>
/// The ioctl-shaped members take the kernel's <c>flags</c> and <c>pad</c> fields and fail with a
/// <see cref="FenceErrnoException"/> carrying the kernel's errno (-EINVAL, -ENOENT), having changed
/// nothing. The fence a sync file holds never changes; closing a sync file (dropping it) never affects
/// its fence, so the type is not disposable.
/// </para>
/// <para>
/// Names are limited like the kernel's 32-byte, NUL-terminated fields: at most
/// <see cref="MaxNameBytes"/> UTF-8 bytes, cut on a character boundary.
/// </para>
/// </remarks>
public sealed class SyncFile
{
    /// <summary>The longest name, in UTF-8 bytes, that fits the kernel's 32-byte name fields.</summary>
    public const int MaxNameBytes = 31;

    private readonly string? _userName;

    /// <summary>0 until the first <see cref="Poll"/> enabled signalling; set once by CAS, so only the first
    /// poll arms the fence (the kernel's <c>POLL_ENABLED</c> bit).</summary>
    private int _pollEnabled;

    /// <summary>Wraps <paramref name="fence"/>. Mirrors <c>sync_file_create</c>.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="fence"/> is null.</exception>
    public SyncFile(Fence fence)
        : this(fence, null)
    {
    }

    private SyncFile(Fence fence, string? userName)
    {
        ArgumentNullException.ThrowIfNull(fence);
        Fence = fence;
        _userName = string.IsNullOrEmpty(userName) ? null : Truncate(userName);
    }

    /// <summary>The fence (<c>sync_file_get_fence</c>).</summary>
    public Fence Fence { get; }

    /// <summary>
    /// The name given at merge, or else "&lt;driver&gt;-&lt;timeline&gt;&lt;context&gt;-&lt;seqno&gt;" built
    /// from the fence, as <c>sync_file_get_name</c> prints it (the seqno as a signed 64-bit number).
    /// </summary>
    public string Name => _userName ?? Truncate(string.Create(CultureInfo.InvariantCulture,
        $"{Fence.DriverName}-{Fence.TimelineName}{Fence.Context}-{(long)Fence.Seqno}"));

    /// <summary>True when the fence has signalled (EPOLLIN), without arming anything.</summary>
    public bool IsReady => Fence.IsSignaled;

    /// <summary>
    /// Merges two sync files into a new one named <paramref name="name"/> whose fence is
    /// <see cref="FenceUnwrap.Merge"/> of both fences. The inputs stay valid and unchanged.
    /// </summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static SyncFile Merge(string name, SyncFile first, SyncFile second)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        return new SyncFile(FenceUnwrap.Merge(first.Fence, second.Fence), name);
    }

    /// <summary>
    /// <c>SYNC_IOC_MERGE</c> on this file: merges it with <paramref name="fd2"/> into a new sync file.
    /// An empty name leaves the new file with the default name, as an empty kernel name does.
    /// </summary>
    /// <param name="name">The new file's name (<c>sync_merge_data.name</c>).</param>
    /// <param name="fd2">The second operand: whatever object the caller's descriptor refers to.</param>
    /// <param name="flags">Must be 0.</param>
    /// <param name="pad">Must be 0.</param>
    /// <exception cref="FenceErrnoException">-EINVAL for non-zero flags or pad; -ENOENT when
    /// <paramref name="fd2"/> is not a sync file.</exception>
    internal SyncFile MergeIoctl(string? name, object? fd2, uint flags, uint pad)
    {
        if (flags != 0 || pad != 0)
        {
            ThrowHelper.ThrowErrno(-Errno.EINVAL, "SYNC_IOC_MERGE: flags and pad must be zero");
        }

        if (fd2 is SyncFile second)
        {
            return new SyncFile(FenceUnwrap.Merge(Fence, second.Fence), name);
        }

        ThrowHelper.ThrowErrno(-Errno.ENOENT, "SYNC_IOC_MERGE: the second operand is not a sync file");
        return null;
    }

    /// <summary>
    /// <c>SYNC_IOC_FILE_INFO</c>, the two-call protocol. With an empty <paramref name="fences"/> (the
    /// kernel's <c>num_fences = 0</c>) only the leaf count is returned, with the whole fence's status.
    /// Otherwise one entry per unwrapped leaf is filled, in unwrap order, and the status is the first
    /// non-positive leaf status in that order, or 1 when every leaf signalled without error (so it
    /// depends on order: a pending leaf before a failed one gives 0).
    /// </summary>
    /// <param name="fences">The caller's buffer: empty to ask for the count, else at least that long.</param>
    /// <returns>The name, the status and the number of leaves (written entries when filling).</returns>
    /// <exception cref="ArgumentException">A non-empty buffer is shorter than the number of leaves (the
    /// kernel answers -EINVAL); nothing was written.</exception>
    public SyncFileInfo GetInfo(Span<SyncFenceInfo> fences)
    {
        try
        {
            return GetInfoIoctl(fences, 0, 0);
        }
        catch (FenceErrnoException ex)
        {
            throw new ArgumentException(ex.Message.Replace("SYNC_IOC_FILE_INFO: ", string.Empty, StringComparison.Ordinal), nameof(fences));
        }
    }

    /// <summary>The ioctl shape of <see cref="GetInfo(Span{SyncFenceInfo})"/>, with its flags and pad
    /// (<see cref="Uapi.FileTable"/>).</summary>
    /// <exception cref="FenceErrnoException">-EINVAL for non-zero flags or pad, or a non-empty buffer shorter
    /// than the number of leaves.</exception>
    internal SyncFileInfo GetInfoIoctl(Span<SyncFenceInfo> fences, uint flags, uint pad)
    {
        if (flags != 0 || pad != 0)
        {
            ThrowHelper.ThrowErrno(-Errno.EINVAL, "SYNC_IOC_FILE_INFO: flags and pad must be zero");
        }

        int count = 0;
        foreach (Fence _ in FenceUnwrap.ForEach(Fence))
        {
            count++;
        }

        if (fences.IsEmpty)
        {
            Fence.Poll(); // dma_fence_get_status polls first
            return new SyncFileInfo(Name, Fence.Status, count);
        }

        if (fences.Length < count)
        {
            ThrowHelper.ThrowErrno(-Errno.EINVAL, string.Create(CultureInfo.InvariantCulture,
                $"SYNC_IOC_FILE_INFO: the buffer holds {fences.Length} entries but the sync file has {count} fences"));
        }

        int status = 1;
        int filled = 0;
        foreach (Fence leaf in FenceUnwrap.ForEach(Fence))
        {
            if (filled == fences.Length)
            {
                break; // leaves only disappear between the passes, so this cannot happen; stay in bounds anyway
            }

            leaf.Poll(); // as dma_fence_get_status does for each leaf
            int leafStatus = leaf.Status;
            fences[filled++] = new SyncFenceInfo(
                Truncate(leaf.TimelineName),
                Truncate(leaf.DriverName),
                leafStatus,
                0,
                leaf.TryGetTimestampNs(out long ts) ? ts : 0);
            status = status <= 0 ? status : leafStatus;
        }

        return new SyncFileInfo(Name, status, filled);
    }

    /// <summary>Hints that the fence is needed by <paramref name="deadline"/>, a point on the fence's clock
    /// (see <see cref="FenceCore.Fence.Timestamp"/>). Mirrors <c>SYNC_IOC_SET_DEADLINE</c>, whose
    /// nanosecond form is <c>FileTable.SyncSetDeadline</c>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The deadline is negative or beyond the clock's range.</exception>
    public void SetDeadline(TimeSpan deadline) => Fence.SetDeadline(deadline);

    /// <summary>
    /// poll(): true (EPOLLIN) iff the fence has signalled. The first poll enables signalling on the fence,
    /// as the kernel's first poll does by adding its wake-up callback, so a pending fence will get there.
    /// </summary>
    public bool Poll()
    {
        // The CAS makes the first poll the only one that arms the fence.
        if (Volatile.Read(ref _pollEnabled) == 0 && Interlocked.CompareExchange(ref _pollEnabled, 1, 0) == 0)
        {
            Fence.EnableSignaling();
        }

        return Fence.Poll();
    }

    /// <summary>Blocks until the fence signals or the timeout expires (poll with a timeout).</summary>
    /// <returns>True if signalled; false on timeout.</returns>
    public bool Wait(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        Fence.Wait(timeout, cancellationToken);

    /// <summary>As <see cref="Wait(TimeSpan, CancellationToken)"/>, with the timeout measured on
    /// <paramref name="timeProvider"/>'s clock (see <see cref="FenceCore.Fence.Wait(TimeSpan, TimeProvider, CancellationToken)"/>).</summary>
    /// <returns>True if signalled; false on timeout.</returns>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026", Justification = "The blocking wait's shape plus a clock, as Task.WaitAsync(TimeSpan, TimeProvider, CancellationToken).")]
    public bool Wait(TimeSpan timeout, TimeProvider timeProvider, CancellationToken cancellationToken = default) =>
        Fence.Wait(timeout, timeProvider, cancellationToken);

    /// <summary>Waits asynchronously until the fence signals.</summary>
    public ValueTask WaitAsync(CancellationToken cancellationToken = default) => Fence.WaitAsync(cancellationToken);

    /// <summary>Waits asynchronously until the fence signals or the timeout expires.</summary>
    /// <returns>True if signalled; false on timeout.</returns>
    public ValueTask<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        Fence.WaitAsync(timeout, cancellationToken);

    /// <summary>As <see cref="WaitAsync(TimeSpan, CancellationToken)"/>, with the timeout measured on
    /// <paramref name="timeProvider"/>'s clock.</summary>
    /// <returns>True if signalled; false on timeout.</returns>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026", Justification = "The blocking wait's shape plus a clock, as Task.WaitAsync(TimeSpan, TimeProvider, CancellationToken).")]
    public ValueTask<bool> WaitAsync(TimeSpan timeout, TimeProvider timeProvider, CancellationToken cancellationToken = default) =>
        Fence.WaitAsync(timeout, timeProvider, cancellationToken);

    /// <inheritdoc/>
    public override string ToString() => $"sync_file '{Name}' ({Fence})";

    /// <summary>Cuts <paramref name="text"/> to <see cref="MaxNameBytes"/> UTF-8 bytes on a character
    /// boundary, as copying into a 32-byte NUL-terminated field does.</summary>
    internal static string Truncate(string text)
    {
        if (Encoding.UTF8.GetByteCount(text) <= MaxNameBytes)
        {
            return text;
        }

        int length = text.Length;
        while (length > 0 && Encoding.UTF8.GetByteCount(text.AsSpan(0, length)) > MaxNameBytes)
        {
            length--;
            if (length > 0 && char.IsHighSurrogate(text[length - 1]))
            {
                length--; // never split a surrogate pair
            }
        }

        return text[..length];
    }
}

/// <summary>The answer of <see cref="SyncFile.GetInfo"/> (<c>struct sync_file_info</c>).</summary>
/// <param name="Name">The sync file's name.</param>
/// <param name="Status">0 pending, 1 signalled, or a negative error; see <see cref="SyncFile.GetInfo"/>.</param>
/// <param name="NumFences">The number of unwrapped leaves.</param>
public readonly record struct SyncFileInfo(string Name, int Status, int NumFences);

/// <summary>One leaf of a sync file (<c>struct sync_fence_info</c>).</summary>
/// <param name="ObjName">The leaf's timeline name.</param>
/// <param name="DriverName">The leaf's driver name.</param>
/// <param name="Status">0 pending, 1 signalled, or the negative error it signalled with.</param>
/// <param name="Flags">Always 0.</param>
/// <param name="TimestampNs">The signal time in ns, or 0 while pending: the uAPI's field, exact.</param>
/// <remarks>The record is the uAPI's struct, shared by <see cref="SyncFile.GetInfo"/> and
/// <c>FileTable.SyncFileInfo</c>, so it keeps the kernel's nanoseconds; <see cref="Timestamp"/> is the same
/// time on the idiomatic scale.</remarks>
public readonly record struct SyncFenceInfo(string ObjName, string DriverName, int Status, uint Flags, long TimestampNs)
{
    /// <summary>The signal time as a point on the fence's clock (see <see cref="Fence.Timestamp"/>);
    /// zero while pending.</summary>
    public TimeSpan Timestamp => TimeTicks.FromNs(TimestampNs);
}
