using System.Numerics;
using System.Runtime.Intrinsics;
using BenchmarkDotNet.Attributes;

namespace FenceCore.Benchmarks;

/// <summary>
/// <see cref="FenceUnwrap.Merge"/> of two or three fences, the real-world mix (kernel-fence-model §4:
/// 2–3 inputs dominate, and 90% of them resolve to one fence): one input already signalled, two points
/// of one context, and three inputs of which two collapse, all resolving to one fence (target: 0 bytes);
/// two and three contexts, which build an array. Baseline: <c>Task.WhenAll(first, second)</c> over
/// two pending tasks, what a .NET developer combines two waits with.
/// </summary>
[BenchmarkCategory(Suites.Gate)]
public class MergeSmallBenchmarks
{
    private const int N = Suites.OpsPerInvoke;
    /// <summary>The baseline's pending pair is replaced by a fresh one every this many merges: each
    /// <c>WhenAll</c> adds a continuation to both tasks, and without a bound their continuation lists grew for
    /// the whole run (a baseline that slowed down and spread as it ran: rounds 0.26-2.52x in the 2026-12-01
    /// report). The replacement costs two task creations per 1,024 merges.</summary>
    private const int PairLifetime = 1024;
    private TaskCompletionSource _first = new();
    private TaskCompletionSource _second = new();
    private FenceSource _signaled = null!;
    private FenceSource _a1 = null!;
    private FenceSource _a2 = null!;
    private FenceSource _b = null!;
    private FenceSource _c = null!;
    private object? _sink;

