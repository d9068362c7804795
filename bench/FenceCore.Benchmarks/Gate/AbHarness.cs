using System.Diagnostics;
using System.Linq.Expressions;
using System.Reflection;
using System.Runtime.Loader;
using System.Text.Json;
using BenchmarkDotNet.Attributes;

namespace FenceCore.Benchmarks.Gate;

/// <summary>One side's measurements of one benchmark, one sample per round.</summary>
/// <param name="NsPerOp">ns per operation, one figure per round, in round order.</param>
/// <param name="AllocatedBytes">Exact bytes per operation (the lowest round), or -1 when it did not run.</param>
internal sealed record SideSamples(double[] NsPerOp, long AllocatedBytes);

/// <summary>Both sides of one benchmark. A side that lacks the benchmark is null.</summary>
internal sealed record PairedBenchmark(string Name, SideSamples? Base, SideSamples? Candidate);

/// <summary>What <see cref="AbHarness"/> writes: <c>samples.json</c>.</summary>
internal sealed record PairedRun(string Processor, string Runtime, int Rounds, double IterationMs, IReadOnlyList<PairedBenchmark> Benchmarks);

/// <summary>
/// The gate's measuring harness: both builds in one process, interleaved at the iteration level.
/// </summary>
/// <remarks>
/// <para>
/// Why not two BenchmarkDotNet processes, one after the other: on the shared 2-core VMs this project
/// runs on, the speed of memory-touching code moves by up to 5× within a second (a neighbour's load on
/// the host's caches), and whole BenchmarkDotNet runs of the same build a minute apart differed by a
/// median 1.5× (measured: 71 benchmarks, three runs). No test on such samples can tell a 25% regression
/// from the machine. What the machine does to one 25 ms iteration it does, nearly, to the next one, so
/// the harness measures base and candidate back to back: each side's assemblies are loaded into an
/// <see cref="AssemblyLoadContext"/> of their own, and every round runs every benchmark of a class once
/// on each side, alternating which side goes first. The comparator then tests the paired ratios.
/// </para>
/// <para>
/// It follows BenchmarkDotNet's rules for the methods it runs: a fresh instance per benchmark, its
/// <c>[GlobalSetup]</c> before and <c>[GlobalCleanup]</c> after (made anew every round, so data lands
/// at new addresses), <c>OperationsPerInvoke</c> from the
/// <c>[Benchmark]</c> attribute, a warm-up until the JIT's tier-up has happened, and a fixed number of
/// invocations per iteration chosen once for both sides. Allocation is
/// <see cref="GC.GetAllocatedBytesForCurrentThread"/> around each iteration, the lowest round kept: a
/// real allocation on the path is in every round, a pool refill after a GC trim in one.
/// </para>
/// <para>
/// One process places each side's code and data once, and a placement can favour one side by a few
/// tens of percent for the whole process (seen in A/A runs: one benchmark 1.38× in one process, 1.0×
/// in the next). So <c>bench/gate.sh</c> runs several processes, alternating which side loads first,
/// and the comparator asks every process to agree.
/// </para>
/// <para>Usage: <c>gate-ab --base DIR --candidate DIR --out FILE [--rounds 16] [--iteration-ms 25] [--filter TEXT]... [--candidate-first]</c>,
/// where each DIR holds a build of <c>FenceCore.Benchmarks</c>.</para>
/// </remarks>
internal static class AbHarness
{
    public const string Verb = "gate-ab";

