namespace FenceCore;

/// <summary>
/// How a fence in a <see cref="Reservation"/> uses the buffer. Mirrors <c>enum dma_resv_usage</c>.
/// </summary>
/// <remarks>
/// Ordered <see cref="Kernel"/> &lt; <see cref="Write"/> &lt; <see cref="Read"/> &lt; <see cref="Bookkeep"/>.
/// A query at level U sees every fence whose usage is ≤ U, so <see cref="Kernel"/> fences are seen by
/// every query: nobody can skip the fence of a buffer move or clear.
/// </remarks>
public enum FenceUsage
{
    /// <summary>Kernel memory management (moves, evictions, clears). Everyone must always wait for these.</summary>
    Kernel = 0,

    /// <summary>An implicitly synchronized write.</summary>
    Write = 1,

    /// <summary>An implicitly synchronized read.</summary>
    Read = 2,

    /// <summary>No implicit sync (explicitly synced submissions, preemption and page-table fences). Memory
    /// management still waits for these before moving or freeing the buffer.</summary>
    Bookkeep = 3,
}

/// <summary>Helpers on <see cref="FenceUsage"/>.</summary>
public static class FenceUsages
{
    /// <summary>
    /// The level a new access must wait for: a writer waits for readers and writers (<see cref="FenceUsage.Read"/>),
    /// a reader only for writers (<see cref="FenceUsage.Write"/>); kernel fences are included either way.
    /// Mirrors <c>dma_resv_usage_rw</c>, named for what it returns. It is not the level to add a fence at.
    /// </summary>
    /// <param name="write">True for the level a writer waits for, false for a reader's.</param>
    public static FenceUsage WaitLevelFor(bool write) => write ? FenceUsage.Read : FenceUsage.Write;

    /// <summary>The kernel's lower-case name: kernel, write, read or bookkeep.</summary>
    public static string Name(this FenceUsage usage) => usage switch
    {
        FenceUsage.Kernel => "kernel",
        FenceUsage.Write => "write",
        FenceUsage.Read => "read",
        FenceUsage.Bookkeep => "bookkeep",
        _ => throw new ArgumentOutOfRangeException(nameof(usage), usage, "A usage is Kernel, Write, Read or Bookkeep."),
    };

    internal static void Validate(FenceUsage usage, string paramName)
    {
        if ((uint)usage > (uint)FenceUsage.Bookkeep)
        {
            Internal.ThrowHelper.ThrowBadUsage(usage, paramName);
        }
    }
}

/// <summary>One entry of a reservation: a fence and its usage.</summary>
/// <param name="Fence">The fence (always a leaf: containers are never stored).</param>
/// <param name="Usage">How it uses the buffer.</param>
public readonly record struct ReservationEntry(Fence Fence, FenceUsage Usage);
