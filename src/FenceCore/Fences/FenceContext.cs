using FenceCore.Internal;

namespace FenceCore;

/// <summary>
/// Allocates fence contexts (timelines). Mirrors <c>dma_fence_context_alloc</c>.
/// </summary>
/// <remarks>
/// Ids are 64-bit, unique for the life of the process and never reused. Context 0 is reserved for
/// the signalled stubs (<see cref="Fence.Stub"/>), so the first allocated id is 1.
/// </remarks>
public static class FenceContext
{
    /// <summary>The context of the stub fences.</summary>
    public const ulong Stub = 0;

    /// <summary>The next free id. Written only with <see cref="Interlocked.Add(ref long, long)"/>.</summary>
    private static long s_next = 1;

    /// <summary>Allocates <paramref name="count"/> consecutive contexts and returns the first.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is not positive.</exception>
    public static ulong Allocate(int count = 1)
    {
        if (count <= 0)
        {
            ThrowHelper.ThrowZeroContexts(nameof(count));
        }

        // The atomic add is the linearization point: each caller gets a disjoint range.
        return (ulong)(Interlocked.Add(ref s_next, count) - count);
    }
}
