using BenchmarkDotNet.Attributes;

namespace FenceCore.Benchmarks;

/// <summary>
/// Add and remove a caller-owned callback on a fence that stays pending (<c>dma_fence_add_callback</c>
/// + <c>dma_fence_remove_callback</c>, the shape of every timed-out wait). Baseline: the .NET analogue,
/// registering and unregistering a callback on a <see cref="CancellationToken"/> (its nodes are reused,
/// 0 B). Target: 0 B for caller-owned registration.
/// </summary>
[BenchmarkCategory(Suites.Gate)]
public class CallbackRegistrationBenchmarks : IDisposable
{
    private const int N = Suites.OpsPerInvoke;
    private static readonly Action<object?> s_noop = static _ => { };
    private readonly CancellationTokenSource _cts = new();
    private readonly CountingCallback _node = new();
    private readonly CountingCallback _reAddedNode = new();
    private readonly object _cell = new();
    private FenceSource _pending = null!;
    private ulong _context;
    private ulong _seqno;
    private object? _head;

    [GlobalSetup]
    public void Setup()
    {
        _context = FenceContext.Allocate();
        _pending = new FenceSource(_context, ++_seqno);

        // Remove _reAddedNode from a pending fence and add it there again before that fence signals:
        // the second add links a proxy cell and pops the node's own (removed) cell off the list.
        var earlier = new FenceSource(_context, ++_seqno);
        earlier.AddCallback(_reAddedNode);
        earlier.RemoveCallback(_reAddedNode);
        earlier.AddCallback(_reAddedNode);
        earlier.RemoveCallback(_reAddedNode);
        earlier.Signal();
    }

    [GlobalCleanup]
    public void Cleanup() => _pending.Signal();

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public bool CancellationToken_RegisterUnregister()
    {
        CancellationToken token = _cts.Token;
        bool removed = false;
        for (int i = 0; i < N; i++)
        {
            CancellationTokenRegistration registration = token.UnsafeRegister(s_noop, null);
            removed = registration.Unregister();
        }

        return removed;
    }

    /// <summary>Add then remove on the same pending fence, again and again.</summary>
    [Benchmark(OperationsPerInvoke = N)]
    public bool Fence_AddRemove_SamePendingFence()
    {
        Fence fence = _pending;
        CountingCallback node = _node;
        bool removed = false;
        for (int i = 0; i < N; i++)
        {
            fence.AddCallback(node);
            removed = fence.RemoveCallback(node);
        }

        return removed;
    }

    /// <summary>
    /// Add, remove, then the fence signals before the node is added again (each cycle on a fresh fence,
    /// so 56 B per op is the fence). Shows whether the node's own cell comes back once its fence signals.
    /// </summary>
    [Benchmark(OperationsPerInvoke = N)]
    public bool Fence_AddRemoveThenSignal_FreshFence()
    {
        ulong context = _context;
        ulong seqno = _seqno;
        CountingCallback node = _node;
        bool removed = false;
        for (int i = 0; i < N; i++)
        {
            var fence = new FenceSource(context, ++seqno);
            fence.AddCallback(node);
            removed = fence.RemoveCallback(node);
            fence.Signal();
        }

        _seqno = seqno;
        return removed;
    }

    /// <summary>
    /// Create, add, signal (as <see cref="SignalOneCallbackBenchmarks.Fence_OwnedCallback"/>) with a node
    /// that was once removed and re-added on a still-pending fence. 56 B would be the fence alone; more
    /// means the node's own cell never came back and every registration now allocates a proxy cell.
    /// </summary>
    [Benchmark(OperationsPerInvoke = N)]
    public int Fence_AddSignal_NodeOnceReAddedWhilePending()
    {
        ulong context = _context;
        ulong seqno = _seqno;
        CountingCallback node = _reAddedNode;
        for (int i = 0; i < N; i++)
        {
            var fence = new FenceSource(context, ++seqno);
            fence.AddCallback(node);
            fence.Signal();
        }

        _seqno = seqno;
        return node.Count;
    }

    /// <summary>The floor: push and pop one cell with two compare-and-swaps.</summary>
    [Reference]
    [Benchmark(OperationsPerInvoke = N)]
    public object? Floor_CompareExchangePushPop()
    {
        object cell = _cell;
        for (int i = 0; i < N; i++)
        {
            Interlocked.CompareExchange(ref _head, cell, null);
            Interlocked.CompareExchange(ref _head, null, cell);
        }

        return _head;
    }

    public void Dispose()
    {
        _cts.Dispose();
        GC.SuppressFinalize(this);
    }
}
