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

    /// <summary>The fence signals with a caller's timestamp, as the virtual GPU's fences do: the baseline
    /// reads no clock, and the clock's cost is measured once, in <see cref="CreateSignalBenchmarks"/>
    /// (<see cref="Fence_WaitAsync_LibraryClock"/> pays it here too).</summary>
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

            fence.SignalWithTimestamp(TimeSpan.FromTicks((long)seqno));
            awaiter.GetResult();
            _sink = fence;
        }

        _seqno = seqno;
        return _sink;
    }

    /// <summary>Diagnostic: <see cref="Fence_WaitAsync"/> with the signal's clock read.</summary>
    [Benchmark(OperationsPerInvoke = N)]
    public object? Fence_WaitAsync_LibraryClock()
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

/// <summary>
/// An <c>await</c> that suspends: create, register the continuation (what the async method builder does
/// with <c>UnsafeOnCompleted</c>), signal, and run the continuation. Both sides post it to a
/// <see cref="SynchronizationContext"/> that keeps the posted callback, and the loop runs it, so the
/// thread pool is not measured. Baseline: a <see cref="TaskCompletionSource"/> with
/// <see cref="TaskCreationOptions.RunContinuationsAsynchronously"/>. The fence signals with a caller's
/// timestamp (see <see cref="AsyncWaiterBenchmarks.Fence_WaitAsync"/>).
/// </summary>
[BenchmarkCategory(Suites.Gate)]
public class AwaitContinuationBenchmarks
{
    private const int N = Suites.OpsPerInvoke;
    private readonly PostedContext _context = new();
    private readonly Action _continuation;
    private ulong _fenceContext;
    private ulong _seqno;
    private object? _sink;
    private int _runs;

    public AwaitContinuationBenchmarks() => _continuation = () => _runs++;

    [GlobalSetup]
    public void Setup() => _fenceContext = FenceContext.Allocate();

    /// <summary>Keeps the one callback posted to it.</summary>
    private sealed class PostedContext : SynchronizationContext
    {
        private SendOrPostCallback? _posted;
        private object? _state;

        public override void Post(SendOrPostCallback d, object? state)
        {
            _posted = d;
            _state = state;
        }

        public void RunPosted()
        {
            SendOrPostCallback d = _posted ?? throw new InvalidOperationException("nothing was posted");
            _posted = null;
            d(_state);
        }
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public object? TaskCompletionSource_AwaitContinuation()
    {
        SynchronizationContext? previous = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(_context);
        for (int i = 0; i < N; i++)
        {
            var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            TaskAwaiter awaiter = tcs.Task.GetAwaiter();
            awaiter.UnsafeOnCompleted(_continuation);
            tcs.SetResult();
            _context.RunPosted();
            awaiter.GetResult();
            _sink = tcs;
        }

        SynchronizationContext.SetSynchronizationContext(previous);
        return _sink;
    }

    [Target(1.0)] // issue 12: await of a pending fence (WaitAsync, signal, continuation runs) <= 1.0x TCS, 0 B amortized
    [Benchmark(OperationsPerInvoke = N)]
    public object? Fence_AwaitContinuation()
    {
        SynchronizationContext? previous = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(_context);
        ulong context = _fenceContext;
        ulong seqno = _seqno;
        for (int i = 0; i < N; i++)
        {
            var fence = new FenceSource(context, ++seqno);
            ValueTaskAwaiter awaiter = fence.WaitAsync().GetAwaiter();
            awaiter.UnsafeOnCompleted(_continuation);
            fence.SignalWithTimestamp(TimeSpan.FromTicks((long)seqno));
            _context.RunPosted();
            awaiter.GetResult();
            _sink = fence;
        }

        _seqno = seqno;
        SynchronizationContext.SetSynchronizationContext(previous);
        return _sink;
    }
}
