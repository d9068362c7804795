using BenchmarkDotNet.Attributes;

namespace FenceCore.Benchmarks;

/// <summary>
/// Waiting on a fence that has already signalled: the fast path of <c>dma_fence_wait</c> and of
/// <c>await fence</c>. Baseline: <see cref="Task.Wait()"/> on a completed task. Floor: the acquire load.
/// </summary>
[BenchmarkCategory(Suites.Gate)]
public class WaitSignaledBenchmarks
{
    private const int N = Suites.OpsPerInvoke;
    private FenceSource _fence = null!;
    private Task _task = null!;
    private object? _published;

    [GlobalSetup]
    public void Setup()
    {
        _fence = new FenceSource(FenceContext.Allocate(), 1);
        _fence.Signal();
        _task = Task.CompletedTask;
        _published = _fence;
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public int Task_Wait()
    {
        Task task = _task;
        int n = 0;
        for (int i = 0; i < N; i++)
        {
            task.Wait();
            n++;
        }

        return n;
    }

    [Reference]
    [Benchmark(OperationsPerInvoke = N)]
    public int Task_AwaiterGetResult()
    {
        Task task = _task;
        int n = 0;
        for (int i = 0; i < N; i++)
        {
            var awaiter = task.GetAwaiter();
            if (awaiter.IsCompleted)
            {
                awaiter.GetResult();
                n++;
            }
        }

        return n;
    }

    [Benchmark(OperationsPerInvoke = N)]
    public int Fence_Wait()
    {
        FenceSource fence = _fence;
        int n = 0;
        for (int i = 0; i < N; i++)
        {
            fence.Wait();
            n++;
        }

        return n;
    }

    [Benchmark(OperationsPerInvoke = N)]
    public int Fence_WaitZeroTimeout()
    {
        FenceSource fence = _fence;
        int n = 0;
        for (int i = 0; i < N; i++)
        {
            if (fence.Wait(TimeSpan.Zero))
            {
                n++;
            }
        }

        return n;
    }

    [Benchmark(OperationsPerInvoke = N)]
    public int Fence_WaitAsyncCompleted()
    {
        FenceSource fence = _fence;
        int n = 0;
        for (int i = 0; i < N; i++)
        {
            var awaiter = fence.WaitAsync().GetAwaiter();
            if (awaiter.IsCompleted)
            {
                awaiter.GetResult();
                n++;
            }
        }

        return n;
    }

    /// <summary>The floor: one acquire load of a published reference.</summary>
    [Reference]
    [Benchmark(OperationsPerInvoke = N)]
    public int Floor_VolatileRead()
    {
        int n = 0;
        for (int i = 0; i < N; i++)
        {
            if (Volatile.Read(ref _published) is not null)
            {
                n++;
            }
        }

        return n;
    }
}

/// <summary>
/// Wait-any over four fences of which only the last has signalled (<c>dma_fence_wait_any_timeout</c>'s
/// first scan, which finds it without registering callbacks). Baseline: <see cref="Task.WaitAny(Task[])"/>
/// over four tasks with the last completed; <see cref="Task.WhenAny(Task[])"/> is shown alongside.
/// </summary>
[BenchmarkCategory(Suites.Gate)]
public class WaitAnyBenchmarks
{
    private const int N = Suites.OpsPerInvoke;
    private const int Width = 4;
    private readonly FenceSource[] _fences = new FenceSource[Width];
    private readonly FenceSource[] _pendingFences = new FenceSource[Width];
    private readonly Task[] _tasks = new Task[Width];
    private readonly TaskCompletionSource[] _sources = new TaskCompletionSource[Width];

    [GlobalSetup]
    public void Setup()
    {
        ulong context = FenceContext.Allocate();
        for (int i = 0; i < Width; i++)
        {
            _fences[i] = new FenceSource(context, (ulong)i + 1);
            _pendingFences[i] = new FenceSource(context, (ulong)i + 100);
            _sources[i] = new TaskCompletionSource();
            _tasks[i] = _sources[i].Task;
        }

        _fences[Width - 1].Signal();
        _sources[Width - 1].SetResult();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (FenceSource fence in _fences)
        {
            fence.Signal();
        }

        foreach (FenceSource fence in _pendingFences)
        {
            fence.Signal();
        }

        foreach (TaskCompletionSource source in _sources)
        {
            source.TrySetResult();
        }
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public int Task_WaitAny_LastCompleted()
    {
        Task[] tasks = _tasks;
        int sum = 0;
        for (int i = 0; i < N; i++)
        {
            sum += Task.WaitAny(tasks);
        }

        return sum;
    }

    [Reference]
    [Benchmark(OperationsPerInvoke = N)]
    public int Task_WhenAny_LastCompleted()
    {
        Task[] tasks = _tasks;
        int sum = 0;
        for (int i = 0; i < N; i++)
        {
            sum += Task.WhenAny(tasks).Result == tasks[Width - 1] ? 1 : 0;
        }

        return sum;
    }

    [Benchmark(OperationsPerInvoke = N)]
    public int Fence_WaitAny_LastSignaled()
    {
        Fence[] fences = _fences;
        int sum = 0;
        for (int i = 0; i < N; i++)
        {
            sum += Fence.WaitAny(fences, Timeout.InfiniteTimeSpan);
        }

        return sum;
    }

    /// <summary>All four pending, zero timeout: the poll that never blocks.</summary>
    [Benchmark(OperationsPerInvoke = N)]
    public int Fence_WaitAny_AllPendingPoll()
    {
        Fence[] fences = _pendingFences;
        int sum = 0;
        for (int i = 0; i < N; i++)
        {
            sum += Fence.WaitAny(fences, TimeSpan.Zero);
        }

        return sum;
    }
}
