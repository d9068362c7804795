using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Runtime.CompilerServices;

namespace FenceCore.Internal;

/// <summary>Throw sites of the containers (chain, unwrap), sync files and syncobjs.</summary>
internal static partial class ThrowHelper
{
    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowChainContainsChain(string paramName) =>
        throw new ArgumentException(
            "The contained fence of a chain node must not itself be a chain: chaining is only allowed " +
            "through the previous link. Pass the older node as 'prev', or flatten the chain first " +
            "(FenceUnwrap.Merge).", paramName);

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowPointNotSubmitted(ulong seqno, ulong headSeqno, string paramName) =>
        throw new ArgumentOutOfRangeException(paramName, seqno, string.Create(CultureInfo.InvariantCulture,
            $"Point {seqno} has not been submitted yet: the chain's newest point is {headSeqno}. A point can only be looked up once a node at or after it exists (the kernel's -EINVAL)."));

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowPointZero(string paramName) =>
        throw new ArgumentOutOfRangeException(paramName, 0ul,
            "Timeline point 0 is the syncobj's binary payload, not a point: replace the fence instead (SyncObj.Replace).");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowUnreachable(string what) => throw new System.Diagnostics.UnreachableException(what);

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowErrno(int errno, string message) => throw new FenceErrnoException(errno, message);
}
