using FenceCore.VirtualGpu;

namespace FenceCore.Stress;

/// <summary>
/// What one stress run does, as the command line (<see cref="StressCommand"/>) gave it. The defaults are
/// the default scenario; every value here has already been checked against its option's rule.
/// </summary>
internal sealed record StressSettings
{
    public int Seed { get; init; } = 1;
    public long Jobs { get; init; } = 5_000_000;
    public double? DurationSeconds { get; init; }
    public IReadOnlyList<EngineConfig> Engines { get; init; } = [.. GpuConfig.DefaultEngines];
    public int Clients { get; init; } = 24;
    public int Buffers { get; init; } = 96;
    public int MaxBuffersPerJob { get; init; } = 4;
    public bool FixedBuffersPerJob { get; init; }
    public int InFlightPerClient { get; init; } = 4;
    public double ExplicitFraction { get; init; } = 0.125;
    public double HangRate { get; init; } = 0.0002;
    public double KillRate { get; init; } = 0.00005;
    public double ForeignRate { get; init; } = 0.0001;
    public double ExportRate { get; init; } = 0.01;
    public double CpuAccessRate { get; init; } = 0.005;
    public long DeviceMemoryMiB { get; init; } = 80;
    public GpuTimeMode Mode { get; init; } = GpuTimeMode.Virtual;
    public int Threads { get; init; } = Environment.ProcessorCount;
    public string? JsonPath { get; init; }
    public string? TracePath { get; init; }
    public string? HtmlPath { get; init; }
    public int TraceLimit { get; init; } = 20_000;
    public bool Checks { get; init; } = true;
    public bool Quiet { get; init; }
    public double WatchdogMs { get; init; } = 1000;
    public int? Cores { get; init; }
    public bool InjectSkipKernelFences { get; init; }

    /// <summary>The seed thread's importer bug: the importing devices ignore the KERNEL fences of their imports.</summary>
    public bool InjectImporterSkipsKernelFences { get; init; }

    /// <summary>Devices on one event loop; a <see cref="SharedFraction"/> of each device's buffers is shared with the others.</summary>
    public int Devices { get; init; } = 2;

    /// <summary>With several devices, the fraction of each device's buffers that it exports and every other
    /// device imports (spread evenly over its buffers), 0..1.</summary>
    public double SharedFraction { get; init; } = 0.25;

    /// <summary>Tests only: called with the number of jobs submitted so far before each client job is
    /// submitted (on the submitting thread), so a test can make a client fail. Null on the command line.</summary>
    internal Action<long>? BeforeSubmitForTests { get; init; }

    /// <summary>The arguments that replay this run: <c>--seed</c> first, then every other option given, each
    /// with its parsed value (built by <see cref="StressCommand"/> from the parse, not the raw tokens).</summary>
    public IReadOnlyList<string> ReplayArguments { get; init; } = [];
}