    public static int Run(string[] args)
    {
        string? baseDir = null;
        string? candidateDir = null;
        string? outFile = null;
        int rounds = 16;
        double iterationMs = 25;
        var filters = new List<string>();
        bool candidateFirst = false;
        for (int i = 0; i < args.Length; i++)
        {
            string? value = i + 1 < args.Length ? args[i + 1] : null;
            switch (args[i])
            {
                case "--base" when value is not null: baseDir = value; i++; break;
                case "--candidate" when value is not null: candidateDir = value; i++; break;
                case "--out" when value is not null: outFile = value; i++; break;
                case "--rounds" when value is not null && int.TryParse(value, out rounds) && rounds >= 3: i++; break;
                case "--iteration-ms" when value is not null && double.TryParse(value, System.Globalization.CultureInfo.InvariantCulture, out iterationMs) && iterationMs >= 1: i++; break;
                case "--filter" when value is not null: filters.Add(value); i++; break;
                case "--candidate-first": candidateFirst = true; break;
                default:
                    Console.Error.WriteLine($"gate: unknown or incomplete argument '{args[i]}' (rounds need at least 3, iteration-ms at least 1)");
                    return 2;
            }
        }

        if (baseDir is null || candidateDir is null || outFile is null)
        {
            Console.Error.WriteLine("usage: gate-ab --base DIR --candidate DIR --out FILE [--rounds 16] [--iteration-ms 25] [--filter TEXT]...");
            return 2;
        }

        // Which side loads (and so JITs and allocates its setup) first alternates between processes.
        Assembly? candidateAssembly = candidateFirst ? SideContext.LoadBenchmarks("candidate", candidateDir) : null;
        Assembly? baseAssembly = SideContext.LoadBenchmarks("base", baseDir);
        candidateAssembly ??= SideContext.LoadBenchmarks("candidate", candidateDir);
        if (baseAssembly is null || candidateAssembly is null)
        {
            Console.Error.WriteLine($"gate: no FenceCore.Benchmarks.dll in {(baseAssembly is null ? baseDir : candidateDir)}");
            return 2;
        }

        var results = new List<PairedBenchmark>();
        var classes = GateManifest.Load()
            .GroupBy(b => b.Name[..b.Name.IndexOf('.', StringComparison.Ordinal)], StringComparer.Ordinal)
            .Where(g => filters.Count == 0 || g.Any(b => filters.Any(f => b.Name.Contains(f, StringComparison.Ordinal))))
            .ToList();
        var clock = Stopwatch.StartNew();
        foreach (var group in classes)
        {
            string[] methods = group.Select(b => b.Name[(group.Key.Length + 1)..])
                .Where(m => filters.Count == 0 || filters.Any(f => $"{group.Key}.{m}".Contains(f, StringComparison.Ordinal)) || group.Any(b => b.Baseline == $"{group.Key}.{m}"))
                .ToArray();
            Console.WriteLine($"gate-ab: {group.Key} ({methods.Length} benchmarks, {rounds} rounds) at {clock.Elapsed.TotalSeconds:0} s");
            results.AddRange(RunClass(group.Key, methods, baseAssembly, candidateAssembly, rounds, iterationMs, candidateFirst));
        }

        var run = new PairedRun(PerformanceReport.CpuModel(), System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription,
            rounds, iterationMs, results);
        File.WriteAllText(outFile, JsonSerializer.Serialize(run, GateBaseline.JsonOptions) + "\n");
        Console.WriteLine($"gate-ab: {results.Count} benchmarks in {clock.Elapsed.TotalSeconds:0} s; samples in {outFile}");
        return 0;
    }

