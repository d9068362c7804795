using System.Diagnostics;
using FenceCore.VirtualGpu;
using HdrHistogram;

namespace FenceCore.Stress;

/// <summary>
/// What the report and the summary show that the GPU does not count itself: the latency distribution of
/// client jobs (an HdrHistogram), each engine's busy time, evictions and dependency timeouts, and the
/// timeline sampled during the run.
/// </summary>
/// <remarks>
/// Events can arrive on several threads in threads mode; one lock guards the per-engine figures and the
/// samples (it is taken once per completed job, never while the GPU holds one of its own locks, because
/// events are delivered outside them). The histogram is a <see cref="LongConcurrentHistogram"/> in
/// threads mode (wait-free recording) and a plain <see cref="LongHistogram"/> in virtual mode.
/// </remarks>
internal sealed class RunStatistics
{
    /// <summary>Latencies above an hour of GPU time are clamped; none is expected (the watchdog is 1 s).</summary>
    private const long HighestTrackableNs = 3_600_000_000_000;

    private readonly DeviceSet _gpu;
    private readonly HistogramBase _latencyNs;
    private readonly object _gate = new();
    private readonly long[] _engineBusyNs;   // under _gate
    private readonly long[] _engineJobs;     // under _gate
    private readonly List<ReportSample> _timeline = []; // under _gate
    private long _lastSampleJobs;            // under _gate: completed jobs at the last sample
    private double _lastSampleWall;          // under _gate
    private long _kernelJobs;                // Interlocked
    private long _evictions;                 // Interlocked
    private long _dependencyTimeouts;        // Interlocked
    private long _crossDeviceLeaks;          // Interlocked

    public RunStatistics(DeviceSet gpu)
    {
        _gpu = gpu;
        _latencyNs = gpu.Config.Mode == GpuTimeMode.Threads
            ? new LongConcurrentHistogram(1, HighestTrackableNs, 3)
            : new LongHistogram(1, HighestTrackableNs, 3);
        _engineBusyNs = new long[gpu.Engines.Count];
        _engineJobs = new long[gpu.Engines.Count];
        gpu.Subscribe(OnEvent);
    }

    public HistogramBase Latency => _latencyNs;
    public long KernelJobs => Interlocked.Read(ref _kernelJobs);
    public long Evictions => Interlocked.Read(ref _evictions);
    public long DependencyTimeouts => Interlocked.Read(ref _dependencyTimeouts);

    /// <summary>Leaks on imported buffers: a job of one device touched memory that another device was moving.</summary>
    public long CrossDeviceLeaks => Interlocked.Read(ref _crossDeviceLeaks);

    private void OnEvent(GpuEvent e)
    {
        switch (e.Kind)
        {
            case GpuEventKind.JobSubmitted when e.Job is { IsKernelJob: true } k:
                Interlocked.Increment(ref _kernelJobs);
                if (k.Description.Label?.StartsWith("evict", StringComparison.Ordinal) == true)
                {
                    Interlocked.Increment(ref _evictions);
                }

                break;
            case GpuEventKind.DependencyTimeout:
                Interlocked.Increment(ref _dependencyTimeouts);
                break;
            case GpuEventKind.LeakDetected when e.Buffer is { IsImported: true }:
                Interlocked.Increment(ref _crossDeviceLeaks);
                break;
            case GpuEventKind.JobCompleted when e.Job is { } job:
                if (!job.IsKernelJob)
                {
                    _latencyNs.RecordValue(Math.Clamp(e.Time.Ns() - job.SubmitTime.Ns(), 1, HighestTrackableNs));
                }

                // Only jobs that ran on the ring count (a job cancelled there keeps a far-future start).
                if (job.StartTime.NsOrNone() >= 0 && job.EndTime.NsOrNone() >= job.StartTime.NsOrNone() && job.EndTime.NsOrNone() <= e.Time.Ns() && job.Engine is { } engine)
                {
                    lock (_gate)
                    {
                        int slot = _gpu.Slot(engine);
                        _engineBusyNs[slot] += job.EndTime.NsOrNone() - job.StartTime.NsOrNone();
                        _engineJobs[slot]++;
                    }
                }

                break;
        }
    }

