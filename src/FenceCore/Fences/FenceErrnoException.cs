using System.Globalization;

namespace FenceCore;

/// <summary>
/// An operation the kernel would refuse with an errno because of the state it found (a point not
/// submitted, a device lost, a handle that names nothing), carrying that errno so a simulator can hand
/// it back verbatim. It is an <see cref="InvalidOperationException"/>, so code that does not care about
/// the errno catches it as such.
/// </summary>
/// <remarks>
/// <para>
/// The one error model of FenceCore: an argument that is wrong whatever the state (a negative timeout, a
/// null, an unknown flag of an enum) throws an <see cref="ArgumentException"/> (or a subclass) whose
/// message names the rule; a refusal that depends on the state throws this, with the kernel's errno; the
/// kernel-shaped surface in <see cref="Uapi"/> returns the errnos instead of throwing. A method that
/// throws either has changed nothing.
/// </para>
/// <para><see cref="Errno"/> is negative, as kernel functions return it (for example <c>-Errno.EINVAL</c>);
/// the message ends with its name.</para>
/// </remarks>
public sealed class FenceErrnoException : InvalidOperationException
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
