using System.Globalization;
using System.Text;
using System.Text.Json;

namespace FenceCore.Benchmarks.Gate;

/// <summary>What the gate concluded about one benchmark.</summary>
internal enum Verdict
{
    /// <summary>No significant change beyond the threshold.</summary>
    Same,

    /// <summary>Significantly slower than base by more than the threshold.</summary>
    Slower,

    /// <summary>Significantly faster than base by more than the threshold.</summary>
    Faster,

    /// <summary>The median ratio is past the threshold, but the pairs disagree too much for the test: the machine, not the code, moved.</summary>
    Noisy,

    /// <summary>Only the candidate has it.</summary>
    New,

    /// <summary>Only the base has it.</summary>
    Removed,

    /// <summary>A gated benchmark of the candidate that produced no result.</summary>
    NotRun,
}

/// <summary>One row of the gate's table.</summary>
internal sealed record GateRow(
    string Name,
    bool Gated,
    double? BaseMedianNs,
    double? CandidateMedianNs,
    double? Ratio,
    double[]? ProcessRatios,
    double? PSlower,
    double? PFaster,
    double? PairSpread,
    long? BaseBytes,
    long? CandidateBytes,
    long? CommittedBytes,
    Verdict Verdict,
    string Note);

/// <summary>The gate's decision and its rows, as written to <c>gate.json</c>.</summary>
internal sealed record GateResult(
    string Processor,
    string Runtime,
    int Rounds,
    double Threshold,
    double Alpha,
    double NoiseNs,
    int ExitCode,
    string Decision,
    IReadOnlyList<GateRow> Rows);

/// <summary>
/// The regression gate's comparator. Reads the paired samples of <see cref="AbHarness"/> (base and
/// candidate measured back to back, round after round, in one process) and decides per benchmark with a
/// one-sided Wilcoxon signed-rank test on the paired ratios plus a threshold; allocations are compared
/// exactly with the committed <c>bench/baseline.json</c>.
/// </summary>
/// <remarks>
/// <para>
/// A benchmark is <see cref="Verdict.Slower"/> when the median of its paired ratios (candidate over base,
/// each pair measured back to back) exceeds 1 + threshold, the signed-rank test of "the paired log ratios
/// exceed log(1 + threshold)" gives p &lt; alpha, and the medians differ by more than the absolute noise
/// floor. When the median ratio is past the threshold but the test is not significant, the pairs
/// disagree and the row is <see cref="Verdict.Noisy"/>.
/// </para>
/// <para>
/// Peer and floor rows (the class baselines and <see cref="ReferenceAttribute"/> rows) are the same code
/// on both sides, so they are the gate's noise control: when one of them comes out significantly slower
/// or faster by the same rules, the two sides differ for a reason that is not the code, and a slower
/// gated row then gives exit code 3, "too noisy for a verdict", rather than a failure. A noisy row (past
/// the threshold, but the test is not significant) is reported and does not fail: the gate fails only on
/// evidence.
/// </para>
/// <para>Exit codes: 0 pass, 1 regression (time, allocation, or a gated benchmark that did not run),
/// 2 bad usage or missing results, 3 too noisy for a verdict.</para>
/// </remarks>
internal static class GateComparer
{
    public const string Verb = "gate-compare";

    private const string Usage =
        "usage: gate-compare --samples FILE [--samples FILE ...] --alloc-baseline FILE --out DIR [--threshold 0.10] [--alpha 0.01] [--noise-ns 1.5] [--update-alloc]";

    public static int Run(string[] args)
    {
        var samplesFiles = new List<string>();
        string? allocBaseline = null;
        string? outDir = null;
        double threshold = 0.10;
        double alpha = 0.01;
        double noiseNs = 1.5;
        bool updateAlloc = false;
        for (int i = 0; i < args.Length; i++)
        {
            string? value = i + 1 < args.Length ? args[i + 1] : null;
            switch (args[i])
            {
                case "--samples" when value is not null: samplesFiles.Add(value); i++; break;
                case "--alloc-baseline" when value is not null: allocBaseline = value; i++; break;
                case "--out" when value is not null: outDir = value; i++; break;
                case "--threshold" when value is not null && TryFraction(value, out threshold): i++; break;
                case "--alpha" when value is not null && TryFraction(value, out alpha): i++; break;
                case "--noise-ns" when value is not null && double.TryParse(value, CultureInfo.InvariantCulture, out noiseNs): i++; break;
                case "--update-alloc": updateAlloc = true; break;
                default:
                    Console.Error.WriteLine($"gate: unknown or incomplete argument '{args[i]}'");
                    Console.Error.WriteLine(Usage);
                    return 2;
            }
        }

        if (samplesFiles.Count == 0 || allocBaseline is null || outDir is null)
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }

