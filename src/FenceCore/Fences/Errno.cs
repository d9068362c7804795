namespace FenceCore;

/// <summary>
/// The Linux errno values that fences, sync files and the virtual GPU report, as positive numbers.
/// A fence error is the negative of one of these (for example <c>-Errno.ETIMEDOUT</c>), exactly as
/// <c>dma_fence_set_error</c> takes it.
/// </summary>
public static class Errno
{
    /// <summary>Operation not permitted.</summary>
    public const int EPERM = 1;
    /// <summary>No such entry: a closed sw_sync timeline, a second merge operand that is not a sync file.</summary>
    public const int ENOENT = 2;
    /// <summary>No such process: the jobs of a killed scheduler entity.</summary>
    public const int ESRCH = 3;
    /// <summary>Interrupted system call: what user space sees of a wait the kernel interrupted (-ERESTARTSYS inside).</summary>
    public const int EINTR = 4;
    /// <summary>Input/output error.</summary>
    public const int EIO = 5;
    /// <summary>Bad file descriptor.</summary>
    public const int EBADF = 9;
    /// <summary>Try again.</summary>
    public const int EAGAIN = 11;
    /// <summary>Out of memory.</summary>
    public const int ENOMEM = 12;
    /// <summary>Bad address.</summary>
    public const int EFAULT = 14;
    /// <summary>Device or resource busy.</summary>
    public const int EBUSY = 16;
    /// <summary>No such device: the device is lost.</summary>
    public const int ENODEV = 19;
    /// <summary>Invalid argument: bad flags, padding, or values.</summary>
    public const int EINVAL = 22;
    /// <summary>Inappropriate ioctl: the operation is not supported.</summary>
    public const int ENOTTY = 25;
    /// <summary>Resource deadlock would occur; also the error of a fence released with pending callbacks.</summary>
    public const int EDEADLK = 35;
    /// <summary>No data available.</summary>
    public const int ENODATA = 61;
    /// <summary>Too many open files (the descriptor table is full).</summary>
    public const int EMFILE = 24;
    /// <summary>No space left (an id allocator is exhausted).</summary>
    public const int ENOSPC = 28;
    /// <summary>Operation not supported (the driver lacks the feature).</summary>
    public const int EOPNOTSUPP = 95;
    /// <summary>Timer expired.</summary>
    public const int ETIME = 62;
    /// <summary>Connection timed out: the guilty job of an engine reset.</summary>
    public const int ETIMEDOUT = 110;
    /// <summary>Operation cancelled: innocent jobs lost in a reset.</summary>
    public const int ECANCELED = 125;
    /// <summary>The kernel's internal "restart the system call" code, returned by interrupted waits and turned into -EINTR for user space.</summary>
    public const int ERESTARTSYS = 512;
    /// <summary>The largest errno a fence error may carry (<c>MAX_ERRNO</c>).</summary>
    public const int MaxErrno = 4095;

    /// <summary>True when <paramref name="error"/> is a valid fence error: a negative errno in [-4095, -1].</summary>
    public static bool IsValidFenceError(int error) => error is >= -MaxErrno and <= -1;

    /// <summary>The symbolic name of a (positive or negative) errno, or its number when unknown.</summary>
    public static string Name(int errno) => Math.Abs(errno) switch
    {
        EPERM => "EPERM",
        ENOENT => "ENOENT",
        ESRCH => "ESRCH",
        EINTR => "EINTR",
        EIO => "EIO",
        EBADF => "EBADF",
        EAGAIN => "EAGAIN",
        ENOMEM => "ENOMEM",
        EFAULT => "EFAULT",
        EBUSY => "EBUSY",
        ENODEV => "ENODEV",
        EINVAL => "EINVAL",
        ENOTTY => "ENOTTY",
        EMFILE => "EMFILE",
        ENOSPC => "ENOSPC",
        EOPNOTSUPP => "EOPNOTSUPP",
        EDEADLK => "EDEADLK",
        ENODATA => "ENODATA",
        ETIME => "ETIME",
        ETIMEDOUT => "ETIMEDOUT",
        ECANCELED => "ECANCELED",
        ERESTARTSYS => "ERESTARTSYS",
        var other => other.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
