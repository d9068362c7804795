using System.Runtime.CompilerServices;
using BenchmarkDotNet.Attributes;

namespace FenceCore.Benchmarks;

/// <summary>
/// Create, start one asynchronous wait, signal, and consume the result. The continuation is not
/// scheduled (both sides run continuations asynchronously, which would measure the thread pool), so
/// this is the cost of the waiter object and its completion. Baseline: a
/// <see cref="TaskCompletionSource"/> created with <see cref="TaskCreationOptions.RunContinuationsAsynchronously"/>.
/// </summary>
[BenchmarkCategory(Suites.Gate)]
public class AsyncWaiterBenchmarks
{
    private const int N = Suites.OpsPerInvoke;
    private ulong _context;
    private ulong _seqno;
    private object? _sink;

    [GlobalSetup]
    public void Setup() => _context = FenceContext.Allocate();

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public object? TaskCompletionSource_AsyncWaiter()
    {
        for (int i = 0; i < N; i++)
        {
            var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            TaskAwaiter awaiter = tcs.Task.GetAwaiter();
            if (awaiter.IsCompleted)
            {
                throw new InvalidOperationException("completed early");
            }

            tcs.SetResult();
            awaiter.GetResult();
            _sink = tcs;
        }

        return _sink;
    }

    [Target(1.0)] // issue 12: await of a pending fence <= 1.0x TCS
    [Benchmark(OperationsPerInvoke = N)]
    public object? Fence_WaitAsync()
    {
        ulong context = _context;
        ulong seqno = _seqno;
        for (int i = 0; i < N; i++)
        {
            var fence = new FenceSource(context, ++seqno);
            ValueTaskAwaiter awaiter = fence.WaitAsync().GetAwaiter();
            if (awaiter.IsCompleted)
            {
                throw new InvalidOperationException("completed early");
            }

            fence.Signal();
            awaiter.GetResult();
            _sink = fence;
        }

        _seqno = seqno;
        return _sink;
    }
}
