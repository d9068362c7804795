using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Reports;

namespace FenceCore.Benchmarks;

/// <summary>
/// The configuration every run uses, on top of what the command line adds (<c>--job</c>,
/// <c>--inProcess</c>, <c>--exporters</c>, <c>--filter</c>): the memory diagnoser, and ratios printed
/// as plain numbers so the table reads as "0.42" rather than "2.38x faster". Summaries stay one per
/// class (no <c>--join</c>): each class has its own baseline, and a ratio means "against the
/// baseline in the same class".
/// </summary>
internal static class BenchConfig
{
    public static IConfig Create() =>
        DefaultConfig.Instance
            .AddDiagnoser(MemoryDiagnoser.Default)
            .AddColumn(CategoriesColumn.Default)
            .WithSummaryStyle(SummaryStyle.Default.WithRatioStyle(RatioStyle.Value));
}