    /// <summary>Takes one timeline sample (the progress display calls it about twice a second).</summary>
    public void Sample(TimeSpan wall, long clientJobs)
    {
        double t = wall.TotalSeconds;
        lock (_gate)
        {
            // The rate counts every completed job, moves and clears included, as the report's throughput does.
            long completed = _gpu.JobsCompleted;
            double rate = t > _lastSampleWall ? (completed - _lastSampleJobs) / (t - _lastSampleWall) : 0;
            _timeline.Add(new ReportSample(Math.Round(t, 3), Math.Round(_gpu.NowNs / 1e9, 6), clientJobs, completed, Math.Round(rate), _gpu.DeviceMemoryUsed, _gpu.JobsSubmitted - completed));
            _lastSampleJobs = completed;
            _lastSampleWall = t;
        }
    }

    public IReadOnlyList<ReportSample> Timeline
    {
        get
        {
            lock (_gate)
            {
                return [.. _timeline];
            }
        }
    }

    public IReadOnlyList<ReportEngine> Engines()
    {
        double gpuNs = Math.Max(1, _gpu.NowNs);
        lock (_gate)
        {
            return [.. _gpu.Engines.Select((e, slot) => new ReportEngine(_gpu.EngineName(e), Kind(e.Kind), _engineJobs[slot], Math.Round(_engineBusyNs[slot] / 1e9, 6),
                Math.Round(Math.Min(1, _engineBusyNs[slot] / gpuNs), 4), e.Resets))];
        }
    }

    public static string Kind(EngineKind kind) => kind.ToString().ToLowerInvariant();

    /// <summary>The latency section of the report, in microseconds.</summary>
    public ReportLatency LatencyReport(string clock)
    {
        HistogramBase h = _latencyNs;
        long n = h.TotalCount;
        static double Us(double ns) => Math.Round(ns / 1000.0, 3);
        if (n == 0)
        {
            return new ReportLatency(clock, "microseconds", 0, 0, 0, 0, 0, 0, 0, 0, 0, [], [], Encode(h));
        }

        // Four buckets per power of two from 1 ns: bucket k holds values in (2^((k-1)/4), 2^(k/4)].
        var counts = new SortedDictionary<int, long>();
        long min = long.MaxValue;
        foreach (var v in h.RecordedValues())
        {
            long value = v.ValueIteratedTo;
            min = Math.Min(min, h.LowestEquivalentValue(value));
            int k = (int)Math.Ceiling(4 * Math.Log2(Math.Max(1, value)) - 1e-9);
            counts[k] = counts.GetValueOrDefault(k) + v.CountAtValueIteratedTo;
        }

        var buckets = counts.Select(kv => new ReportBucket(Us(Math.Pow(2, kv.Key / 4.0)), kv.Value)).ToArray();
        var percentiles = h.Percentiles(5).Select(p => new ReportPercentile(Math.Round(p.PercentileLevelIteratedTo, 6), Us(p.ValueIteratedTo), p.TotalCountToThisValue)).ToArray();
        return new ReportLatency(clock, "microseconds", n, Us(min), Us(h.GetMean()), Us(h.GetStdDeviation()),
            Us(h.GetValueAtPercentile(50)), Us(h.GetValueAtPercentile(90)), Us(h.GetValueAtPercentile(99)), Us(h.GetValueAtPercentile(99.9)), Us(h.GetMaxValue()),
            buckets, percentiles, Encode(h));
    }

    private static string Encode(HistogramBase h)
    {
        // ByteBuffer.Allocate(byte[]) copies the array, and its ToArray is not public: read the bytes back.
        var buffer = HdrHistogram.Utilities.ByteBuffer.Allocate(h.GetNeededByteBufferCapacity());
        int length = h.EncodeIntoCompressedByteBuffer(buffer);
        buffer.Position = 0;
        byte[] bytes = new byte[length];
        for (int i = 0; i < length; i++)
        {
            bytes[i] = buffer.Get();
        }

        return Convert.ToBase64String(bytes);
    }

    /// <summary>Wall time measured by the run; kept here so the sampler and the report share one clock.</summary>
    public Stopwatch Wall { get; } = new();
}
