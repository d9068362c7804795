using BenchmarkDotNet.Attributes;

namespace FenceCore.Benchmarks;

/// <summary>
/// Create a fence and signal it with nobody waiting (<c>dma_fence_init</c> + <c>dma_fence_signal</c>),
/// against <see cref="TaskCompletionSource"/> create + <c>SetResult</c>. Target: ≤ 0.6× the baseline,
/// one allocation of 56 B per fence.
/// </summary>
[BenchmarkCategory(Suites.Gate)]
public class CreateSignalBenchmarks
{
    private const int N = Suites.OpsPerInvoke;
    private ulong _context;
    private ulong _seqno;
    private object? _sink;
    private int _word;

    [GlobalSetup]
    public void Setup() => _context = FenceContext.Allocate();

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

    [Target(1.0)] // issue 12: create + signal with the library's clock <= 1.0x
    [Benchmark(OperationsPerInvoke = N)]
    public object? Fence_CreateSignal()
    {
        ulong context = _context;
        ulong seqno = _seqno;
        for (int i = 0; i < N; i++)
        {
            var fence = new FenceSource(context, ++seqno);
            fence.Signal();
            _sink = fence;
        }

        _seqno = seqno;
        return _sink;
    }

    /// <summary>Diagnostic: the allocation and constructor alone, to split create from signal.</summary>
    [Benchmark(OperationsPerInvoke = N)]
    public object? Fence_CreateOnly()
    {
        ulong context = _context;
        ulong seqno = _seqno;
        for (int i = 0; i < N; i++)
        {
            _sink = new FenceSource(context, ++seqno);
        }

        _seqno = seqno;
        return _sink;
    }

    /// <summary>Diagnostic: signalling with a caller-given timestamp skips the clock read.</summary>
    [Target(0.6)] // issue 12: create + signal with a caller's timestamp <= 0.6x TCS create + SetResult
    [Benchmark(OperationsPerInvoke = N)]
    public object? Fence_CreateSignalWithTimestamp()
    {
        ulong context = _context;
        ulong seqno = _seqno;
        for (int i = 0; i < N; i++)
        {
            var fence = new FenceSource(context, ++seqno);
            fence.SignalWithTimestamp(TimeSpan.FromTicks((long)seqno));
            _sink = fence;
        }

        _seqno = seqno;
        return _sink;
    }

    /// <summary>Reference: the monotonic clock read every <see cref="Fence.Signal()"/> makes for its
    /// timestamp (the library's internal <c>FenceClock.NowNs</c>, before any conversion to <see cref="FenceClock.Now"/>'s ticks; as the kernel's <c>ktime_get()</c>).</summary>
    [Reference]
    [Benchmark(OperationsPerInvoke = N)]
    public long Floor_ClockRead()
    {
        long sum = 0;
        for (int i = 0; i < N; i++)
        {
            sum += FenceClock.NowNs;
        }

        return sum;
    }

    /// <summary>The floor: one uncontended compare-and-swap (signalling needs at least one).</summary>
    [Reference]
    [Benchmark(OperationsPerInvoke = N)]
    public int Floor_CompareExchange()
    {
        int value = _word;
        for (int i = 0; i < N; i++)
        {
            value = Interlocked.CompareExchange(ref _word, value + 1, value) + 1;
        }

        return value;
    }
}
