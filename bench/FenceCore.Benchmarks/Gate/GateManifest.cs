using System.Reflection;
using BenchmarkDotNet.Attributes;

namespace FenceCore.Benchmarks.Gate;

/// <summary>One benchmark the gate knows about, found by reflection over this assembly.</summary>
/// <param name="Name"><c>Type.Method</c>, the key in <c>bench/baseline.json</c>.</param>
/// <param name="Baseline"><c>Type.Method</c> of the class's <c>[Benchmark(Baseline = true)]</c> method.</param>
/// <param name="IsReference">True for the baseline itself and for <see cref="ReferenceAttribute"/> rows.</param>
/// <param name="Target">The <see cref="TargetAttribute.MaxRatio"/>, when the method declares one.</param>
internal sealed record GateBenchmark(string Name, string Baseline, bool IsReference, double? Target = null);

/// <summary>
/// The gated benchmarks: every method of every class in the <see cref="Suites.Gate"/> category, paired
/// with its class's baseline. Derived from the attributes, so the baseline of a ratio is declared in
/// one place (the benchmark class), never repeated by hand.
/// </summary>
internal static class GateManifest
{
    public static IReadOnlyList<GateBenchmark> Load()
    {
        var result = new List<GateBenchmark>();
        foreach (Type type in typeof(GateManifest).Assembly.GetTypes().OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            bool gated = type.GetCustomAttributes<BenchmarkCategoryAttribute>()
                .Any(a => a.Categories.Contains(Suites.Gate, StringComparer.Ordinal));
            if (!gated)
            {
                continue;
            }

            var methods = type.GetMethods(BindingFlags.Public | BindingFlags.Instance)
                .Select(m => (Method: m, Bench: m.GetCustomAttribute<BenchmarkAttribute>()))
                .Where(x => x.Bench is not null)
                .ToList();
            var baselines = methods.Where(x => x.Bench!.Baseline).ToList();
            if (baselines.Count != 1)
            {
                throw new InvalidOperationException(
                    $"{type.Name} is in the gate but has {baselines.Count} [Benchmark(Baseline = true)] methods; it needs exactly one.");
            }

            string baseline = $"{type.Name}.{baselines[0].Method.Name}";
            foreach (var (method, bench) in methods)
            {
                bool reference = bench!.Baseline || method.GetCustomAttribute<ReferenceAttribute>() is not null;
                double? target = method.GetCustomAttribute<TargetAttribute>()?.MaxRatio;
                result.Add(new GateBenchmark($"{type.Name}.{method.Name}", baseline, reference, target));
            }
        }

        return result;
    }
}