        var runs = new List<PairedRun>();
        foreach (string file in samplesFiles)
        {
            PairedRun? one = File.Exists(file) ? JsonSerializer.Deserialize<PairedRun>(File.ReadAllText(file), GateBaseline.JsonOptions) : null;
            if (one is null || one.Benchmarks.Count == 0)
            {
                Console.Error.WriteLine($"gate: no samples in {file}");
                return 2;
            }

            runs.Add(one);
        }

        IReadOnlyList<GateBenchmark> manifest = GateManifest.Load();
        GateBaseline committed = GateBaseline.Load(allocBaseline);
        Directory.CreateDirectory(outDir);
        if (updateAlloc)
        {
            return UpdateAllocations(allocBaseline, committed, manifest, runs[0]);
        }

        GateResult result = Compare(manifest, committed, runs, threshold, alpha, noiseNs);
        string table = RenderMarkdown(result);
        File.WriteAllText(Path.Combine(outDir, "gate.md"), table);
        File.WriteAllText(Path.Combine(outDir, "gate.json"), JsonSerializer.Serialize(result, GateBaseline.JsonOptions) + "\n");
        Console.WriteLine(table);
        return result.ExitCode;
    }

    private static bool TryFraction(string text, out double value)
    {
        bool percent = text.EndsWith('%');
        bool ok = double.TryParse(percent ? text[..^1] : text, NumberStyles.Float, CultureInfo.InvariantCulture, out value);
        if (percent)
        {
            value /= 100;
        }

        return ok && value > 0 && value < 1;
    }

    /// <summary>Decides every benchmark; pure, so the verdict rules can be checked on synthetic runs.</summary>
    internal static GateResult Compare(IReadOnlyList<GateBenchmark> manifest, GateBaseline committed, IReadOnlyList<PairedRun> runs,
        double threshold, double alpha, double noiseNs)
    {
        var roles = manifest.ToDictionary(m => m.Name, m => !m.IsReference && m.Name != m.Baseline, StringComparer.Ordinal);
        var allocations = committed.Benchmarks.ToDictionary(e => e.Name, e => e.AllocatedBytes, StringComparer.Ordinal);
        var rows = new List<GateRow>();
        foreach (string name in runs.SelectMany(r => r.Benchmarks).Select(b => b.Name).Distinct().Order(StringComparer.Ordinal))
        {
            bool gated = roles.TryGetValue(name, out bool g) && g;
            long? committedBytes = allocations.TryGetValue(name, out long cb) ? cb : null;
            var perProcess = runs.Select(r => r.Benchmarks.FirstOrDefault(b => b.Name == name)).Where(b => b is not null).Select(b => b!).ToList();
            rows.Add(Decide(name, perProcess, gated, committedBytes, threshold, alpha, noiseNs));
        }

        int allocFailures = rows.Count(r => r.Gated && r.CandidateBytes > r.CommittedBytes);
        int notRun = rows.Count(r => r.Verdict == Verdict.NotRun);
        int slower = rows.Count(r => r.Gated && r.Verdict == Verdict.Slower);
        int noisyGated = rows.Count(r => r.Gated && r.Verdict == Verdict.Noisy);
        int movedControls = rows.Count(r => !r.Gated && r.Verdict is Verdict.Slower or Verdict.Faster);
        int noisyControls = rows.Count(r => !r.Gated && r.Verdict == Verdict.Noisy);

        int exitCode;
        string decision;
        string noise = noisyGated + noisyControls > 0
            ? $" (note: {noisyGated} gated and {noisyControls} peer/floor row(s) past the threshold without a significant test: the machine was not quiet)"
            : "";
        if (allocFailures > 0 || notRun > 0)
        {
            exitCode = 1;
            decision = $"FAIL: {allocFailures} allocation increase(s), {notRun} gated benchmark(s) not run, {slower} slower";
        }
        else if (slower == 0)
        {
            exitCode = 0;
            decision = "PASS" + noise;
        }
        else if (movedControls > 0)
        {
            exitCode = 3;
            decision = $"NO VERDICT: the machine is too noisy: {slower} gated row(s) look slower, but {movedControls} peer/floor row(s), the same code on both sides, moved as significantly; run again on a quieter machine";
        }
        else
        {
            exitCode = 1;
            decision = string.Create(CultureInfo.InvariantCulture, $"FAIL: {slower} benchmark(s) slower than base by more than {threshold:P0}") + noise;
        }

        return new GateResult(runs[0].Processor, runs[0].Runtime, runs.Sum(r => r.Rounds), threshold, alpha, noiseNs, exitCode, decision, rows);
    }

    private static GateRow Decide(string name, List<PairedBenchmark> perProcess, bool gated, long? committedBytes,
        double threshold, double alpha, double noiseNs)
    {
        SideSamples? a = Pool(perProcess.Select(p => p.Base));
        SideSamples? b = Pool(perProcess.Select(p => p.Candidate));
        string allocNote = AllocNote(gated, b?.AllocatedBytes, committedBytes, a?.AllocatedBytes);
        if (b is null)
        {
            return new GateRow(name, gated, a is null ? null : SignedRank.Median(a.NsPerOp), null, null, null, null, null, null,
                a?.AllocatedBytes, null, committedBytes, gated ? Verdict.NotRun : Verdict.Removed,
                gated ? "no result in the candidate run" : "only in base");
        }

        if (a is null)
        {
            return new GateRow(name, gated, null, SignedRank.Median(b.NsPerOp), null, null, null, null, null, null, b.AllocatedBytes,
                committedBytes, Verdict.New, Join("only in the candidate", allocNote));
        }

        // Paired log ratios, pooled over every process; and each process's own median ratio.
        var logRatios = new List<double>();
        var processRatios = new List<double>();
        foreach (PairedBenchmark p in perProcess)
        {
            if (p.Base is null || p.Candidate is null)
            {
                continue;
            }

            int n = Math.Min(p.Base.NsPerOp.Length, p.Candidate.NsPerOp.Length);
            double[] own = [.. Enumerable.Range(0, n).Select(i => Math.Log(p.Candidate.NsPerOp[i] / p.Base.NsPerOp[i]))];
            logRatios.AddRange(own);
            processRatios.Add(Math.Exp(SignedRank.Median(own)));
        }

        double baseMedian = SignedRank.Median(a.NsPerOp);
        double candidateMedian = SignedRank.Median(b.NsPerOp);
        double ratio = Math.Exp(SignedRank.Median(logRatios));
        double shift = Math.Log(1 + threshold);
        double pSlower = SignedRank.PAboveZero([.. logRatios.Select(d => d - shift)]);
        double pFaster = SignedRank.PAboveZero([.. logRatios.Select(d => -d - shift)]);
        double[] sortedRatios = [.. logRatios.Order().Select(Math.Exp)];
        double spread = sortedRatios[(int)(0.9 * (sortedRatios.Length - 1))] / sortedRatios[(int)(0.1 * (sortedRatios.Length - 1))];
        bool beyondNoise = Math.Abs(candidateMedian - baseMedian) > noiseNs;

        // A process places code anew; a difference that only a minority of placements shows is not the code's.
        double half = 1 + threshold / 2;
        Verdict verdict = Verdict.Same;
        if (beyondNoise && ratio > 1 + threshold)
        {
            verdict = pSlower < alpha && SignedRank.Median(processRatios) > half ? Verdict.Slower : Verdict.Noisy;
        }
        else if (beyondNoise && ratio < 1 / (1 + threshold))
        {
            verdict = pFaster < alpha && SignedRank.Median(processRatios) < 1 / half ? Verdict.Faster : Verdict.Noisy;
        }

        return new GateRow(name, gated, baseMedian, candidateMedian, ratio, [.. processRatios], pSlower, pFaster, spread,
            a.AllocatedBytes, b.AllocatedBytes, committedBytes, verdict, allocNote);
    }

    /// <summary>Every process's rounds of one side as one sample set; the allocation is the lowest seen.</summary>
    private static SideSamples? Pool(IEnumerable<SideSamples?> sides)
    {
        var present = sides.Where(s => s is not null).Select(s => s!).ToList();
        return present.Count == 0 ? null : new SideSamples([.. present.SelectMany(s => s.NsPerOp)], present.Min(s => s.AllocatedBytes));
    }

    private static string AllocNote(bool gated, long? candidateBytes, long? committedBytes, long? baseBytes)
    {
        if (candidateBytes is null || candidateBytes < 0)
        {
            return "";
        }

        if (committedBytes is null)
        {
            return gated ? "no committed allocation (run bash bench/gate.sh --update-alloc)" : "";
        }

        if (candidateBytes > committedBytes)
        {
            return $"ALLOC +{candidateBytes - committedBytes} B over bench/baseline.json" + (gated ? "" : " (peer row, not failed)");
        }

        if (candidateBytes < committedBytes)
        {
            return $"alloc -{committedBytes - candidateBytes} B: lock it in with --update-alloc";
        }

        return baseBytes is not null && baseBytes != candidateBytes ? $"base allocated {baseBytes} B" : "";
    }

    private static string Join(string a, string b) => b.Length == 0 ? a : $"{a}; {b}";

    private static int UpdateAllocations(string path, GateBaseline committed, IReadOnlyList<GateBenchmark> manifest, PairedRun run)
    {
        var measured = run.Benchmarks.ToDictionary(b => b.Name, StringComparer.Ordinal);
        var entries = new List<GateBaseline.Entry>();
        foreach (GateBenchmark bench in manifest)
        {
            if (!measured.TryGetValue(bench.Name, out PairedBenchmark? m) || m.Candidate is null)
            {
                Console.Error.WriteLine($"gate: {bench.Name} was not run; not updating {path}.");
                return 1;
            }

            entries.Add(new GateBaseline.Entry
            {
                Name = bench.Name,
                AllocatedBytes = m.Candidate.AllocatedBytes,
                Reference = bench.Name == bench.Baseline || bench.IsReference ? true : null,
            });
        }

        committed.Benchmarks = entries;
        committed.Save(path);
        Console.WriteLine($"gate: wrote {entries.Count} allocation entries to {path}; review the diff before committing");
        return 0;
    }

    internal static string RenderMarkdown(GateResult result)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"## Benchmark gate: base against candidate, {result.Rounds} interleaved rounds");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"CPU: {result.Processor}; runtime: {result.Runtime}. Rule: slower when the median of the paired ratios (candidate over base, measured back to back) exceeds {1 + result.Threshold:0.00}, the one-sided signed-rank test of the paired log ratios against log({1 + result.Threshold:0.00}) gives p < {result.Alpha}, the medians differ by more than {result.NoiseNs} ns, and the median of the processes' own median ratios exceeds {1 + result.Threshold / 2:0.00}. Spread: the 90th over the 10th percentile of the paired ratios.");
        sb.AppendLine();
        sb.AppendLine("| Benchmark | Role | Base (median) | Candidate (median) | Ratio | Per process | Spread | p (slower) | Alloc (base → candidate, committed) | Verdict |");
        sb.AppendLine("|---|---|---:|---:|---:|---|---:|---:|---|---|");
        foreach (GateRow r in result.Rows)
        {
            string alloc = $"{Bytes(r.BaseBytes)} → {Bytes(r.CandidateBytes)}, {Bytes(r.CommittedBytes)}";
            string verdict = r.Verdict.ToString().ToLowerInvariant();
            if (r.Gated && r.Verdict == Verdict.Slower)
            {
                verdict = "**SLOWER**";
            }

            if (r.Note.Length > 0)
            {
                verdict += $" ({r.Note})";
            }

            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Name} | {(r.Gated ? "gated" : "peer/floor")} | {Ns(r.BaseMedianNs)} | {Ns(r.CandidateMedianNs)} | {Num(r.Ratio, "0.000")} | {string.Join(" ", (r.ProcessRatios ?? []).Select(x => x.ToString("0.00", CultureInfo.InvariantCulture)))} | {Num(r.PairSpread, "0.00")} | {Num(r.PSlower, "0.0000")} | {alloc} | {verdict} |");
        }

        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"gate: {result.Decision} (exit {result.ExitCode})");
        return sb.ToString();
    }

    private static string Num(double? v, string format) => v is double x ? x.ToString(format, CultureInfo.InvariantCulture) : "-";

    private static string Ns(double? ns) => ns is double v ? v.ToString(v < 10 ? "0.000" : "0.0", CultureInfo.InvariantCulture) + " ns" : "-";

    private static string Bytes(long? b) => b is long v && v >= 0 ? $"{v} B" : "-";
}
