namespace FenceCore.Benchmarks;

/// <summary>Names shared by the suites.</summary>
internal static class Suites
{
    /// <summary>
    /// Operations per benchmark invocation. One-shot objects (fences, task completion sources) cannot be
    /// reset, so each invocation runs this many complete cycles in a loop and BenchmarkDotNet divides by
    /// it; the per-operation figures then need no [IterationSetup].
    /// </summary>
    public const int OpsPerInvoke = 1024;

    /// <summary>Category of the classes the regression gate (<c>bench/gate.sh</c>) runs.</summary>
    public const string Gate = "Gate";
}
