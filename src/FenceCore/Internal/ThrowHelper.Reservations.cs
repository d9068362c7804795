using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace FenceCore.Internal;

internal static partial class ThrowHelper
{
    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowBadUsage(FenceUsage usage, string paramName) =>
        throw new ArgumentOutOfRangeException(paramName, usage, "A fence usage must be Kernel, Write, Read or Bookkeep.");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowContainerReplacement(string paramName, Fence fence) =>
        throw new ArgumentException(
            $"The replacement is a {fence.GetType().Name}; Replace puts one fence in each slot, so it must be a plain fence. " +
            "Containers are never stored in a reservation.", paramName);

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowNotLockedByContext(Reservation obj) =>
        throw new InvalidOperationException(
            $"Reservation {obj.Name} is not locked by this acquire context: lock every object of a multi-object " +
            "submission with LockAll before adding fences through the context.");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowAlreadyLocking() =>
        throw new InvalidOperationException(
            "This acquire context already holds locks: call UnlockAll before locking a new set (a context locks one set at a time).");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowContextDisposed() =>
        throw new ObjectDisposedException(nameof(ReservationAcquireContext), "The acquire context has been disposed.");
}
