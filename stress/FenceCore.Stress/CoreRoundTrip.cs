using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace FenceCore.Stress;

/// <summary>
/// How long one cache line takes to go from one core to another and back: two threads, each spinning until
/// the other has written, hand one value back and forth. A threads-mode run hands every job between client
/// and worker threads several times, so on two cores this latency sets its throughput.
/// </summary>
/// <remarks>
/// Why the report carries it: on the 2-vCPU VMs this project runs on, the round trip measured 50-66 ns in
/// some minutes and 220-370 ns in others (the host moves the vCPUs, presumably between core complexes), and
/// two-core runs in the slow minutes were half as fast. A two-core figure means little without it. Taken
/// before and after the run, since the placement can change during it.
/// </remarks>
internal static class CoreRoundTrip
{
    /// <summary>Timed batches, and round trips in each: a few milliseconds in all when the two threads are on two cores.</summary>
    private const int Batches = 40;
    private const int RoundsPerBatch = 500;

    /// <summary>Round trips before the timed ones.</summary>
    private const int WarmUpRounds = 2_000;

    /// <summary>The mean round trip in ns between two spinning threads, or null with fewer than two cores (the
    /// threads would take turns on one core, and the figure would be the scheduler's). The first rounds warm up
    /// (the partner's start, caches) and are not timed; the code is optimized from its first call, not tiered up.
    /// The figure is the fastest batch's mean: the runtime's own threads (the JIT's, the GC's) take a core now and
    /// then, and a batch they interrupt measures them, not the line.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static double? MeasureNs(int cores)
    {
        if (cores < 2 || Environment.ProcessorCount < 2)
        {
            return null;
        }

        var line = new Line();
        var partner = new Thread(() => Answer(line, WarmUpRounds + (Batches * RoundsPerBatch))) { IsBackground = true, Name = "core-round-trip" };
        partner.Start();
        Ask(line, WarmUpRounds);
        double fastest = double.MaxValue;
        for (int b = 0; b < Batches; b++)
        {
            long start = Stopwatch.GetTimestamp();
            Ask(line, RoundsPerBatch);
            fastest = Math.Min(fastest, Stopwatch.GetElapsedTime(start).TotalNanoseconds / RoundsPerBatch);
        }

        partner.Join();
        return Math.Round(fastest, 1);
    }

    /// <summary>The measuring side: hands the line over, then waits for it back.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Ask(Line line, int rounds)
    {
        for (int i = 0; i < rounds; i++)
        {
            Volatile.Write(ref line.Padded.Value, 1);
            Await(line, 0);
        }
    }

    /// <summary>The partner's side: waits for the line, then hands it back.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Answer(Line line, int rounds)
    {
        for (int i = 0; i < rounds; i++)
        {
            Await(line, 1);
            Volatile.Write(ref line.Padded.Value, 0);
        }
    }

    /// <summary>Spins until the line holds <paramref name="value"/>, yielding now and then: should the two threads
    /// share a core, each hand-over then costs a context switch, not a time slice of spinning, and the figure
    /// (microseconds, not nanoseconds) says so.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Await(Line line, int value)
    {
        int spins = 0;
        while (Volatile.Read(ref line.Padded.Value) != value)
        {
            if (++spins % 1024 == 0)
            {
                Thread.Yield();
            }
        }
    }

    /// <summary>The value handed back and forth, alone on its cache line: 64 B either side of it.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 128)]
    private struct PaddedInt
    {
        [FieldOffset(64)]
        public int Value;
    }

    private sealed class Line
    {
        public PaddedInt Padded;
    }
}
