using System.Globalization;

namespace FenceCore.Uapi;

/// <summary>
/// A process's file descriptors, for the uAPI surface: sync files, syncobj files and eventfds are
/// installed here and named by an <see cref="int"/> fd, as the kernel's ioctls name them.
/// </summary>
/// <remarks>
/// The lowest free descriptor is handed out, from 3 up: 0, 1 and 2 stand for the process's standard
/// streams, which no ioctl here can resolve, so a caller that passes one gets the error a real process
/// would. Installing and closing take a private lock (an fd table is not on any hot path; the kernel's
/// takes a spinlock too); resolving an fd takes it as well, since a resolve racing a close must see the
/// file or its absence, never half of the close.
/// </remarks>
public sealed partial class FileTable
{
    /// <summary>The first descriptor this table hands out.</summary>
    public const int FirstFd = 3;

    private readonly object _gate = new();

    /// <summary>Slot i holds fd <see cref="FirstFd"/> + i, or null when free. Under <see cref="_gate"/>.</summary>
    private readonly List<object?> _files = [];

    private readonly int _maxFiles;

    /// <summary>Creates an empty table.</summary>
    /// <param name="maxFiles">The most descriptors open at once (<c>RLIMIT_NOFILE</c>); one more fails with -EMFILE.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxFiles"/> is not positive.</exception>
    public FileTable(int maxFiles = 1024)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxFiles);
        _maxFiles = maxFiles;
    }

    /// <summary>The number of open descriptors.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _files.Count(f => f is not null);
            }
        }
    }

    /// <summary>Installs a sync file and returns its new descriptor, or -EMFILE when the table is full.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="file"/> is null.</exception>
    public int Install(SyncFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        return InstallObject(file);
    }

    /// <summary>Installs a dma-buf and returns its new descriptor, or -EMFILE when the table is full.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="buffer"/> is null.</exception>
    public int Install(DmaBuf buffer)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        return InstallObject(buffer);
    }

    /// <summary>The dma-buf behind <paramref name="fd"/>, if it is one.</summary>
    public bool TryGetDmaBuf(int fd, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out DmaBuf? buffer)
    {
        buffer = Resolve(fd) as DmaBuf;
        return buffer is not null;
    }

    /// <summary>Creates an eventfd with the given initial count. Mirrors <c>eventfd(2)</c> without flags.</summary>
    /// <returns>The new descriptor, or -EMFILE when the table is full.</returns>
    public int CreateEventFd(ulong initialValue = 0) => InstallObject(new EventFd(initialValue));

    /// <summary>Closes a descriptor. Mirrors <c>close(2)</c>.</summary>
    /// <returns>0, or -EBADF when it is not open.</returns>
    public int Close(int fd)
    {
        lock (_gate)
        {
            int slot = fd - FirstFd;
            if (slot < 0 || slot >= _files.Count || _files[slot] is null)
            {
                return -Errno.EBADF;
            }

            _files[slot] = null;
            return 0;
        }
    }

    /// <summary>The sync file behind <paramref name="fd"/>, if it is one.</summary>
    public bool TryGetSyncFile(int fd, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out SyncFile? file)
    {
        file = Resolve(fd) as SyncFile;
        return file is not null;
    }

    /// <summary>The eventfd behind <paramref name="fd"/>, if it is one.</summary>
    public bool TryGetEventFd(int fd, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out EventFd? eventFd)
    {
        eventFd = Resolve(fd) as EventFd;
        return eventFd is not null;
    }

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"fd table ({Count} open)");

    /// <summary>The file behind <paramref name="fd"/>, or null when it is not open (or only reserved).</summary>
    internal object? Resolve(int fd)
    {
        lock (_gate)
        {
            int slot = fd - FirstFd;
            object? file = slot >= 0 && slot < _files.Count ? _files[slot] : null;
            return file is DrmFile.Reserved ? null : file;
        }
    }

    /// <summary>Puts the file into a descriptor reserved with <see cref="InstallObject"/>.</summary>
    internal void Fill(int fd, object file)
    {
        lock (_gate)
        {
            _files[fd - FirstFd] = file;
        }
    }

    internal int InstallObject(object file)
    {
        lock (_gate)
        {
            int free = _files.IndexOf(null);
            if (free >= 0)
            {
                _files[free] = file;
                return free + FirstFd;
            }

            if (_files.Count >= _maxFiles)
            {
                return -Errno.EMFILE;
            }

            _files.Add(file);
            return _files.Count - 1 + FirstFd;
        }
    }
}

/// <summary>
/// An eventfd: a 64-bit counter that notifications add to and a read takes. Mirrors <c>eventfd(2)</c>
/// (without <c>EFD_SEMAPHORE</c>), as <c>DRM_IOCTL_SYNCOBJ_EVENTFD</c> uses it.
/// </summary>
public sealed class EventFd
{
    private readonly object _gate = new();

    /// <summary>The counter. Under <see cref="_gate"/>; read with Volatile.Read by <see cref="Count"/>.</summary>
    private ulong _count;

    internal EventFd(ulong initialValue) => _count = initialValue;

    /// <summary>The counter, without taking it.</summary>
    public ulong Count => Volatile.Read(ref _count);

    /// <summary>Takes the counter and sets it to 0, without blocking. Mirrors a non-blocking <c>read(2)</c>.</summary>
    /// <returns>0 with the value, or -EAGAIN when the counter is 0.</returns>
    public int Read(out ulong value)
    {
        lock (_gate)
        {
            value = _count;
            if (value == 0)
            {
                return -Errno.EAGAIN;
            }

            Volatile.Write(ref _count, 0);
            return 0;
        }
    }

    /// <summary>Waits until the counter is not 0 or the timeout expires, without taking it.</summary>
    /// <returns>True when the counter is not 0.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is negative (other than infinite).</exception>
    public bool Wait(TimeSpan timeout)
    {
        Fence.ValidateTimeout(timeout, nameof(timeout));
        lock (_gate)
        {
            long start = FenceClock.NowNs;
            while (_count == 0)
            {
                TimeSpan left = Fence.Remaining(timeout, start);
                if (left == TimeSpan.Zero || !Monitor.Wait(_gate, left))
                {
                    return _count != 0;
                }
            }

            return true;
        }
    }

    /// <summary>Adds to the counter and wakes waiters. Mirrors <c>eventfd_signal</c>.</summary>
    internal void Signal(ulong n = 1)
    {
        lock (_gate)
        {
            Volatile.Write(ref _count, _count + n);
            Monitor.PulseAll(_gate);
        }
    }
}
