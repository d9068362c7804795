using System.Globalization;
using System.Text.Json;

namespace FenceCore.Benchmarks.Gate;

/// <summary>
/// The regression gate's comparator: reads BenchmarkDotNet full-JSON reports
/// (<c>*-report-full.json</c>) and <c>bench/baseline.json</c>, prints a before/after table, and
/// returns non-zero when a gated benchmark allocates more than its committed bytes per operation, or
/// its ratio to the class baseline is worse than the committed ratio times the tolerance.
/// </summary>
/// <remarks>
/// Usage: <c>FenceCore.Benchmarks gate-compare --baseline FILE --results DIR [--results DIR2]
/// [--retry-list FILE] [--update]</c>. With <c>--update</c> it rewrites the baseline file from the
/// results instead of comparing. With several result folders (a first run and a retry), a
/// comparison takes each benchmark's best ratio any single run gave (an update takes their geometric
/// mean instead, so a disturbed run cannot make the committed figure lax): a ratio is always taken within one run,
/// and noise only ever makes a ratio worse. <c>--retry-list</c> writes the classes that failed on time
/// alone, for <c>gate.sh</c> to run once more.
/// <para>
/// Ratios use each benchmark's fastest iteration (<c>Statistics.Min</c>), not the mean: on a shared
/// machine interference only ever adds time, and it lands on a benchmark and its baseline at different
/// moments, so the minimum is the figure least moved by neighbours.
/// </para>
/// </remarks>
internal static class GateComparer
{
    public const string Verb = "gate-compare";

    private readonly record struct Measured(double MinNs, long AllocatedBytes);

