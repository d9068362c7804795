using BenchmarkDotNet.Attributes;
using FenceCore.Benchmarks.Peers;

namespace FenceCore.Benchmarks;

/// <summary>
/// <see cref="Reservation.AddFence(Fence, FenceUsage)"/> with same-context replacement, the steady
/// state of a buffer one engine keeps writing (<c>dma_resv_add_fence</c> reusing the context's slot):
/// four live entries, the writer's replaced each time (see <see cref="WrapCycle"/>: no fence is
/// allocated). Baseline: the hand-written copy-on-write floor (<see cref="CopyOnWriteFloor"/>). Peers:
/// lock + <see cref="List{T}"/>, <c>ImmutableInterlocked</c>, the 2021 kernel's seqcount; and a bare
/// compare-and-swap. Target: ≤ 1.3× the floor, one allocation.
/// </summary>
[BenchmarkCategory(Suites.Gate)]
public class ReservationAddBenchmarks
{
    private const int N = Suites.OpsPerInvoke;
    private readonly Reservation _reservation = new("add");
    private readonly CopyOnWriteFloor _floor = new();
    private readonly LockedReservation _locked = new();
    private readonly ImmutableReservation _immutable = new();
    private readonly SeqCountReservation _seqCount = new();
    private readonly List<FenceSource> _others = [];
    private WrapCycle _cycle = null!;
    private int _cas;