    [GlobalSetup]
    public void Setup()
    {
        ulong context = FenceContext.Allocate(4);
        _signaled = new FenceSource(context, 1);
        _signaled.Signal();
        _a1 = new FenceSource(context + 1, 1);
        _a2 = new FenceSource(context + 1, 2);
        _b = new FenceSource(context + 2, 1);
        _c = new FenceSource(context + 3, 1);
        if (!ReferenceEquals(FenceUnwrap.Merge(_a1, _a2), _a2) || FenceUnwrap.Merge(_a2, _b, _c) is not FenceArray)
        {
            throw new InvalidOperationException("merge did not resolve as the benchmark expects");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _a1.Signal();
        _a2.Signal();
        _b.Signal();
        _c.Signal();
        _first.SetResult();
        _second.SetResult();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public object? Task_WhenAll_TwoPending()
    {
        Task first = _first.Task;
        Task second = _second.Task;
        for (int i = 0; i < N; i++)
        {
            if ((i & (PairLifetime - 1)) == PairLifetime - 1)
            {
                // Dropped, not completed: completing would run every WhenAll's continuation in the loop.
                _first = new TaskCompletionSource();
                _second = new TaskCompletionSource();
                first = _first.Task;
                second = _second.Task;
            }

            _sink = Task.WhenAll(first, second);
        }

        return _sink;
    }

    [Benchmark(OperationsPerInvoke = N)]
    public object? Merge2_OneSignaled_ResolvesToOne()
    {
        for (int i = 0; i < N; i++)
        {
            _sink = FenceUnwrap.Merge(_signaled, _b);
        }

        return _sink;
    }

    [Benchmark(OperationsPerInvoke = N)]
    public object? Merge2_SameContext_ResolvesToOne()
    {
        for (int i = 0; i < N; i++)
        {
            _sink = FenceUnwrap.Merge(_a1, _a2);
        }

        return _sink;
    }

    [Benchmark(OperationsPerInvoke = N)]
    public object? Merge3_ResolvesToOne()
    {
        for (int i = 0; i < N; i++)
        {
            _sink = FenceUnwrap.Merge(_a1, _signaled, _a2);
        }

        return _sink;
    }

    [Target(0.4)] // issue 12: merge of 2-3 that builds an array <= 0.4x Task.WhenAll
    [Benchmark(OperationsPerInvoke = N)]
    public object? Merge2_TwoContexts_BuildsArray()
    {
        for (int i = 0; i < N; i++)
        {
            _sink = FenceUnwrap.Merge(_a2, _b);
        }

        return _sink;
    }

    [Target(0.4)] // issue 12: merge of 2-3 that builds an array <= 0.4x Task.WhenAll
    [Benchmark(OperationsPerInvoke = N)]
    public object? Merge3_ThreeContexts_BuildsArray()
    {
        for (int i = 0; i < N; i++)
        {
            _sink = FenceUnwrap.Merge(_a2, _b, _c);
        }

        return _sink;
    }
}

/// <summary>
/// Merging 1,024 pending fences over 32 contexts (32 points each, shuffled) into one array of the
/// latest point per context. Baseline: LINQ, what a .NET developer would write: group by context,
/// order each group by seqno, pick the latest, and build the same <see cref="FenceArray"/>. Target:
/// <see cref="FenceUnwrap.Merge"/> ≥ 3× faster. Two more rows try a SIMD path against its scalar twin:
/// instead of sorting, each fence looks its context up in a table of the contexts seen so far (32
/// here), with a plain loop or with <see cref="Vector256"/> compares of four contexts at a time.
/// </summary>
[BenchmarkCategory(Suites.Gate)]
public class MergeLargeBenchmarks
{
    private const int Contexts = 32;
    private const int PointsPerContext = 32;
    private const int Total = Contexts * PointsPerContext;
    private const int N = Suites.OpsPerInvoke / 64;
    private Fence[] _fences = [];
    private object? _sink;

    [GlobalSetup]
    public void Setup()
    {
        ulong context = FenceContext.Allocate(Contexts);
        var fences = new List<Fence>(Total);
        for (int c = 0; c < Contexts; c++)
        {
            for (int p = 1; p <= PointsPerContext; p++)
            {
                fences.Add(new FenceSource(context + (ulong)c, (ulong)p));
            }
        }

        _fences = [.. fences];
        new Random(42).Shuffle(_fences);

        // Every path must build the same set: the latest point of each of the 32 contexts, by context.
        static string Expect(object? merged)
        {
            if (merged is not FenceArray a)
            {
                return "not an array";
            }

            var members = new List<string>();
            foreach (Fence f in FenceArray.ForEach(a))
            {
                members.Add($"{f.Context}:{f.Seqno}");
            }

            return string.Join(",", members);
        }

        string expected = Expect(Linq_GroupByOrderByLatest());
        foreach (object? result in new[] { FenceUnwrap_Merge(), ContextTable_Scalar(), ContextTable_Vector256() })
        {
            if (Expect(result) != expected || ((FenceArray)result!).Count != Contexts)
            {
                throw new InvalidOperationException($"a merge path disagrees: {Expect(result)} vs {expected}");
            }
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (FenceSource f in _fences)
        {
            f.Signal();
        }
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public object? Linq_GroupByOrderByLatest()
    {
        for (int i = 0; i < N; i++)
        {
            Fence[] latest = [.. _fences
                .Where(f => !f.IsSignaled)
                .GroupBy(f => f.Context)
                .OrderBy(g => g.Key)
                .Select(g => g.OrderByDescending(f => f.Seqno).First())];
            _sink = new FenceArray(latest);
        }

        return _sink;
    }

    [Target(0.333)] // issue 12: 1,024-fence merge >= 3x LINQ
    [Benchmark(OperationsPerInvoke = N)]
    public object? FenceUnwrap_Merge()
    {
        for (int i = 0; i < N; i++)
        {
            _sink = FenceUnwrap.Merge(_fences);
        }

        return _sink;
    }

    [Reference]
    [Benchmark(OperationsPerInvoke = N)]
    public object? ContextTable_Scalar()
    {
        for (int i = 0; i < N; i++)
        {
            _sink = MergeByContextTable(_fences, vectorized: false);
        }

        return _sink;
    }

    [Reference]
    [Benchmark(OperationsPerInvoke = N)]
    public object? ContextTable_Vector256()
    {
        for (int i = 0; i < N; i++)
        {
            _sink = MergeByContextTable(_fences, vectorized: true);
        }

        return _sink;
    }

    /// <summary>
    /// Dedup without sorting the input: a table of the distinct contexts seen so far (padded with
    /// <see cref="ulong.MaxValue"/>, never a real context) and, per context, the latest pending fence by
    /// the kernel's <see cref="Fence.IsLater"/>. The 32 survivors are then sorted by context so the array
    /// matches <see cref="FenceUnwrap.Merge"/>'s. Linear in inputs × distinct contexts, so a library path
    /// would need a cap (and the sort as fallback).
    /// </summary>
    private static FenceArray MergeByContextTable(Fence[] fences, bool vectorized)
    {
        const int Capacity = 64;
        Span<ulong> table = stackalloc ulong[Capacity];
        table.Fill(ulong.MaxValue);
        var latest = new Fence[Capacity];
        int distinct = 0;
        foreach (Fence f in fences)
        {
            if (f.IsSignaled)
            {
                continue;
            }

            ulong context = f.Context;
            int at = vectorized ? IndexOfVector256(table, (distinct + 3) & ~3, context) : IndexOfScalar(table[..distinct], context);
            if (at < 0)
            {
                if (distinct == Capacity)
                {
                    throw new InvalidOperationException("more contexts than the table holds");
                }

                table[distinct] = context;
                latest[distinct++] = f;
            }
            else if (Fence.IsLater(f, latest[at]))
            {
                latest[at] = f;
            }
        }

        Span<Fence> kept = latest.AsSpan(0, distinct);
        for (int i = 1; i < kept.Length; i++)
        {
            Fence item = kept[i];
            int j = i - 1;
            while (j >= 0 && kept[j].Context > item.Context)
            {
                kept[j + 1] = kept[j];
                j--;
            }

            kept[j + 1] = item;
        }

        return new FenceArray(kept);
    }

    private static int IndexOfScalar(ReadOnlySpan<ulong> table, ulong context)
    {
        for (int i = 0; i < table.Length; i++)
        {
            if (table[i] == context)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Four contexts per compare; <paramref name="length"/> is a multiple of four (padding never matches).</summary>
    private static int IndexOfVector256(ReadOnlySpan<ulong> table, int length, ulong context)
    {
        Vector256<ulong> key = Vector256.Create(context);
        ref ulong start = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(table);
        for (int i = 0; i < length; i += Vector256<ulong>.Count)
        {
            uint mask = Vector256.Equals(Vector256.LoadUnsafe(ref start, (nuint)i), key).ExtractMostSignificantBits();
            if (mask != 0)
            {
                return i + BitOperations.TrailingZeroCount(mask);
            }
        }

        return -1;
    }
}
