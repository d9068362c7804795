using System.Text.Json.Serialization;

namespace FenceCore.Stress;

/// <summary>
/// The machine-readable report of one run (<c>--json</c>), as typed records serialized by the
/// source-generated <see cref="StressReportJsonContext"/> (no reflection, so trim-safe). Its shape is
/// committed as <c>stress/report.schema.json</c>; a test validates real reports against it, so change
/// both together and raise <see cref="CurrentSchemaVersion"/> when a field changes meaning or goes away.
/// </summary>
internal sealed record StressReport
{
    public const int CurrentSchemaVersion = 3;

    public int SchemaVersion { get; init; } = CurrentSchemaVersion;
    public string Tool { get; init; } = "fencecore-stress";
    public required string Version { get; init; }

    /// <summary><c>pass</c>, <c>fail</c> or <c>unchecked</c> (run with <c>--no-checks</c>).</summary>
    public required string Result { get; init; }
    public required int Seed { get; init; }

    /// <summary>The event digest, <c>0x</c> and 16 hex digits: one device's, or the devices' digests folded in
    /// order; equal seeds give equal digests in virtual mode.</summary>
    public required string Digest { get; init; }
    public required ReportConfig Config { get; init; }
    public required ReportCounts Counts { get; init; }
    public required ReportThroughput Throughput { get; init; }
    public required ReportLatency Latency { get; init; }
    public required ReportMemory Memory { get; init; }
    public required IReadOnlyList<ReportDevice> Devices { get; init; }
    public required IReadOnlyList<ReportEngine> Engines { get; init; }
    public required IReadOnlyList<ReportSample> Timeline { get; init; }
    public required IReadOnlyList<ReportInvariant> Invariants { get; init; }

    /// <summary>The first broken invariant's replay command, when the run failed.</summary>
    public string? Replay { get; init; }
}

internal sealed record ReportConfig(
    string Mode,
    long Jobs,
    double? DurationSeconds,
    int Clients,
    double ExplicitFraction,
    int Buffers,
    int MaxBuffersPerJob,
    bool FixedBuffersPerJob,
    int InFlightPerClient,
    IReadOnlyList<ReportEngineConfig> Engines,
    long DeviceMemoryBytes,
    double HangRate,
    double KillRate,
    double ForeignRate,
    int Threads,
    int Cores,
    bool Checks,
    bool InjectSkipKernelFences,
    int Devices,
    bool InjectImporterSkipsKernelFences,
    double SharedFraction);

internal sealed record ReportEngineConfig(string Name, string Kind, int CreditLimit);

internal sealed record ReportCounts(
    long JobsSubmitted,
    long JobsCompleted,
    long ClientJobs,
    long KernelJobs,
    long Evictions,
    long FencesSignaled,
    long Events,
    long EngineResets,
    long HangsInjected,
    long ClientsKilled,
    long ForeignDependencies,
    long DependencyTimeouts,
    long Exports,
    long CpuAccesses,
    long SyncobjQueries,
    long Leaks,
    long Imports,
    long MoveNotifications,
    long CrossDeviceLeaks,
    long CompositorJobs,
    long ImportReads,
    long ImportWrites);

/// <summary>One device of the run.</summary>
internal sealed record ReportDevice(string Name, string Digest, long JobsSubmitted, long JobsCompleted, long Leaks, long DeviceMemoryBytes, long PeakDeviceMemoryBytes);

/// <summary>The run's rates. <c>CoreRoundTripNs</c>: threads mode on two cores or more, the round trip of one cache
/// line between two threads measured just before and just after the run (<see cref="CoreRoundTrip"/>); null
/// otherwise. A two-core throughput is comparable with another only at a similar round trip.</summary>
internal sealed record ReportThroughput(double WallSeconds, double GpuSeconds, double JobsPerSecond, double FencesPerSecond, ReportCoreRoundTrip? CoreRoundTripNs);

/// <summary>A cache line's round trip between two cores in ns, before and after the run.</summary>
internal sealed record ReportCoreRoundTrip(double Before, double After);

/// <summary>
/// Submit-to-finished latency of client jobs, recorded in an HdrHistogram at 3 significant digits, on the
/// <c>Clock</c> (<c>virtual</c>: GPU time, or <c>monotonic</c>), in microseconds. <c>Distribution</c> holds
/// counts in log-spaced buckets (four per power of two), each up to and including its bound, empty buckets
/// left out; <c>Percentiles</c> is HdrHistogram's percentile iteration (5 ticks per half distance);
/// <c>HdrHistogramBase64</c> is the whole histogram in HdrHistogram's compressed V2 encoding, in
/// nanoseconds, for tools that read it back at full resolution.
/// </summary>
internal sealed record ReportLatency(
    string Clock,
    string Unit,
    long Samples,
    double Min,
    double Mean,
    double StdDev,
    double P50,
    double P90,
    double P99,
    double P999,
    double Max,
    IReadOnlyList<ReportBucket> Distribution,
    IReadOnlyList<ReportPercentile> Percentiles,
    string HdrHistogramBase64);

internal sealed record ReportBucket(double UpToMicroseconds, long Count);

internal sealed record ReportPercentile(double Percentile, double ValueMicroseconds, long TotalCount);

internal sealed record ReportMemory(
    long DeviceCapacityBytes,
    long DevicePeakBytes,
    long ManagedPeakBytes,
    long? RetainedBaselineBytes,
    long? RetainedPeakBytes,
    long ProcessPeakWorkingSetBytes,
    long ManagedAllocatedBytes,
    long ManagedAllocatedBytesPerJob,
    IReadOnlyList<int> GcCollections);

/// <summary>One engine's share of the run; <c>Utilisation</c> is its busy GPU time over the run's GPU time, 0..1.</summary>
internal sealed record ReportEngine(string Name, string Kind, long Jobs, double BusySeconds, double Utilisation, int Resets);

/// <summary>One sample of the run, taken about twice a second of wall time; <c>JobsPerSecond</c> counts every
/// completed job (moves and clears too) since the previous sample, as <see cref="ReportThroughput"/> does.</summary>
internal sealed record ReportSample(double WallSeconds, double GpuSeconds, long ClientJobs, long JobsCompleted, double JobsPerSecond, long DeviceMemoryUsedBytes, long JobsInFlight);

internal sealed record ReportInvariant(string Name, string Description, long Checks, long Violations, string? FirstViolation);

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(StressReport))]
internal sealed partial class StressReportJsonContext : JsonSerializerContext;
