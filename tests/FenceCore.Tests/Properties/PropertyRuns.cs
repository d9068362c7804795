namespace FenceCore.Tests.Properties;

/// <summary>How many cases each property runs: 1,000 in CI, <c>FENCECORE_PROPERTY_ITERATIONS</c> in long mode
/// (for example 100000).</summary>
internal static class PropertyRuns
{
    public static long Iterations { get; } =
        long.TryParse(Environment.GetEnvironmentVariable("FENCECORE_PROPERTY_ITERATIONS"), out long n) && n > 0 ? n : 1_000;

    /// <summary>The leaves of a fence (<c>dma_fence_unwrap_for_each</c>), as a list.</summary>
    public static List<Fence> Leaves(Fence? fence)
    {
        var leaves = new List<Fence>();
        foreach (Fence leaf in FenceUnwrap.ForEach(fence))
        {
            leaves.Add(leaf);
        }

        return leaves;
    }
}
