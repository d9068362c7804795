using BenchmarkDotNet.Attributes;

namespace FenceCore.Benchmarks;

/// <summary>
/// A signal-on-all array over four pending fences, a full cycle: create the members and the array,
/// enable signalling (one callback per member, as <c>dma_fence_array_enable_signaling</c>), signal the
/// members, the array signals. Baseline: <see cref="Task.WhenAll(Task[])"/> over four pending
/// <see cref="TaskCompletionSource"/> tasks, then completed.
/// </summary>
[BenchmarkCategory(Suites.Gate)]
public class FenceArrayAllBenchmarks
{
    private const int N = Suites.OpsPerInvoke / 4;
    private const int Width = 4;
    private readonly FenceSource[] _members = new FenceSource[Width];
    private readonly TaskCompletionSource[] _sources = new TaskCompletionSource[Width];
    private readonly Task[] _tasks = new Task[Width];
    private ulong _context;
    private ulong _seqno;
    private object? _sink;

    [GlobalSetup]
    public void Setup() => _context = FenceContext.Allocate(Width);

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public object? Task_WhenAll_FourPendingThenCompleted()
    {
        for (int i = 0; i < N; i++)
        {
            for (int m = 0; m < Width; m++)
            {
                var source = new TaskCompletionSource();
                _sources[m] = source;
                _tasks[m] = source.Task;
            }

            Task all = Task.WhenAll(_tasks);
            for (int m = 0; m < Width; m++)
            {
                _sources[m].SetResult();
            }

            if (!all.IsCompleted)
            {
                throw new InvalidOperationException("WhenAll did not complete");
            }

            _sink = all;
        }

        return _sink;
    }

    [Target(1.0)] // issue 12: FenceArray all of 4 <= 1.0x Task.WhenAll
    [Benchmark(OperationsPerInvoke = N)]
    public object? FenceArray_FourPendingThenSignaled()
    {
        ulong context = _context;
        ulong seqno = _seqno;
        for (int i = 0; i < N; i++)
        {
            ++seqno;
            for (int m = 0; m < Width; m++)
            {
                _members[m] = new FenceSource(context + (ulong)m, seqno);
            }

            var array = new FenceArray(_members);
            array.EnableSignaling();
            for (int m = 0; m < Width; m++)
            {
                _members[m].SignalWithTimestamp(TimeSpan.FromTicks((long)seqno)); // no clock read: see AsyncWaiterBenchmarks
            }

            if (!array.IsSignaled)
            {
                throw new InvalidOperationException("array did not signal");
            }

            _sink = array;
        }

        _seqno = seqno;
        return _sink;
    }
}

/// <summary>
/// A signal-on-any array over four pending fences, full cycle, against
/// <see cref="Task.WhenAny(Task[])"/> over four pending tasks of which one then completes.
/// </summary>
[BenchmarkCategory(Suites.Gate)]
public class FenceArrayAnyBenchmarks
{
    private const int N = Suites.OpsPerInvoke / 4;
    private const int Width = 4;
    private readonly FenceSource[] _members = new FenceSource[Width];
    private readonly TaskCompletionSource[] _sources = new TaskCompletionSource[Width];
    private readonly Task[] _tasks = new Task[Width];
    private ulong _context;
    private ulong _seqno;
    private object? _sink;

    [GlobalSetup]
    public void Setup() => _context = FenceContext.Allocate(Width + 1);

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public object? Task_WhenAny_FourPendingOneCompleted()
    {
        for (int i = 0; i < N; i++)
        {
            for (int m = 0; m < Width; m++)
            {
                var source = new TaskCompletionSource();
                _sources[m] = source;
                _tasks[m] = source.Task;
            }

            Task<Task> any = Task.WhenAny(_tasks);
            _sources[0].SetResult();
            if (!any.IsCompleted)
            {
                throw new InvalidOperationException("WhenAny did not complete");
            }

            _sink = any;
        }

        return _sink;
    }

    [Target(1.0)] // issue 12: FenceArray any of 4 <= 1.0x Task.WhenAny
    [Benchmark(OperationsPerInvoke = N)]
    public object? FenceArray_AnyOfFourPendingOneSignaled()
    {
        ulong context = _context;
        ulong seqno = _seqno;
        for (int i = 0; i < N; i++)
        {
            ++seqno;
            for (int m = 0; m < Width; m++)
            {
                _members[m] = new FenceSource(context + (ulong)m, seqno);
            }

            var array = new FenceArray(_members, context + Width, seqno, signalOnAny: true);
            array.EnableSignaling();
            _members[0].Signal();
            if (!array.IsSignaled)
            {
                throw new InvalidOperationException("array did not signal");
            }

            _sink = array;
        }

        _seqno = seqno;
        return _sink;
    }
}

/// <summary>
/// Creating an array over four existing pending fences (lazy: no callbacks until someone waits), and
/// walking an array with <see cref="FenceArray.ForEach"/> (<c>dma_fence_array_for_each</c>). Baseline
/// for the walk: a plain loop over a <see cref="Fence"/>[] of the same members, the floor.
/// </summary>
[BenchmarkCategory(Suites.Gate)]
public class FenceArrayIterationBenchmarks
{
    private const int N = Suites.OpsPerInvoke;
    private const int Width = 4;
    private readonly FenceSource[] _members = new FenceSource[Width];
    private FenceArray _array = null!;
    private object? _sink;

    [GlobalSetup]
    public void Setup()
    {
        ulong context = FenceContext.Allocate(Width);
        for (int m = 0; m < Width; m++)
        {
            _members[m] = new FenceSource(context + (ulong)m, 1);
        }

        _array = new FenceArray(_members);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (FenceSource member in _members)
        {
            member.Signal();
        }
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public ulong Floor_ArrayScan()
    {
        Fence[] members = _members;
        ulong sum = 0;
        for (int i = 0; i < N; i++)
        {
            foreach (Fence member in members)
            {
                sum += member.Seqno;
            }
        }

        return sum;
    }

    [Benchmark(OperationsPerInvoke = N)]
    public ulong FenceArray_ForEach()
    {
        FenceArray array = _array;
        ulong sum = 0;
        for (int i = 0; i < N; i++)
        {
            foreach (Fence member in FenceArray.ForEach(array))
            {
                sum += member.Seqno;
            }
        }

        return sum;
    }

    [Benchmark(OperationsPerInvoke = N)]
    public object? FenceArray_CreateOverFourPending()
    {
        Fence[] members = _members;
        for (int i = 0; i < N; i++)
        {
            _sink = new FenceArray(members);
        }

        return _sink;
    }
}
