namespace FenceCore.VirtualGpu;

/// <summary>A hardware engine (ring) with its scheduler. Mirrors a <c>drm_gpu_scheduler</c> and its ring.</summary>
public sealed class Engine
{
    internal Engine(int index, EngineConfig config)
    {
        Index = index;
        Config = config;
        RingContext = FenceContext.Allocate();
        RingTimeline = config.Name + ".ring";
    }

    internal string RingTimeline { get; }

    /// <summary>The GPU that owns the engine.</summary>
    internal Gpu? Owner { get; init; }

    /// <summary>Position in the GPU's engine list.</summary>
    public int Index { get; }

    /// <summary>Configuration.</summary>
    public EngineConfig Config { get; }

    /// <summary>Name.</summary>
    public string Name => Config.Name;

    /// <summary>Kind.</summary>
    public EngineKind Kind => Config.Kind;

    /// <summary>The ring's own fence context (hardware fences).</summary>
    public ulong RingContext { get; }

    /// <summary>Guards the fields below: the ring and ready queue of this engine are changed by whichever
    /// worker runs its scheduler; fences are never signalled under it.</summary>
    internal readonly object Gate = new();

    internal readonly List<GpuJob> Ring = [];
    internal readonly PriorityQueue<GpuJob, ReadyKey> Ready = new();
    internal readonly Queue<GpuJob> Completed = new();
    internal long ReadySeq;

    /// <summary>The virtual runtime of the job started last: an entity that becomes ready again after being
    /// idle starts from here, so idling earns it no credit over the entities that kept the engine busy.</summary>
    internal long MinVRuntime;
    internal int CreditsInUse;
    internal ulong NextRingSeqno;
    internal long LastEndNs;
    /// <summary>One thread at a time signals this engine's completed jobs.</summary>
    internal readonly DrainGate Drainer = new();

    /// <summary>Load score for balancing: jobs queued on the ring and ready.</summary>
    internal int Score;

    /// <summary>Engine resets so far.</summary>
    public int Resets { get; internal set; }

    /// <summary>Credits currently in use (for the credit-limit invariant).</summary>
    public int CreditsInFlight
    {
        get
        {
            lock (Gate)
            {
                return CreditsInUse;
            }
        }
    }

    /// <inheritdoc/>
    public override string ToString() => Name;
}
