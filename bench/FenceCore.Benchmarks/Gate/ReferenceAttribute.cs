namespace FenceCore.Benchmarks;

/// <summary>
/// Marks a benchmark that is not FenceCore code: a second peer (say, <c>Task.WhenAny</c> next to a
/// <c>Task.WaitAny</c> baseline) or a floor (a bare compare-and-swap). The regression gate prints its
/// ratio and allocation for reading but never fails on it. The class's
/// <c>[Benchmark(Baseline = true)]</c> method is a reference by definition and needs no mark.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false, Inherited = false)]
public sealed class ReferenceAttribute : Attribute
{
}
