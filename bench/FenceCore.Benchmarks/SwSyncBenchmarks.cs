using BenchmarkDotNet.Attributes;

namespace FenceCore.Benchmarks;

/// <summary>
/// A software timeline (<c>sw_sync</c>): create the fence for the next point, then increment the
/// timeline by one so it signals (<c>SW_SYNC_IOC_CREATE_FENCE</c> + <c>SW_SYNC_IOC_INC</c>).
/// Baseline: <see cref="TaskCompletionSource"/> create + <c>SetResult</c>, the same one-shot signal
/// without a timeline.
/// </summary>
[BenchmarkCategory(Suites.Gate)]
public class SwSyncBenchmarks
{
    private const int N = Suites.OpsPerInvoke;
    private SwSyncTimeline _timeline = null!;
    private object? _sink;

    [GlobalSetup]
    public void Setup() => _timeline = new SwSyncTimeline("bench");

    [GlobalCleanup]
    public void Cleanup() => _timeline.Dispose();

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public object? TaskCompletionSource_CreateSetResult()
    {
        for (int i = 0; i < N; i++)
        {
            var tcs = new TaskCompletionSource();
            tcs.SetResult();
            _sink = tcs;
        }

        return _sink;
    }

    [Benchmark(OperationsPerInvoke = N)]
    public object? SwSync_CreateFenceThenIncrement()
    {
        SwSyncTimeline timeline = _timeline;
        for (int i = 0; i < N; i++)
        {
            Fence fence = timeline.CreateFence(timeline.Value + 1);
            timeline.Increment();
            _sink = fence;
        }

        return _sink;
    }

    /// <summary>A point the timeline has already reached: born signalled.</summary>
    [Benchmark(OperationsPerInvoke = N)]
    public object? SwSync_CreateReachedFence()
    {
        SwSyncTimeline timeline = _timeline;
        for (int i = 0; i < N; i++)
        {
            _sink = timeline.CreateFence(timeline.Value);
        }

        return _sink;
    }
}
