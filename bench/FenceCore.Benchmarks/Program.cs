using BenchmarkDotNet.Running;
using FenceCore.Benchmarks.Gate;

namespace FenceCore.Benchmarks;

/// <summary>
/// Entry point. <c>dotnet run -c Release --project bench/FenceCore.Benchmarks -- --filter '*'</c> runs
/// the suites (any BenchmarkDotNet switch works); <c>gate-ab</c>, <c>gate-compare</c>, <c>gate-report</c>
/// and <c>gate-selftest</c> as the first argument run the regression gate's paired harness, its
/// comparator, its performance report and the comparator's self-test instead (see <c>bench/gate.sh</c>); <c>contention</c> runs the
/// readers-against-a-writer harness (<see cref="ContentionHarness"/>).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == GateComparer.Verb)
        {
            return GateComparer.Run(args[1..]);
        }

        if (args.Length > 0 && args[0] == PerformanceReport.Verb)
        {
            return PerformanceReport.Run(args[1..]);
        }

        if (args.Length > 0 && args[0] == AbHarness.Verb)
        {
            return AbHarness.Run(args[1..]);
        }

        if (args.Length > 0 && args[0] == GateSelfTest.Verb)
        {
            return GateSelfTest.Run();
        }

        if (args.Length > 0 && args[0] == ContentionHarness.Verb)
        {
            return ContentionHarness.Run(args[1..]);
        }

        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, BenchConfig.Create());
        foreach (var summary in summaries)
        {
            if (summary.HasCriticalValidationErrors || summary.Reports.Any(r => !r.Success))
            {
                return 1;
            }
        }

        return 0;
    }
}
