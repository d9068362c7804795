namespace FenceCore.VirtualGpu;

/// <summary>
/// A client (a process's GPU context). It owns one scheduler entity per engine kind, load-balanced over
/// the engines of that kind.
/// </summary>
public sealed class GpuClient
{
    private readonly Dictionary<EngineKind, SchedEntity> _entities = [];

    internal GpuClient(Gpu gpu, int id, string name, GpuPriority priority, bool explicitSync)
    {
        Gpu = gpu;
        Id = id;
        Name = name;
        Priority = priority;
        ExplicitSync = explicitSync;
        foreach (IGrouping<EngineKind, Engine> kind in gpu.Engines.GroupBy(e => e.Kind))
        {
            _entities[kind.Key] = new SchedEntity(this, [.. kind], priority, $"{name}.{kind.Key.ToString().ToLowerInvariant()}");
        }
    }

    /// <summary>The GPU.</summary>
    public Gpu Gpu { get; }

    /// <summary>Id.</summary>
    public int Id { get; }

    /// <summary>Name.</summary>
    public string Name { get; }

    /// <summary>Priority of its entities.</summary>
    public GpuPriority Priority { get; }

    /// <summary>
    /// True for an explicit-sync client (the "ignore implicit sync" opt-out): its jobs add BOOKKEEP
    /// fences and wait only for KERNEL fences of the buffers they touch, never for other clients'
    /// implicit fences. KERNEL fences are never skipped.
    /// </summary>
    public bool ExplicitSync { get; }

    /// <summary>True once killed.</summary>
    public bool Killed { get; internal set; }

    /// <summary>The entities, one per engine kind.</summary>
    public IReadOnlyCollection<SchedEntity> Entities => _entities.Values;

    /// <summary>Submits a job. See <see cref="Gpu.Submit"/>.</summary>
    public GpuJob Submit(JobDescription job) => Gpu.Submit(this, job);

    internal SchedEntity EntityFor(EngineKind kind) =>
        _entities.TryGetValue(kind, out SchedEntity? e)
            ? e
            : throw new ArgumentException($"This GPU has no {kind} engine; its engines are {string.Join(", ", Gpu.Engines.Select(x => x.Name))}.", nameof(kind));
}
