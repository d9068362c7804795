using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace FenceCore.Internal;

/// <summary>
/// Non-inlined throw sites, so the hot methods that call them stay small enough to inline.
/// Every message names the rule that was broken.
/// </summary>
internal static partial class ThrowHelper
{
    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowContextMismatch(Fence f1, Fence f2) =>
        throw new InvalidOperationException(
            $"Fences of different contexts cannot be ordered: {f1.Context}:{f1.Seqno} and {f2.Context}:{f2.Seqno}. " +
            "A seqno is only meaningful within its own context (timeline).");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowErrorOutOfRange(int error, string paramName) =>
        throw new ArgumentOutOfRangeException(paramName, error,
            $"A fence error must be a negative errno in [-{Errno.MaxErrno}, -1].");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowErrorAfterSignal(Fence fence) =>
        throw new InvalidOperationException(
            $"The error of fence {fence.Context}:{fence.Seqno} must be set before it signals; it has already signalled.");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowNegativeTimeout(string paramName) =>
        throw new ArgumentOutOfRangeException(paramName,
            "A timeout must be zero or positive, or Timeout.InfiniteTimeSpan to wait without limit.");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowCallbackAlreadyQueued() =>
        throw new InvalidOperationException(
            "This callback node is already queued on a fence. A node can be on one fence at a time; " +
            "remove it, or wait until it has run, before adding it again.");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowNotSignaled(Fence fence) =>
        throw new InvalidOperationException(
            $"Fence {fence.Context}:{fence.Seqno} has no timestamp yet: a timestamp exists only once the fence has signalled.");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowAwaitedBeforeSignal(Fence fence) =>
        throw new InvalidOperationException(
            $"The wait for fence {fence.Context}:{fence.Seqno} was consumed before the fence signalled: await it, or block with Fence.Wait.");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowEmptyFenceSet(string paramName) =>
        throw new ArgumentException("At least one fence is required (the kernel answers -EINVAL for an empty set).", paramName);

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowNullFenceInSet(string paramName, int index) =>
        throw new ArgumentNullException(paramName, $"The fence at index {index} is null; every element must be a fence.");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowZeroContexts(string paramName) =>
        throw new ArgumentOutOfRangeException(paramName, "At least one fence context must be allocated (count must be positive).");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowTimelineClosed(string name) =>
        throw new ObjectDisposedException(name, $"The sw_sync timeline '{name}' is closed: no fence can be created on it and it cannot advance.");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowContainerMember(string paramName, int index, Fence member) =>
        throw new ArgumentException(
            $"The fence at index {index} is a {member.GetType().Name}; an array's members must be plain fences. " +
            "Nesting containers makes signalling recurse; unwrap it first (FenceUnwrap) or add its leaves.", paramName);

    [DoesNotReturn]
    public static void ThrowTimeoutTooLong(TimeSpan timeout, string paramName) =>
        throw new ArgumentOutOfRangeException(paramName, timeout,
            $"A timeout is at most {int.MaxValue} ms (about 24.8 days), or Timeout.InfiniteTimeSpan for none; nothing was waited for or registered.");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowUnknownFenceOptions(FenceOptions options) =>
        throw new ArgumentOutOfRangeException(nameof(options), options,
            "Unknown fence option bits: a fence takes only FenceOptions.Seqno64 and FenceOptions.RunCallbacksAsynchronously.");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowTimelineExhausted(FenceTimeline timeline) =>
        throw new InvalidOperationException(
            $"Timeline '{timeline.Name}' (context {timeline.Context}) has handed out its last seqno; a seqno is never reused on a context.");
}
