namespace FenceCore.Benchmarks.Gate;

/// <summary>
/// Checks the comparator's statistics and verdict rules on synthetic rounds with known answers, so a
/// gate that would pass everything (or fail everything) is caught before it judges real runs.
/// <c>bench/gate.sh</c> runs it first; <c>FenceCore.Benchmarks gate-selftest</c> runs it alone.
/// </summary>
internal static class GateSelfTest
{
    public const string Verb = "gate-selftest";

    private const string Gated = "SyntheticBenchmarks.Fence_Operation";
    private const string Peer = "SyntheticBenchmarks.Peer_Baseline";
    private const string Added = "SyntheticBenchmarks.Fence_NewOperation";

    public static int Run()
    {
        var failures = new List<string>();
        int checks = 0;
        void Check(bool ok, string what)
        {
            checks++;
            if (!ok)
            {
                failures.Add(what);
            }
        }

        // Signed-rank: no evidence without a shift; strong evidence when every pair is above; one-sided.
        double[] mixed = [-3, -2, -1, 1, 2, 3, -4, 4, -5, 5, -6, 6];
        double[] above = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        Check(SignedRank.PAboveZero(mixed) > 0.4, "p for symmetric differences should be near 0.5");
        Check(SignedRank.PAboveZero(above) < 0.001, "p for twelve positive differences should be below 0.001 (exact: 1/4096)");
        Check(SignedRank.PAboveZero(above.Select(d => -d).ToArray()) > 0.999, "the test must be one-sided");
        Check(Math.Abs(SignedRank.UpperTail(1.959964) - 0.025) < 1e-4, "the normal tail at 1.96 should be 0.025");

        var manifest = new List<GateBenchmark>
        {
            new(Peer, Peer, IsReference: true),
            new(Gated, Peer, IsReference: false),
        };
        var committed = new GateBaseline { Benchmarks = [new() { Name = Gated, AllocatedBytes = 64 }, new() { Name = Peer, AllocatedBytes = 0 }] };
        var random = new Random(12345);

        // The machine's speed moves up to 2x from round to round, the same for both sides of a pair
        // (what the harness's back-to-back pairs buy); each measurement adds 3% of its own.
        GateResult aa = Compare(manifest, committed, random, gatedFactor: 1, peerFactor: 1);
        Check(aa.ExitCode == 0 && aa.Rows.All(r => r.Verdict == Verdict.Same), $"A/A should pass with every row the same, got exit {aa.ExitCode}");

        GateResult slower = Compare(manifest, committed, random, gatedFactor: 1.25, peerFactor: 1);
        Check(slower.ExitCode == 1 && Row(slower, Gated).Verdict == Verdict.Slower, $"a 25% regression should fail with exit 1, got {slower.ExitCode}");

        GateResult small = Compare(manifest, committed, random, gatedFactor: 1.05, peerFactor: 1);
        Check(small.ExitCode == 0, $"a 5% change is under the 10% threshold and should pass, got exit {small.ExitCode}");

        // A neighbour that lands on some candidate measurements and not their partners: the pairs disagree.
        GateResult disturbed = Compare(manifest, committed, random, gatedFactor: 1, peerFactor: 1, burstEvery: 2);
        Check(disturbed.ExitCode == 0, $"unpaired disturbance must not fail the gate, got exit {disturbed.ExitCode}");

        GateResult noisySlower = Compare(manifest, committed, random, gatedFactor: 1.3, peerFactor: 1.4);
        Check(noisySlower.ExitCode == 3, $"a slower row while the peer moved as much should be 'too noisy' (3), got {noisySlower.ExitCode}");

        GateResult alloc = Compare(manifest, committed, random, gatedFactor: 1, peerFactor: 1, candidateBytes: 88);
        Check(alloc.ExitCode == 1 && Row(alloc, Gated).Note.Contains("ALLOC", StringComparison.Ordinal), $"an allocation increase should fail with exit 1, got {alloc.ExitCode}");

        GateResult added = Compare(manifest, committed, random, gatedFactor: 1, peerFactor: 1, addNew: true);
        Check(added.ExitCode == 0 && Row(added, Added).Verdict == Verdict.New, $"a new benchmark should pass as new, got exit {added.ExitCode}");

        foreach (string failure in failures)
        {
            Console.Error.WriteLine($"gate-selftest: FAIL: {failure}");
        }

        Console.WriteLine(failures.Count == 0 ? $"gate-selftest: {checks} checks passed" : $"gate-selftest: {failures.Count} of {checks} check(s) failed");
        return failures.Count == 0 ? 0 : 1;
    }

    private static GateRow Row(GateResult result, string name) => result.Rows.Single(r => r.Name == name);

    private static GateResult Compare(List<GateBenchmark> manifest, GateBaseline committed, Random random,
        double gatedFactor, double peerFactor, long candidateBytes = 64, bool addNew = false, int burstEvery = 0)
    {
        const int Rounds = 16;
        double[] machine = [.. Enumerable.Range(0, Rounds).Select(_ => 1 + random.NextDouble())];
        double Noisy(double ns, int round, bool burst) => ns * machine[round] * (1 + 0.03 * random.NextDouble()) * (burst ? 2 : 1);
        SideSamples Side(double ns, double factor, long bytes, bool candidate) => new(
            [.. Enumerable.Range(0, Rounds).Select(r => Noisy(ns * factor, r, candidate && burstEvery > 0 && r % burstEvery == 0))], bytes);

        var benchmarks = new List<PairedBenchmark>
        {
            new(Gated, Side(100, 1, 64, false), Side(100, gatedFactor, candidateBytes, true)),
            new(Peer, Side(50, 1, 0, false), Side(50, peerFactor, 0, true)),
        };
        if (addNew)
        {
            benchmarks.Add(new(Added, null, Side(10, 1, 0, true)));
        }

        var run = new PairedRun("synthetic", "synthetic", Rounds, 25, benchmarks);
        return GateComparer.Compare(manifest, committed, [run], threshold: 0.10, alpha: 0.01, noiseNs: 1.5);
    }
}