    [GlobalSetup]
    public void Setup()
    {
        ulong context = FenceContext.Allocate(4);
        _cycle = new WrapCycle(context);
        for (int i = 1; i < 4; i++)
        {
            _others.Add(new FenceSource(context + (ulong)i, 1));
        }

        Fill(_cycle.First, FenceUsage.Write);
        foreach (Fence other in _others)
        {
            Fill(other, FenceUsage.Read);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _cycle.SignalAll();
        _others.ForEach(f => f.Signal());
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public void Floor_CopyOnWrite_Replace()
    {
        for (int i = 0; i < N; i++)
        {
            _floor.AddFence(_cycle.Next(), FenceUsage.Write);
        }
    }

    [Target(1.3)] // issue 12: reservation add with replacement <= 1.3x the copy-on-write floor
    [Benchmark(OperationsPerInvoke = N)]
    public void Reservation_AddFence_Replace()
    {
        for (int i = 0; i < N; i++)
        {
            _reservation.AddFence(_cycle.Next(), FenceUsage.Write);
        }
    }

    [Reference]
    [Benchmark(OperationsPerInvoke = N)]
    public void Locked_AddFence_Replace()
    {
        for (int i = 0; i < N; i++)
        {
            _locked.AddFence(_cycle.Next(), FenceUsage.Write);
        }
    }

    [Reference]
    [Benchmark(OperationsPerInvoke = N)]
    public void Immutable_AddFence_Replace()
    {
        for (int i = 0; i < N; i++)
        {
            _immutable.AddFence(_cycle.Next(), FenceUsage.Write);
        }
    }

    [Reference]
    [Benchmark(OperationsPerInvoke = N)]
    public void SeqCount_AddFence_Replace()
    {
        for (int i = 0; i < N; i++)
        {
            _seqCount.AddFence(_cycle.Next(), FenceUsage.Write);
        }
    }

    /// <summary>The bare compare-and-swap every copy-on-write add pays once.</summary>
    [Reference]
    [Benchmark(OperationsPerInvoke = N)]
    public int Floor_CompareExchange()
    {
        int value = 0;
        for (int i = 0; i < N; i++)
        {
            value = Interlocked.CompareExchange(ref _cas, value + 1, value) + 1;
        }

        return value;
    }

    private void Fill(Fence fence, FenceUsage usage)
    {
        _reservation.AddFence(fence, usage);
        _floor.AddFence(fence, usage);
        _locked.AddFence(fence, usage);
        _immutable.AddFence(fence, usage);
        _seqCount.AddFence(fence, usage);
    }
}

/// <summary>
/// Adds that append: an empty reservation object receives four fences of four contexts. One operation
/// is one add; the allocation column includes a quarter of the object itself. Baseline: the
/// copy-on-write floor doing the same.
/// </summary>
public class ReservationAppendBenchmarks
{
    private const int Width = 4;
    private const int N = Suites.OpsPerInvoke / Width;
    private readonly Fence[] _fences = new Fence[Width];
    private object? _sink;

    [GlobalSetup]
    public void Setup()
    {
        ulong context = FenceContext.Allocate(Width);
        for (int i = 0; i < Width; i++)
        {
            _fences[i] = new FenceSource(context + (ulong)i, 1);
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

    [Benchmark(Baseline = true, OperationsPerInvoke = N * Width)]
    public object? Floor_CopyOnWrite_Append()
    {
        for (int i = 0; i < N; i++)
        {
            var floor = new CopyOnWriteFloor();
            foreach (Fence f in _fences)
            {
                floor.AddFence(f, FenceUsage.Read);
            }

            _sink = floor;
        }

        return _sink;
    }

    [Benchmark(OperationsPerInvoke = N * Width)]
    public object? Reservation_AddFence_Append()
    {
        for (int i = 0; i < N; i++)
        {
            var reservation = new Reservation("append");
            foreach (Fence f in _fences)
            {
                reservation.AddFence(f, FenceUsage.Read);
            }

            _sink = reservation;
        }

        return _sink;
    }

    [Reference]
    [Benchmark(OperationsPerInvoke = N * Width)]
    public object? Locked_AddFence_Append()
    {
        for (int i = 0; i < N; i++)
        {
            var locked = new LockedReservation();
            foreach (Fence f in _fences)
            {
                locked.AddFence(f, FenceUsage.Read);
            }

            _sink = locked;
        }

        return _sink;
    }

    [Reference]
    [Benchmark(OperationsPerInvoke = N * Width)]
    public object? Immutable_AddFence_Append()
    {
        for (int i = 0; i < N; i++)
        {
            var immutable = new ImmutableReservation();
            foreach (Fence f in _fences)
            {
                immutable.AddFence(f, FenceUsage.Read);
            }

            _sink = immutable;
        }

        return _sink;
    }

    [Reference]
    [Benchmark(OperationsPerInvoke = N * Width)]
    public object? SeqCount_AddFence_Append()
    {
        for (int i = 0; i < N; i++)
        {
            var seqCount = new SeqCountReservation();
            foreach (Fence f in _fences)
            {
                seqCount.AddFence(f, FenceUsage.Read);
            }

            _sink = seqCount;
        }

        return _sink;
    }
}

/// <summary>
/// The unlocked test over four fences, all signalled, so every entry is visited
/// (<c>dma_resv_test_signaled</c>: "is the buffer idle?"). Baseline: the floor, a <c>Volatile.Read</c>
/// of an immutable array holding the same four entries and a scan of it. Peers: lock + list,
/// <c>ImmutableInterlocked</c>, seqcount. Target: ≤ 2× the floor, 0 bytes.
/// </summary>
[BenchmarkCategory(Suites.Gate)]
public class ReservationTestBenchmarks
{
    private const int N = Suites.OpsPerInvoke;
    private readonly Reservation _reservation = new("test");
    private readonly LockedReservation _locked = new();
    private readonly ImmutableReservation _immutable = new();
    private readonly SeqCountReservation _seqCount = new();
    private ReservationEntry[] _floor = [];

    [GlobalSetup]
    public void Setup()
    {
        ulong context = FenceContext.Allocate(4);
        var fences = new Fence[4];
        for (int i = 0; i < 4; i++)
        {
            fences[i] = new FenceSource(context + (ulong)i, 1);
            _reservation.AddFence(fences[i], FenceUsage.Read);
            _locked.AddFence(fences[i], FenceUsage.Read);
            _immutable.AddFence(fences[i], FenceUsage.Read);
            _seqCount.AddFence(fences[i], FenceUsage.Read);
        }

        // Signal after adding: a write prunes signalled entries, so they are added while pending.
        foreach (FenceSource f in fences)
        {
            f.Signal();
        }

        _floor = [.. fences.Select(f => new ReservationEntry(f, FenceUsage.Read))];
        if (_reservation.Count != 4 || !_reservation.TestSignaled(FenceUsage.Read))
        {
            throw new InvalidOperationException("the reservation does not hold four signalled entries");
        }
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public int Floor_VolatileReadScan()
    {
        int idle = 0;
        for (int i = 0; i < N; i++)
        {
            bool signaled = true;
            foreach (ReservationEntry e in Volatile.Read(ref _floor))
            {
                if (e.Usage <= FenceUsage.Read && !e.Fence.IsSignaled)
                {
                    signaled = false;
                    break;
                }
            }

            idle += signaled ? 1 : 0;
        }

        return idle;
    }

    [Benchmark(OperationsPerInvoke = N)]
    public int Reservation_TestSignaled()
    {
        Reservation r = _reservation;
        int idle = 0;
        for (int i = 0; i < N; i++)
        {
            idle += r.TestSignaled(FenceUsage.Read) ? 1 : 0;
        }

        return idle;
    }

    [Reference]
    [Benchmark(OperationsPerInvoke = N)]
    public int Locked_TestSignaled()
    {
        LockedReservation r = _locked;
        int idle = 0;
        for (int i = 0; i < N; i++)
        {
            idle += r.TestSignaled(FenceUsage.Read) ? 1 : 0;
        }

        return idle;
    }

    [Reference]
    [Benchmark(OperationsPerInvoke = N)]
    public int Immutable_TestSignaled()
    {
        ImmutableReservation r = _immutable;
        int idle = 0;
        for (int i = 0; i < N; i++)
        {
            idle += r.TestSignaled(FenceUsage.Read) ? 1 : 0;
        }

        return idle;
    }

    [Reference]
    [Benchmark(OperationsPerInvoke = N)]
    public int SeqCount_TestSignaled()
    {
        SeqCountReservation r = _seqCount;
        int idle = 0;
        for (int i = 0; i < N; i++)
        {
            idle += r.TestSignaled(FenceUsage.Read) ? 1 : 0;
        }

        return idle;
    }
}

/// <summary>
/// Queries over four pending fences (four contexts, READ usage): iteration with the struct
/// enumerator (<c>dma_resv_for_each_fence_unlocked</c>), <c>GetFences</c>, and <c>GetSingleton</c>
/// with none, one and four pending fences. Baseline: the floor scan of the same four entries.
/// Target: <c>GetSingleton</c> with one fence allocates nothing.
/// </summary>
[BenchmarkCategory(Suites.Gate)]
public class ReservationQueryBenchmarks
{
    private const int N = Suites.OpsPerInvoke;
    private readonly Reservation _four = new("four");
    private readonly Reservation _one = new("one");
    private readonly Reservation _none = new("none");
    private readonly LockedReservation _locked = new();
    private readonly ImmutableReservation _immutable = new();
    private readonly Fence[] _fences = new Fence[4];
    private ReservationEntry[] _floor = [];
    private object? _sink;

    [GlobalSetup]
    public void Setup()
    {
        ulong context = FenceContext.Allocate(4);
        for (int i = 0; i < 4; i++)
        {
            _fences[i] = new FenceSource(context + (ulong)i, 1);
            _four.AddFence(_fences[i], FenceUsage.Read);
            _locked.AddFence(_fences[i], FenceUsage.Read);
            _immutable.AddFence(_fences[i], FenceUsage.Read);
        }

        _one.AddFence(_fences[0], FenceUsage.Write);
        _floor = [.. _fences.Select(f => new ReservationEntry(f, FenceUsage.Read))];
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
    public ulong Floor_VolatileReadScan()
    {
        ulong sum = 0;
        for (int i = 0; i < N; i++)
        {
            foreach (ReservationEntry e in Volatile.Read(ref _floor))
            {
                if (e.Usage <= FenceUsage.Read && !e.Fence.IsSignaled)
                {
                    sum += e.Fence.Seqno;
                }
            }
        }

        return sum;
    }

    [Benchmark(OperationsPerInvoke = N)]
    public ulong Reservation_Iterate()
    {
        Reservation r = _four;
        ulong sum = 0;
        for (int i = 0; i < N; i++)
        {
            foreach (ReservationEntry e in r.Fences(FenceUsage.Read))
            {
                sum += e.Fence.Seqno;
            }
        }

        return sum;
    }

    [Benchmark(OperationsPerInvoke = N)]
    public object? Reservation_GetFences()
    {
        Reservation r = _four;
        for (int i = 0; i < N; i++)
        {
            _sink = r.GetFences(FenceUsage.Read);
        }

        return _sink;
    }

    [Benchmark(OperationsPerInvoke = N)]
    public object? Reservation_GetSingleton_None()
    {
        Reservation r = _none;
        for (int i = 0; i < N; i++)
        {
            _sink = r.GetSingleton(FenceUsage.Read);
        }

        return _sink;
    }

    [Benchmark(OperationsPerInvoke = N)]
    public object? Reservation_GetSingleton_One()
    {
        Reservation r = _one;
        for (int i = 0; i < N; i++)
        {
            _sink = r.GetSingleton(FenceUsage.Read);
        }

        return _sink;
    }

    [Benchmark(OperationsPerInvoke = N)]
    public object? Reservation_GetSingleton_Four()
    {
        Reservation r = _four;
        for (int i = 0; i < N; i++)
        {
            _sink = r.GetSingleton(FenceUsage.Read);
        }

        return _sink;
    }

    [Reference]
    [Benchmark(OperationsPerInvoke = N)]
    public object? Locked_GetFences()
    {
        LockedReservation r = _locked;
        for (int i = 0; i < N; i++)
        {
            _sink = r.GetFences(FenceUsage.Read);
        }

        return _sink;
    }

    [Reference]
    [Benchmark(OperationsPerInvoke = N)]
    public object? Immutable_GetFences()
    {
        ImmutableReservation r = _immutable;
        for (int i = 0; i < N; i++)
        {
            _sink = r.GetFences(FenceUsage.Read);
        }

        return _sink;
    }
}

/// <summary>
/// Importing a sync file into a dma-buf (<c>DMA_BUF_IOCTL_IMPORT_SYNC_FILE</c>, WRITE): the file's one
/// fence replaces the writer's entry. Baseline: the same replacement through
/// <see cref="Reservation.AddFence(Fence, FenceUsage)"/>, so the ratio is the cost of the sync-file path.
/// </summary>
[BenchmarkCategory(Suites.Gate)]
public class DmaBufImportBenchmarks
{
    private const int N = Suites.OpsPerInvoke;
    private readonly Reservation _reservation = new("direct");
    private readonly DmaBuf _dmaBuf = new(name: "import");
    private WrapCycle _cycle = null!;
    private SyncFile[] _files = [];
    private int _next;

    [GlobalSetup]
    public void Setup()
    {
        _cycle = new WrapCycle(FenceContext.Allocate());
        _files = [new SyncFile(_cycle.First), new SyncFile(_cycle.Next()), new SyncFile(_cycle.Next())];
        _reservation.AddFence(_cycle.Next(), FenceUsage.Write); // the cycle is back at its first fence
        _dmaBuf.ImportSyncFile(DmaBufSync.Write, _files[0]);
    }

    [GlobalCleanup]
    public void Cleanup() => _cycle.SignalAll();

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public void Reservation_AddFence_Replace()
    {
        for (int i = 0; i < N; i++)
        {
            _reservation.AddFence(_cycle.Next(), FenceUsage.Write);
        }
    }

    [Benchmark(OperationsPerInvoke = N)]
    public void DmaBuf_ImportSyncFile_Replace()
    {
        DmaBuf dmaBuf = _dmaBuf;
        int k = _next;
        for (int i = 0; i < N; i++)
        {
            k = k == 2 ? 0 : k + 1;
            dmaBuf.ImportSyncFile(DmaBufSync.Write, _files[k]);
        }

        _next = k;
    }
}

/// <summary>
/// Exporting a dma-buf's implicit fences as a sync file (<c>DMA_BUF_IOCTL_EXPORT_SYNC_FILE</c>): READ
/// with one pending writer (the sync file wraps that fence), WRITE with a writer and two readers (a new
/// array), and with nothing pending (the stub). Baseline: <see cref="Reservation.GetSingleton"/> with one
/// pending fence, the export minus the sync-file object.
/// </summary>
public class DmaBufExportBenchmarks
{
    private const int N = Suites.OpsPerInvoke;
    private readonly DmaBuf _oneWriter = new(name: "one");
    private readonly DmaBuf _writerAndReaders = new(name: "three");
    private readonly DmaBuf _idle = new(name: "idle");
    private readonly Fence[] _fences = new Fence[3];
    private object? _sink;

    [GlobalSetup]
    public void Setup()
    {
        ulong context = FenceContext.Allocate(3);
        for (int i = 0; i < 3; i++)
        {
            _fences[i] = new FenceSource(context + (ulong)i, 1);
        }

        _oneWriter.Reservation.AddFence(_fences[0], FenceUsage.Write);
        _writerAndReaders.Reservation.AddFence(_fences[0], FenceUsage.Write);
        _writerAndReaders.Reservation.AddFence(_fences[1], FenceUsage.Read);
        _writerAndReaders.Reservation.AddFence(_fences[2], FenceUsage.Read);
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
    public object? Reservation_GetSingleton_One()
    {
        Reservation r = _oneWriter.Reservation;
        for (int i = 0; i < N; i++)
        {
            _sink = r.GetSingleton(FenceUsage.Write);
        }

        return _sink;
    }

    [Benchmark(OperationsPerInvoke = N)]
    public object? DmaBuf_ExportSyncFile_OneWriter()
    {
        DmaBuf d = _oneWriter;
        for (int i = 0; i < N; i++)
        {
            _sink = d.ExportSyncFile(DmaBufSync.Read);
        }

        return _sink;
    }

    [Benchmark(OperationsPerInvoke = N)]
    public object? DmaBuf_ExportSyncFile_WriterAndTwoReaders()
    {
        DmaBuf d = _writerAndReaders;
        for (int i = 0; i < N; i++)
        {
            _sink = d.ExportSyncFile(DmaBufSync.Write);
        }

        return _sink;
    }

    [Benchmark(OperationsPerInvoke = N)]
    public object? DmaBuf_ExportSyncFile_Idle()
    {
        DmaBuf d = _idle;
        for (int i = 0; i < N; i++)
        {
            _sink = d.ExportSyncFile(DmaBufSync.Write);
        }

        return _sink;
    }
}