    private static List<PairedBenchmark> RunClass(string className, string[] methods, Assembly baseAssembly, Assembly candidateAssembly,
        int rounds, double iterationMs, bool candidateFirst)
    {
        var order = new Random(HashCode.Combine(className.Length, className[0], candidateFirst, Environment.ProcessId));
        Type? baseType = FindType(baseAssembly, className);
        Type? candidateType = FindType(candidateAssembly, className);
        var cases = new List<(string Method, Case? Base, Case? Candidate)>();
        try
        {
            foreach (string method in methods)
            {
                Case? c = candidateFirst ? Case.Create(candidateType, method) : null;
                Case? b = Case.Create(baseType, method);
                c ??= Case.Create(candidateType, method);
                cases.Add((method, b, c));
            }

            // Warm up both sides of every benchmark until the JIT has tiered up, then fix the
            // invocation count per iteration once, for both sides alike.
            var invocations = new int[cases.Count];
            for (int i = 0; i < cases.Count; i++)
            {
                double perInvokeNs = double.MaxValue;
                // The side loaded first is also warmed (so JIT-compiled, and its code placed) first.
                foreach (Case? c in candidateFirst ? (Case?[])[cases[i].Candidate, cases[i].Base] : [cases[i].Base, cases[i].Candidate])
                {
                    if (c is not null)
                    {
                        perInvokeNs = Math.Min(perInvokeNs, c.WarmUp());
                    }
                }

                invocations[i] = perInvokeNs == double.MaxValue ? 0 : (int)Math.Clamp(iterationMs * 1e6 / perInvokeNs, 1, int.MaxValue);
            }

            var samples = cases.Select(_ => (Base: new List<Measurement>(), Candidate: new List<Measurement>())).ToArray();
            for (int round = 0; round < rounds; round++)
            {
                if (round > 0)
                {
                    // Which side's data is allocated first alternates too: a fixed order gave one side the
                    // same neighbours in memory every round.
                    bool baseRenewedFirst = order.Next(2) == 0;
                    foreach (var (_, b, c) in cases)
                    {
                        (baseRenewedFirst ? b : c)?.Renew();
                        (baseRenewedFirst ? c : b)?.Renew();
                    }
                }

                for (int i = 0; i < cases.Count; i++)
                {
                    // Which side goes first is drawn at random (seeded per process), so no fixed pattern of
                    // neighbours in time favours one side: a strict A B / B A alternation did (an A/A run
                    // measured one 5 ns benchmark 1.18x slower on one side in all four processes).
                    bool baseFirst = order.Next(2) == 0;
                    Case? first = baseFirst ? cases[i].Base : cases[i].Candidate;
                    Case? second = baseFirst ? cases[i].Candidate : cases[i].Base;
                    Measurement? m1 = first?.Measure(invocations[i]);
                    Measurement? m2 = second?.Measure(invocations[i]);
                    (baseFirst ? samples[i].Base : samples[i].Candidate).AddIfNotNull(m1);
                    (baseFirst ? samples[i].Candidate : samples[i].Base).AddIfNotNull(m2);
                }
            }

            return cases.Select((c, i) => new PairedBenchmark($"{className}.{c.Method}",
                Summarize(c.Base, samples[i].Base), Summarize(c.Candidate, samples[i].Candidate))).ToList();
        }
        finally
        {
            foreach (var (_, b, c) in cases)
            {
                b?.Cleanup();
                c?.Cleanup();
            }
        }
    }

    private static void AddIfNotNull(this List<Measurement> list, Measurement? m)
    {
        if (m is not null)
        {
            list.Add(m);
        }
    }

    private static SideSamples? Summarize(Case? c, List<Measurement> samples) =>
        c is null || samples.Count == 0 ? null
            : new SideSamples([.. samples.Select(s => s.NsPerOp)], (long)Math.Round(samples.Min(s => s.BytesPerOp)));

    private static Type? FindType(Assembly assembly, string name) =>
        assembly.GetTypes().FirstOrDefault(t => t.Name == name && t.IsPublic && !t.IsAbstract);

    private sealed record Measurement(double NsPerOp, double BytesPerOp);

    /// <summary>
    /// One benchmark method on one side: its invoker, its operations per call, and the current instance.
    /// The instance is made anew (setup, and cleanup of the old one) before every round, so the data a
    /// benchmark touches lands at new addresses each round, as code does in each new process.
    /// </summary>
    private sealed class Case
    {
        private readonly Type _type;
        private readonly Action<object> _invoke;
        private readonly int _opsPerInvoke;
        private readonly MethodInfo[] _setups;
        private readonly MethodInfo[] _cleanups;
        private object _instance;

        private Case(Type type, Action<object> invoke, int opsPerInvoke, MethodInfo[] setups, MethodInfo[] cleanups)
        {
            _type = type;
            _invoke = invoke;
            _opsPerInvoke = opsPerInvoke;
            _setups = setups;
            _cleanups = cleanups;
            _instance = NewInstance();
        }

