using BenchmarkDotNet.Attributes;

namespace FenceCore.Benchmarks;

/// <summary>
/// Appending a point to a timeline: <c>new FenceChain(prev, fence, seqno)</c> (<c>dma_fence_chain_init</c>),
/// the contained fence existing already. The chain restarts from nothing every 1,024 points so memory
/// stays flat. Baseline: the floor, allocating a plain linked-list node with the same three fields.
/// </summary>
public class ChainAppendBenchmarks
{
    private const int N = Suites.OpsPerInvoke;
    private FenceSource _contained = null!;
    private object? _sink;

    [GlobalSetup]
    public void Setup() => _contained = new FenceSource(FenceContext.Allocate(), 1);

    [GlobalCleanup]
    public void Cleanup() => _contained.Signal();

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public object? Floor_LinkedNodeAppend()
    {
        PlainNode? head = null;
        Fence contained = _contained;
        for (int i = 0; i < N; i++)
        {
            head = new PlainNode(head, contained, (ulong)i + 1);
        }

        _sink = head;
        return _sink;
    }

    [Benchmark(OperationsPerInvoke = N)]
    public object? FenceChain_Append()
    {
        Fence? head = null;
        Fence contained = _contained;
        for (int i = 0; i < N; i++)
        {
            head = new FenceChain(head, contained, (ulong)i + 1);
        }

        _sink = head;
        return _sink;
    }

    /// <summary>The floor's node: previous link, contained fence, point.</summary>
    public sealed class PlainNode(PlainNode? prev, Fence fence, ulong seqno)
    {
        public PlainNode? Prev { get; } = prev;

        public Fence Fence { get; } = fence;

        public ulong Seqno { get; } = seqno;
    }
}

/// <summary>
/// <c>FindSeqno</c> on a timeline of 64 pending points (<c>dma_fence_chain_find_seqno</c>): the middle
/// point (32 nodes walked) and the oldest (64). Baseline: the floor, a walk of a plain linked list
/// of 64 nodes to the same node.
/// </summary>
[BenchmarkCategory(Suites.Gate)]
public class ChainFindBenchmarks
{
    private const int Length = 64;
    private const int N = Suites.OpsPerInvoke / 16;
    private readonly FenceSource[] _contained = new FenceSource[Length];
    private FenceChain _head = null!;
    private ChainAppendBenchmarks.PlainNode _plainHead = null!;

    [GlobalSetup]
    public void Setup()
    {
        ulong context = FenceContext.Allocate();
        Fence? head = null;
        ChainAppendBenchmarks.PlainNode? plain = null;
        for (int i = 0; i < Length; i++)
        {
            _contained[i] = new FenceSource(context, (ulong)i + 1);
            head = new FenceChain(head, _contained[i], (ulong)i + 1);
            plain = new ChainAppendBenchmarks.PlainNode(plain, _contained[i], (ulong)i + 1);
        }

        _head = (FenceChain)head!;
        _plainHead = plain!;
        if (_head.FindSeqno(Length / 2)!.Seqno != Length / 2 || _head.FindSeqno(1)!.Seqno != 1)
        {
            throw new InvalidOperationException("FindSeqno did not find the point's node");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (FenceSource f in _contained)
        {
            f.Signal();
        }
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public ulong Floor_LinkedListWalk_Middle()
    {
        ulong sum = 0;
        for (int i = 0; i < N; i++)
        {
            ChainAppendBenchmarks.PlainNode? node = _plainHead;
            while (node is not null && node.Seqno > Length / 2)
            {
                node = node.Prev;
            }

            sum += node!.Seqno;
        }

        return sum;
    }

    [Benchmark(OperationsPerInvoke = N)]
    public ulong FenceChain_FindSeqno_Middle()
    {
        FenceChain head = _head;
        ulong sum = 0;
        for (int i = 0; i < N; i++)
        {
            sum += head.FindSeqno(Length / 2)!.Seqno;
        }

        return sum;
    }

    [Benchmark(OperationsPerInvoke = N)]
    public ulong FenceChain_FindSeqno_Oldest()
    {
        FenceChain head = _head;
        ulong sum = 0;
        for (int i = 0; i < N; i++)
        {
            sum += head.FindSeqno(1)!.Seqno;
        }

        return sum;
    }
}
