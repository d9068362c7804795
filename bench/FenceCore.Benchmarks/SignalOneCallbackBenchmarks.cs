using BenchmarkDotNet.Attributes;

namespace FenceCore.Benchmarks;

/// <summary>
/// A full one-callback cycle: create, register one continuation, signal (which runs it). The fence uses
/// a caller-owned <see cref="FenceCallback"/> node (the kernel's <c>dma_fence_cb</c>), so the only
/// allocation is the fence. Target: ≤ 0.5× <see cref="TaskCompletionSource"/> with a continuation
/// (<c>ContinueWith</c>, the baseline); the <c>await</c>-style awaiter continuation, TCS's cheapest,
/// is shown alongside. The fences signal with a caller's timestamp, as the virtual GPU's do and as
/// <see cref="AsyncWaiterBenchmarks"/> and <see cref="FenceArrayAllBenchmarks"/> measure: the baseline reads no
/// clock, whose cost is measured once, in <see cref="CreateSignalBenchmarks"/>;
/// <see cref="Fence_OwnedCallback_LibraryClock"/> pays it here too.
/// </summary>
[BenchmarkCategory(Suites.Gate)]
public class SignalOneCallbackBenchmarks
{
    private const int N = Suites.OpsPerInvoke;
    private readonly CountingCallback _node = new();
    private readonly Action<Fence> _fenceAction;
    private readonly Action _awaiterContinuation;
    private readonly Action<Task, object?> _taskContinuation = static (_, state) => ((SignalOneCallbackBenchmarks)state!)._runs++;
    private ulong _context;
    private ulong _seqno;
    private object? _sink;
    private int _runs;

    public SignalOneCallbackBenchmarks()
    {
        _fenceAction = _ => _runs++;
        _awaiterContinuation = () => _runs++;
    }

    [GlobalSetup]
    public void Setup() => _context = FenceContext.Allocate();

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public int TaskCompletionSource_ContinueWith()
    {
        for (int i = 0; i < N; i++)
        {
            var tcs = new TaskCompletionSource();
            tcs.Task.ContinueWith(_taskContinuation, this, CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            tcs.SetResult();
            _sink = tcs;
        }

        return _runs;
    }

    [Reference]
    [Benchmark(OperationsPerInvoke = N)]
    public int TaskCompletionSource_AwaiterContinuation()
    {
        for (int i = 0; i < N; i++)
        {
            var tcs = new TaskCompletionSource();
            tcs.Task.GetAwaiter().UnsafeOnCompleted(_awaiterContinuation);
            tcs.SetResult();
            _sink = tcs;
        }

        return _runs;
    }

    [Target(0.5)] // issue 12: signal with one owned callback <= 0.5x TCS + continuation
    [Benchmark(OperationsPerInvoke = N)]
    public int Fence_OwnedCallback()
    {
        ulong context = _context;
        ulong seqno = _seqno;
        CountingCallback node = _node;
        for (int i = 0; i < N; i++)
        {
            var fence = new FenceSource(context, ++seqno);
            fence.AddCallback(node);
            fence.SignalWithTimestamp(TimeSpan.FromTicks((long)seqno));
            _sink = fence;
        }

        _seqno = seqno;
        return node.Count;
    }

    /// <summary>Diagnostic: <see cref="Fence_OwnedCallback"/> with the signal's clock read.</summary>
    [Benchmark(OperationsPerInvoke = N)]
    public int Fence_OwnedCallback_LibraryClock()
    {
        ulong context = _context;
        ulong seqno = _seqno;
        CountingCallback node = _node;
        for (int i = 0; i < N; i++)
        {
            var fence = new FenceSource(context, ++seqno);
            fence.AddCallback(node);
            fence.Signal();
            _sink = fence;
        }

        _seqno = seqno;
        return node.Count;
    }

    [Benchmark(OperationsPerInvoke = N)]
    public int Fence_DelegateCallback()
    {
        ulong context = _context;
        ulong seqno = _seqno;
        for (int i = 0; i < N; i++)
        {
            var fence = new FenceSource(context, ++seqno);
            fence.AddCallback(_fenceAction);
            fence.SignalWithTimestamp(TimeSpan.FromTicks((long)seqno));
            _sink = fence;
        }

        _seqno = seqno;
        return _runs;
    }
}

/// <summary>A caller-owned callback node that counts its runs.</summary>
internal sealed class CountingCallback : FenceCallback
{
    public int Count;

    protected internal override void Invoke(Fence fence) => Count++;
}
