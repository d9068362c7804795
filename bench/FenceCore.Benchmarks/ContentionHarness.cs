using System.Diagnostics;
using System.Globalization;
using FenceCore.Benchmarks.Peers;

namespace FenceCore.Benchmarks;

/// <summary>
/// Readers against a writer (issue 7): one writer thread replaces the same-context entry of a
/// reservation as fast as it can while one or two reader threads call <c>TestSignaled</c> in a loop;
/// the figure is reader throughput (operations per second, all readers together). BenchmarkDotNet's
/// one-thread-per-benchmark model does not express "N readers while a writer runs" well, so this is a
/// Stopwatch harness inside the benchmark program: same process, same run, every implementation under
/// the same conditions, each configuration repeated and the median kept.
/// </summary>
/// <remarks>
/// The reservation holds four pending entries (WRITE and READ usages) and readers ask
/// <c>TestSignaled(Kernel)</c>, "is a kernel move or clear pending?", which visits all four entries in
/// every implementation. (Signalled entries cannot be used with a writer running: every FenceCore
/// write prunes them.) The writer uses <see cref="WrapCycle"/>, so it allocates only what its
/// implementation allocates per add.
/// <c>dotnet FenceCore.Benchmarks.dll contention [--seconds S] [--repeat R]</c>
/// </remarks>
internal static class ContentionHarness
{
    public const string Verb = "contention";

    private interface IReservationOps
    {
        void Add(Fence fence, FenceUsage usage);

        bool Test();
    }

    public static int Run(string[] args)
    {
        double seconds = 1.0;
        int repeat = 3;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--seconds": seconds = double.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--repeat": repeat = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
            }
        }

        Console.WriteLine($"Readers against a writer: {Environment.ProcessorCount} cores, {seconds} s per run, median of {repeat}.");
        Console.WriteLine();
        Console.WriteLine("| Implementation | Writer | Readers | Reader ops/s | ns/op per reader | Writer adds/s |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|");
        var results = new Dictionary<(string, bool, int), double>();
        foreach (bool writer in new[] { true, false })
        {
            foreach (int readers in new[] { 1, 2 })
            {
                Measure<FenceCoreOps>("FenceCore Reservation", writer, readers);
                Measure<LockedOps>("lock + List", writer, readers);
                Measure<ImmutableOps>("ImmutableInterlocked", writer, readers);
                Measure<SeqCountOps>("seqcount (2021 kernel)", writer, readers);
            }
        }

        Console.WriteLine();
        double fc1 = results[("FenceCore Reservation", true, 1)], lk1 = results[("lock + List", true, 1)];
        double fc2 = results[("FenceCore Reservation", true, 2)];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"FenceCore / lock (1 reader, writer running): {fc1 / lk1:F1}x (target >= 10x)"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"FenceCore 2 readers / 1 reader (writer running): {fc2 / fc1:F2}x (target >= 1.8x); without writer: {results[("FenceCore Reservation", false, 2)] / results[("FenceCore Reservation", false, 1)]:F2}x"));
        return 0;

        void Measure<TOps>(string name, bool writer, int readers)
            where TOps : IReservationOps, new()
        {
            var runs = new List<(double Reads, double Writes)>();
            for (int r = 0; r < repeat; r++)
            {
                runs.Add(RunOnce<TOps>(writer, readers, seconds));
            }

            runs.Sort((a, b) => a.Reads.CompareTo(b.Reads));
            var (reads, writes) = runs[runs.Count / 2];
            results[(name, writer, readers)] = reads;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {(writer ? "yes" : "no")} | {readers} | {reads:N0} | {1e9 * readers / reads:F1} | {(writer ? writes.ToString("N0", CultureInfo.InvariantCulture) : "-")} |"));
        }
    }

    private static (double Reads, double Writes) RunOnce<TOps>(bool writer, int readers, double seconds)
        where TOps : IReservationOps, new()
    {
        var ops = new TOps();
        ulong context = FenceContext.Allocate(4);
        var cycle = new WrapCycle(context);
        var others = new[] { new FenceSource(context + 1, 1), new FenceSource(context + 2, 1), new FenceSource(context + 3, 1) };
        ops.Add(cycle.First, FenceUsage.Write);
        foreach (Fence f in others)
        {
            ops.Add(f, FenceUsage.Read);
        }

        int stop = 0;
        long writes = 0;
        long[] reads = new long[readers * 16]; // one padded slot per reader
        using var start = new Barrier(readers + (writer ? 1 : 0) + 1);
        var threads = new List<Thread>();
        if (writer)
        {
            threads.Add(new Thread(() =>
            {
                start.SignalAndWait();
                long n = 0;
                while (Volatile.Read(ref stop) == 0)
                {
                    ops.Add(cycle.Next(), FenceUsage.Write);
                    n++;
                }

                writes = n;
            }) { IsBackground = true, Name = "writer" });
        }

        for (int r = 0; r < readers; r++)
        {
            int slot = r * 16;
            threads.Add(new Thread(() =>
            {
                start.SignalAndWait();
                long n = 0;
                int idle = 0;
                while (Volatile.Read(ref stop) == 0)
                {
                    for (int i = 0; i < 256; i++)
                    {
                        idle += ops.Test() ? 1 : 0;
                    }

                    n += 256;
                }

                reads[slot] = n + (idle & 0); // idle keeps the test from being optimized away
            }) { IsBackground = true, Name = "reader" });
        }

        threads.ForEach(t => t.Start());
        start.SignalAndWait();
        var clock = Stopwatch.StartNew();
        Thread.Sleep(TimeSpan.FromSeconds(seconds));
        Volatile.Write(ref stop, 1);
        threads.ForEach(t => t.Join());
        double elapsed = clock.Elapsed.TotalSeconds;
        cycle.SignalAll();
        foreach (FenceSource f in others)
        {
            f.Signal();
        }

        return (reads.Sum() / elapsed, writes / elapsed);
    }

    private sealed class FenceCoreOps : IReservationOps
    {
        private readonly Reservation _r = new("contention");

        public void Add(Fence fence, FenceUsage usage) => _r.AddFence(fence, usage);

        public bool Test() => _r.TestSignaled(FenceUsage.Kernel);
    }

    private sealed class LockedOps : IReservationOps
    {
        private readonly LockedReservation _r = new();

        public void Add(Fence fence, FenceUsage usage) => _r.AddFence(fence, usage);

        public bool Test() => _r.TestSignaled(FenceUsage.Kernel);
    }

    private sealed class ImmutableOps : IReservationOps
    {
        private readonly ImmutableReservation _r = new();

        public void Add(Fence fence, FenceUsage usage) => _r.AddFence(fence, usage);

        public bool Test() => _r.TestSignaled(FenceUsage.Kernel);
    }

    private sealed class SeqCountOps : IReservationOps
    {
        private readonly SeqCountReservation _r = new();

        public void Add(Fence fence, FenceUsage usage) => _r.AddFence(fence, usage);

        public bool Test() => _r.TestSignaled(FenceUsage.Kernel);
    }
}