        public static Case? Create(Type? type, string methodName)
        {
            MethodInfo? method = type?.GetMethod(methodName, BindingFlags.Public | BindingFlags.Instance, Type.EmptyTypes);
            BenchmarkAttribute? bench = method?.GetCustomAttribute<BenchmarkAttribute>();
            if (type is null || method is null || bench is null)
            {
                return null;
            }

            // A compiled call that discards the result: one delegate call per invocation of the loop.
            ParameterExpression target = Expression.Parameter(typeof(object), "instance");
            Action<object> invoke = Expression.Lambda<Action<object>>(
                Expression.Block(typeof(void), Expression.Call(Expression.Convert(target, type), method)), target).Compile();
            return new Case(type, invoke, Math.Max(1, bench.OperationsPerInvoke),
                [.. Tagged<GlobalSetupAttribute>(type)], [.. Tagged<GlobalCleanupAttribute>(type)]);
        }

        private static IEnumerable<MethodInfo> Tagged<T>(Type type) where T : Attribute =>
            type.GetMethods(BindingFlags.Public | BindingFlags.Instance).Where(m => m.GetCustomAttribute<T>() is not null && m.GetParameters().Length == 0);

        private object NewInstance()
        {
            object instance = Activator.CreateInstance(_type)!;
            foreach (MethodInfo setup in _setups)
            {
                setup.Invoke(instance, null);
            }

            return instance;
        }

        /// <summary>Cleans up the current instance and sets up a new one.</summary>
        public void Renew()
        {
            Cleanup();
            _instance = NewInstance();
        }

        /// <summary>Runs the benchmark until tier-up has settled; returns the fastest ns per invocation seen.</summary>
        public double WarmUp()
        {
            double best = double.MaxValue;
            long start = Stopwatch.GetTimestamp();
            int calls = 0;
            while (calls < 200 || Stopwatch.GetElapsedTime(start).TotalMilliseconds < 120)
            {
                long t0 = Stopwatch.GetTimestamp();
                _invoke(_instance);
                best = Math.Min(best, Stopwatch.GetElapsedTime(t0).TotalNanoseconds);
                calls++;
                if (Stopwatch.GetElapsedTime(start).TotalMilliseconds > 2000)
                {
                    break; // a slow benchmark: 2 s of warm-up is enough
                }
            }

            return best;
        }

        public Measurement Measure(int invocations)
        {
            object instance = _instance;
            long bytes0 = GC.GetAllocatedBytesForCurrentThread();
            long t0 = Stopwatch.GetTimestamp();
            for (int i = 0; i < invocations; i++)
            {
                _invoke(instance);
            }

            double ns = Stopwatch.GetElapsedTime(t0).TotalNanoseconds;
            long bytes = GC.GetAllocatedBytesForCurrentThread() - bytes0;
            double ops = (double)invocations * _opsPerInvoke;
            return new Measurement(ns / ops, bytes / ops);
        }

        public void Cleanup()
        {
            foreach (MethodInfo cleanup in _cleanups)
            {
                cleanup.Invoke(_instance, null);
            }
        }
    }

    /// <summary>
    /// One build's assemblies, isolated from the other build's: its own FenceCore, FenceCore.VirtualGpu
    /// and benchmark code (and so its own statics), with BenchmarkDotNet and the framework shared from
    /// the host, so attribute types compare equal across both sides.
    /// </summary>
    private sealed class SideContext(string name, string folder) : AssemblyLoadContext($"gate-{name}", isCollectible: false)
    {
        public static Assembly? LoadBenchmarks(string name, string folder)
        {
            string path = Path.GetFullPath(Path.Combine(folder, "FenceCore.Benchmarks.dll"));
            return File.Exists(path) ? new SideContext(name, Path.GetFullPath(folder)).LoadFromAssemblyPath(path) : null;
        }

        protected override Assembly? Load(AssemblyName assemblyName)
        {
            string simple = assemblyName.Name ?? "";
            if (simple.StartsWith("BenchmarkDotNet", StringComparison.Ordinal) || simple.StartsWith("Perfolizer", StringComparison.Ordinal) ||
                simple.StartsWith("System.", StringComparison.Ordinal))
            {
                return null; // shared with the host
            }

            string path = Path.Combine(folder, simple + ".dll");
            return File.Exists(path) ? LoadFromAssemblyPath(path) : null;
        }
    }
}
