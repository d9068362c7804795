namespace FenceCore.VirtualGpu;

/// <summary>The kind of a hardware engine (ring).</summary>
public enum EngineKind
{
    /// <summary>3D / graphics.</summary>
    Graphics,

    /// <summary>Compute.</summary>
    Compute,

    /// <summary>Copy / DMA: also runs the memory manager's moves and clears.</summary>
    Copy,

    /// <summary>Video encode/decode.</summary>
    Video,
}

/// <summary>How time passes in a <see cref="Gpu"/>.</summary>
public enum GpuTimeMode
{
    /// <summary>Deterministic virtual time: one event loop, seeded; the same seed replays the same run
    /// event for event. Time advances only through <see cref="Gpu.RunUntil"/> and friends.</summary>
    Virtual,

    /// <summary>Real threads: engine work runs on worker threads (every core), jobs complete as soon as
    /// they reach the front of their ring, and timeouts use the real clock.</summary>
    Threads,
}

/// <summary>One hardware engine.</summary>
/// <param name="Name">A unique name, e.g. "gfx" or "copy1".</param>
/// <param name="Kind">What it runs.</param>
/// <param name="CreditLimit">Jobs (credits) in flight on the ring at most (<c>credit_limit</c>).</param>
public sealed record EngineConfig(string Name, EngineKind Kind, int CreditLimit = 4);

/// <summary>The configuration a simulator builds a <see cref="Gpu"/> from.</summary>
public sealed class GpuConfig
{
    /// <summary>The default engine set: graphics, two compute, two copy, video.</summary>
    public static IReadOnlyList<EngineConfig> DefaultEngines { get; } =
    [
        new("gfx", EngineKind.Graphics),
        new("compute0", EngineKind.Compute),
        new("compute1", EngineKind.Compute),
        new("copy0", EngineKind.Copy),
        new("copy1", EngineKind.Copy),
        new("video", EngineKind.Video),
    ];

    /// <summary>The engines; at least one, and at least one <see cref="EngineKind.Copy"/> engine for the memory manager.</summary>
    public IReadOnlyList<EngineConfig> Engines { get; init; } = DefaultEngines;

    /// <summary>Device memory (VRAM) in bytes.</summary>
    public long DeviceMemoryBytes { get; init; } = 256L << 20;

    /// <summary>Time mode.</summary>
    public GpuTimeMode Mode { get; init; } = GpuTimeMode.Virtual;

    /// <summary>Worker threads in <see cref="GpuTimeMode.Threads"/> (default: every core).</summary>
    public int WorkerThreads { get; init; } = Environment.ProcessorCount;

    /// <summary>Per-engine job timeout (TDR), measured from when the job started executing.</summary>
    public TimeSpan EngineTimeout { get; init; } = TimeSpan.FromMilliseconds(20);

    /// <summary>How long a job may wait for a dependency before it fails with -ETIME without running, so a
    /// foreign fence that never signals cannot block its queue forever (the role of vgem's expiry).</summary>
    public TimeSpan DependencyTimeout { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Where this GPU's meter comes from (dependency injection's <see cref="System.Diagnostics.Metrics.IMeterFactory"/>),
    /// so each GPU reports on its own meter and a host can tell them apart or drop them. Null: the GPU
    /// creates its own meter, named <see cref="Gpu.MeterName"/>, and disposes it with the GPU.
    /// </summary>
    public System.Diagnostics.Metrics.IMeterFactory? MeterFactory { get; init; }

    /// <summary>Copy throughput used for move and clear durations, in bytes per microsecond.</summary>
    public long CopyBytesPerMicrosecond { get; init; } = 64 * 1024;

    /// <summary>
    /// Fault injection for tests: submissions of explicit-sync clients skip the KERNEL fences they must
    /// always wait for. This is the bug of the seed thread; the leak detector must catch it.
    /// </summary>
    public bool InjectSkipKernelFences { get; init; }

    /// <summary>The device's name, used in buffer and trace names and in messages.</summary>
    public string Name { get; init; } = "gpu0";

    /// <summary>The device can take part in peer-to-peer DMA (both the exporter and the importer must, as
    /// <c>pci_p2pdma_distance</c> decides): an import then reaches the exporter's device memory; without it
    /// the buffer bounces through system memory.</summary>
    public bool PeerToPeer { get; init; } = true;

    /// <summary>
    /// Fault injection for tests: this device, as an importer, ignores the KERNEL fences of the buffers it
    /// imported, the driver bug of the seed thread (its jobs may read memory the exporter is moving). The
    /// leak detector must catch it as a cross-device access during a move.
    /// </summary>
    public bool InjectImporterSkipsKernelFences { get; init; }

    /// <summary>Checks the configuration, throwing an <see cref="ArgumentException"/> that names the rule broken.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Name))
        {
            throw new ArgumentException("A GPU needs a name.", nameof(Name));
        }

        if (Engines.Count == 0)
        {
            throw new ArgumentException("A GPU needs at least one engine.", nameof(Engines));
        }

        if (!Engines.Any(e => e.Kind == EngineKind.Copy))
        {
            throw new ArgumentException("A GPU needs at least one copy engine: the memory manager runs moves and clears on it.", nameof(Engines));
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (EngineConfig e in Engines)
        {
            if (string.IsNullOrWhiteSpace(e.Name) || !names.Add(e.Name))
            {
                throw new ArgumentException($"Engine names must be non-empty and unique; '{e.Name}' is not.", nameof(Engines));
            }

            if (e.CreditLimit < 1)
            {
                throw new ArgumentException($"Engine '{e.Name}' needs a credit limit of at least 1 (it has {e.CreditLimit}).", nameof(Engines));
            }
        }

        if (DeviceMemoryBytes <= 0)
        {
            throw new ArgumentException("Device memory must be positive.", nameof(DeviceMemoryBytes));
        }

        if (WorkerThreads < 1)
        {
            throw new ArgumentException("At least one worker thread is needed.", nameof(WorkerThreads));
        }

        if (EngineTimeout <= TimeSpan.Zero || DependencyTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException("Engine and dependency timeouts must be positive.");
        }

        if (CopyBytesPerMicrosecond <= 0)
        {
            throw new ArgumentException("Copy throughput must be positive.", nameof(CopyBytesPerMicrosecond));
        }
    }
}