    public static int Run(string[] args)
    {
        string? baselinePath = null;
        var resultsDirs = new List<string>();
        string? retryList = null;
        bool update = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--baseline" when i + 1 < args.Length:
                    baselinePath = args[++i];
                    break;
                case "--results" when i + 1 < args.Length:
                    resultsDirs.Add(args[++i]);
                    break;
                case "--retry-list" when i + 1 < args.Length:
                    retryList = args[++i];
                    break;
                case "--update":
                    update = true;
                    break;
                default:
                    Console.Error.WriteLine($"gate: unknown argument '{args[i]}'");
                    return 2;
            }
        }

        if (baselinePath is null || resultsDirs.Count == 0)
        {
            Console.Error.WriteLine($"usage: {Verb} --baseline FILE --results DIR [--results DIR2] [--retry-list FILE] [--update]");
            return 2;
        }

        List<Dictionary<string, Measured>> runs = resultsDirs.Select(ReadResults).Where(r => r.Count > 0).ToList();
        if (runs.Count == 0)
        {
            Console.Error.WriteLine($"gate: no *-report-full.json with results under {string.Join(", ", resultsDirs)}");
            return 2;
        }

        IReadOnlyList<GateBenchmark> manifest = GateManifest.Load();
        GateBaseline committed = File.Exists(baselinePath)
            ? JsonSerializer.Deserialize<GateBaseline>(File.ReadAllText(baselinePath), GateBaseline.JsonOptions) ?? new GateBaseline()
            : new GateBaseline();

        return update
            ? Update(baselinePath, committed, manifest, runs)
            : Compare(committed, manifest, runs, retryList);
    }

    /// <summary>The best (lowest) ratio any one run gave, that run's figures, and the highest allocation
    /// seen in any run (allocation is deterministic; the strict reading is the safe one).</summary>
    private static bool TryBest(List<Dictionary<string, Measured>> runs, GateBenchmark bench,
        out Measured now, out Measured baseNow, out double ratio)
    {
        now = default;
        baseNow = default;
        ratio = double.PositiveInfinity;
        long maxBytes = -1;
        bool found = false;
        foreach (Dictionary<string, Measured> run in runs)
        {
            if (run.TryGetValue(bench.Name, out Measured n) && run.TryGetValue(bench.Baseline, out Measured b) && b.MinNs > 0)
            {
                maxBytes = Math.Max(maxBytes, n.AllocatedBytes);
                if (n.MinNs / b.MinNs < ratio)
                {
                    ratio = n.MinNs / b.MinNs;
                    now = n;
                    baseNow = b;
                }

                found = true;
            }
        }

        now = now with { AllocatedBytes = maxBytes };
        return found;
    }

    private static Dictionary<string, Measured> ReadResults(string resultsDir)
    {
        var measured = new Dictionary<string, Measured>(StringComparer.Ordinal);
        if (!Directory.Exists(resultsDir))
        {
            return measured;
        }

        foreach (string file in Directory.EnumerateFiles(resultsDir, "*-report-full.json", SearchOption.AllDirectories))
        {
            using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(file));
            foreach (JsonElement b in doc.RootElement.GetProperty("Benchmarks").EnumerateArray())
            {
                if (!b.TryGetProperty("Statistics", out JsonElement stats) || stats.ValueKind != JsonValueKind.Object)
                {
                    continue; // a failed benchmark has no statistics; it shows up as missing
                }

                string name = $"{b.GetProperty("Type").GetString()}.{b.GetProperty("Method").GetString()}";
                string parameters = b.GetProperty("Parameters").GetString() ?? "";
                if (parameters.Length > 0)
                {
                    name += $"({parameters})";
                }

                long bytes = b.TryGetProperty("Memory", out JsonElement memory) && memory.ValueKind == JsonValueKind.Object
                    ? memory.GetProperty("BytesAllocatedPerOperation").GetInt64()
                    : -1;
                measured[name] = new Measured(stats.GetProperty("Min").GetDouble(), bytes);
            }
        }

        return measured;
    }

    private static int Compare(GateBaseline committed, IReadOnlyList<GateBenchmark> manifest,
        List<Dictionary<string, Measured>> runs, string? retryList)
    {
        var retryClasses = new SortedSet<string>(StringComparer.Ordinal);
        var allocFailures = 0;
        var entries = committed.Benchmarks.ToDictionary(e => e.Name, StringComparer.Ordinal);
        var rows = new List<string[]>();
        int failures = 0;
        int unbaselined = 0;

        foreach (GateBenchmark bench in manifest)
        {
            if (bench.Name == bench.Baseline)
            {
                continue; // the baseline's ratio is 1 by definition
            }

            entries.TryGetValue(bench.Name, out GateBaseline.Entry? entry);
            bool haveNow = TryBest(runs, bench, out Measured now, out Measured baseNow, out double best);
            bool haveBase = haveNow;
            double? ratioNow = haveNow ? best : null;

            string verdict;
            string allowed = "-";
            if (!haveNow || !haveBase)
            {
                verdict = bench.IsReference ? "info: not run" : "FAIL: not run";
                if (!bench.IsReference)
                {
                    failures++;
                }
            }
            else if (entry is null)
            {
                verdict = "NEW: no baseline entry";
                unbaselined++;
            }
            else
            {
                double tolerance = entry.RatioTolerance ?? committed.RatioTolerance;
                double allowedRatio = entry.Ratio * tolerance;
                allowed = F(allowedRatio);
                var problems = new List<string>();
                bool allocWorse = now.AllocatedBytes > entry.AllocatedBytes;
                if (allocWorse)
                {
                    problems.Add($"alloc +{now.AllocatedBytes - entry.AllocatedBytes} B");
                }

                // The excess over the allowed ratio, in ns at the current baseline's speed.
                double excessNs = (ratioNow!.Value - allowedRatio) * baseNow.MinNs;
                bool timeWorse = ratioNow.Value > allowedRatio && excessNs > committed.NoiseNs;
                if (timeWorse)
                {
                    problems.Add($"ratio {F(ratioNow.Value / entry.Ratio)}x the committed one");
                }

                if (!bench.IsReference)
                {
                    allocFailures += allocWorse ? 1 : 0;
                    if (timeWorse)
                    {
                        retryClasses.Add(bench.Name[..bench.Name.IndexOf('.', StringComparison.Ordinal)]);
                    }
                }

                if (problems.Count == 0)
                {
                    verdict = bench.IsReference ? "info" : "ok";
                }
                else if (bench.IsReference)
                {
                    verdict = "info: " + string.Join(", ", problems);
                }
                else
                {
                    verdict = "FAIL: " + string.Join(", ", problems);
                    failures++;
                }
            }

            rows.Add([
                bench.Name,
                entry is null ? "-" : F(entry.Ratio),
                ratioNow is null ? "-" : F(ratioNow.Value),
                allowed,
                entry is null ? "-" : $"{entry.AllocatedBytes} B",
                haveNow ? $"{now.AllocatedBytes} B" : "-",
                haveNow ? $"{now.MinNs.ToString("0.0", CultureInfo.InvariantCulture)} ns" : "-",
                verdict,
            ]);
        }

        foreach (GateBaseline.Entry stale in committed.Benchmarks.Where(e => manifest.All(m => m.Name != e.Name)))
        {
            rows.Add([stale.Name, F(stale.Ratio), "-", "-", $"{stale.AllocatedBytes} B", "-", "-", "FAIL: in baseline.json, no such gated benchmark"]);
            failures++;
        }

        PrintTable(
            ["Benchmark", "Ratio before", "Ratio now", "Allowed", "Alloc before", "Alloc now", "Min now", "Verdict"],
            rows);
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Ratios: fastest iteration over the fastest iteration of the class's [Benchmark(Baseline = true)], in the same run (the best of {runs.Count} run(s)). A gated row fails on any allocation increase, or when its ratio exceeds the committed ratio x {committed.RatioTolerance} by more than {committed.NoiseNs} ns. 'info' rows are peers and floors, never failed on."));
        if (unbaselined > 0)
        {
            Console.WriteLine($"{unbaselined} benchmark(s) have no entry in the baseline yet: run 'bash bench/gate.sh --update' and commit bench/baseline.json.");
        }

        if (retryList is not null)
        {
            // Only a failure on time alone is worth a second run; an allocation increase is exact.
            File.WriteAllLines(retryList, allocFailures == 0 ? retryClasses : []);
        }

        Console.WriteLine(failures == 0 ? "gate: PASS" : $"gate: FAIL ({failures} regression(s))");
        return failures == 0 ? 0 : 1;
    }

    private static int Update(string path, GateBaseline committed, IReadOnlyList<GateBenchmark> manifest, List<Dictionary<string, Measured>> runs)
    {
        var previous = committed.Benchmarks.ToDictionary(e => e.Name, StringComparer.Ordinal);
        var entries = new List<GateBaseline.Entry>();
        foreach (GateBenchmark bench in manifest)
        {
            if (bench.Name == bench.Baseline)
            {
                continue;
            }

            if (!TryBest(runs, bench, out Measured now, out _, out _) || !TryTypical(runs, bench, out double ratio))
            {
                Console.Error.WriteLine($"gate: {bench.Name} or its baseline was not run; not updating.");
                return 1;
            }

            previous.TryGetValue(bench.Name, out GateBaseline.Entry? old);
            entries.Add(new GateBaseline.Entry
            {
                Name = bench.Name,
                Baseline = bench.Baseline,
                Ratio = Math.Round(ratio, 3),
                AllocatedBytes = now.AllocatedBytes,
                Reference = bench.IsReference ? true : null,
                RatioTolerance = old?.RatioTolerance,
            });
        }

        committed.Note ??= "Written by 'bash bench/gate.sh --update' (geometric mean of the ratios of two short runs). Ratios: fastest iteration over the fastest iteration of the class baseline, same run. Review the diff before committing.";
        committed.Benchmarks = entries;
        File.WriteAllText(path, JsonSerializer.Serialize(committed, GateBaseline.JsonOptions) + "\n");
        Console.WriteLine($"gate: wrote {entries.Count} entries to {path}");
        return 0;
    }

    /// <summary>The geometric mean of the per-run ratios: for the committed figure, where the best ratio
    /// would be biased low by a run whose baseline a neighbour slowed down.</summary>
    private static bool TryTypical(List<Dictionary<string, Measured>> runs, GateBenchmark bench, out double ratio)
    {
        double logSum = 0;
        int count = 0;
        foreach (Dictionary<string, Measured> run in runs)
        {
            if (run.TryGetValue(bench.Name, out Measured n) && run.TryGetValue(bench.Baseline, out Measured b) && b.MinNs > 0 && n.MinNs > 0)
            {
                logSum += Math.Log(n.MinNs / b.MinNs);
                count++;
            }
        }

        ratio = count == 0 ? 0 : Math.Exp(logSum / count);
        return count > 0;
    }

    private static string F(double value) => value.ToString("0.000", CultureInfo.InvariantCulture);

    private static void PrintTable(string[] header, List<string[]> rows)
    {
        int[] widths = header.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        string Line(string[] cells) => "| " + string.Join(" | ", cells.Select((c, i) => i == 0 || i == cells.Length - 1 ? c.PadRight(widths[i]) : c.PadLeft(widths[i]))) + " |";
        Console.WriteLine(Line(header));
        Console.WriteLine("|" + string.Join("|", widths.Select((w, i) => i == 0 || i == widths.Length - 1 ? new string('-', w + 2) : new string('-', w + 1) + ":")) + "|");
        foreach (string[] row in rows)
        {
            Console.WriteLine(Line(row));
        }
    }
}
