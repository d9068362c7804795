using System.Globalization;

namespace FenceCore;

/// <summary>
/// A failure of an ioctl-shaped operation (sync file, syncobj) that carries the Linux errno the kernel
/// would return, so a simulator can hand it back to its caller verbatim.
/// </summary>
/// <remarks>
/// <see cref="Errno"/> is negative, as kernel functions return it (for example <c>-Errno.EINVAL</c>).
/// The message says which rule the arguments broke. An operation that throws this has changed nothing.
/// </remarks>
public sealed class FenceErrnoException : Exception
{
    /// <summary>Creates the exception with -EINVAL and a generic message.</summary>
    public FenceErrnoException()
        : this(-FenceCore.Errno.EINVAL, "Invalid argument.")
    {
    }

    /// <summary>Creates the exception with -EINVAL and <paramref name="message"/>.</summary>
    public FenceErrnoException(string message)
        : this(-FenceCore.Errno.EINVAL, message)
    {
    }

    /// <summary>Creates the exception with -EINVAL, <paramref name="message"/> and an inner exception.</summary>
    public FenceErrnoException(string message, Exception innerException)
        : base(message, innerException)
    {
        Errno = -FenceCore.Errno.EINVAL;
    }

    /// <summary>Creates the exception for <paramref name="errno"/> (negative, e.g. <c>-Errno.ENOENT</c>).</summary>
    /// <param name="errno">The negative errno the kernel would return.</param>
    /// <param name="message">Which rule was broken.</param>
    public FenceErrnoException(int errno, string message)
        : base(string.Create(CultureInfo.InvariantCulture, $"{message} (-{FenceCore.Errno.Name(errno)})"))
    {
        Errno = errno < 0 ? errno : -errno;
    }

    /// <summary>The negative errno (for example -22 for EINVAL).</summary>
    public int Errno { get; }
}
