using FenceCore.Internal;

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

    /// <summary>The device the engine belongs to.</summary>
    public Gpu Device => Owner!;

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

    /// <summary>The engine's one lock. Guards the ring, the ready queue, the completed queue and the fields
    /// marked "under Gate": they are changed by whichever thread runs this engine's scheduler step or drain.
    /// No fence is signalled and no event is raised under it.</summary>
    internal readonly object Gate = new();

    /// <summary>Jobs on the ring, in ring order (started, not yet drained). Under <see cref="Gate"/>.</summary>
    internal readonly List<GpuJob> Ring = [];

    /// <summary>Jobs whose dependencies have signalled, in <see cref="ReadyKey"/> order. Under <see cref="Gate"/>.</summary>
    internal readonly PriorityQueue<GpuJob, ReadyKey> Ready = new();

    /// <summary>Jobs taken off the ring, waiting for the drainer to signal them in order. Under <see cref="Gate"/>.</summary>
    internal readonly Queue<GpuJob> Completed = new();

    /// <summary>Ties in the ready queue break first come. Under <see cref="Gate"/>.</summary>
    internal long ReadySeq;

    /// <summary>The virtual runtime of the job started last: an entity that becomes ready again after being
    /// idle starts from here, so idling earns it no credit over the entities that kept the engine busy.
    /// Under <see cref="Gate"/>.</summary>
    internal long MinVRuntime;

    /// <summary>Ring credits taken by the jobs on the ring. Under <see cref="Gate"/>.</summary>
    internal int CreditsInUse;

    /// <summary>The last hardware-fence seqno handed out. Under <see cref="Gate"/>.</summary>
    internal ulong NextRingSeqno;

    /// <summary>When the ring's last started job ends (virtual mode), or far in the future behind a hang.
    /// Under <see cref="Gate"/>.</summary>
    internal long LastEndNs;

    /// <summary>One thread at a time signals this engine's completed jobs: the library's serial drain, the
    /// funnel sw_sync's reached points go through too (its own lock-free protocol).</summary>
    internal readonly SerialDrain Drainer = new();

    /// <summary>Load score for balancing: jobs armed on this engine and not yet done. Interlocked increments
    /// and decrements, read with Volatile.Read (a stale read only makes balancing less even).</summary>
    internal int Score;

    /// <summary>Engine resets so far. Written under <see cref="Gate"/>; a plain read outside it may lag.</summary>
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
