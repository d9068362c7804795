namespace FenceCore.VirtualGpu;

/// <summary>Scheduling priority of an entity; higher is served first. Mirrors <c>drm_sched_priority</c>.</summary>
public enum GpuPriority
{
    /// <summary>Low.</summary>
    Low = 0,

    /// <summary>Normal.</summary>
    Normal = 1,

    /// <summary>High.</summary>
    High = 2,

    /// <summary>The kernel's own entity (memory moves).</summary>
    Kernel = 3,
}

/// <summary>A client's queue on an engine kind. Mirrors <c>drm_sched_entity</c>; jobs run in push order.</summary>
public sealed class SchedEntity
{
    internal SchedEntity(GpuClient? client, Engine[] engines, GpuPriority priority, string name)
    {
        Client = client;
        Engines = engines;
        Priority = priority;
        Name = name;
        ulong first = FenceContext.Allocate(2);
        ScheduledTimeline = name + ".scheduled";
        FinishedTimeline = name + ".finished";
        ScheduledContext = first;
        FinishedContext = first + 1;
        CurrentEngine = engines[0];
    }

    /// <summary>The owning client (null for the kernel's entity).</summary>
    public GpuClient? Client { get; }

    /// <summary>The engines it may run on (load-balanced when idle).</summary>
    public IReadOnlyList<Engine> Engines { get; }

    /// <summary>Priority.</summary>
    public GpuPriority Priority { get; }

    /// <summary>Name.</summary>
    public string Name { get; }

    internal string ScheduledTimeline { get; }

    internal string FinishedTimeline { get; }

    /// <summary>Context of its scheduled fences.</summary>
    public ulong ScheduledContext { get; }

    /// <summary>Context of its finished fences (<see cref="ScheduledContext"/> + 1, as in the kernel).</summary>
    public ulong FinishedContext { get; }

    /// <summary>The entity's one lock: guards its queue and the fields marked "under Gate" (arming, pushing,
    /// advancing the head, killing). No fence is signalled under it.</summary>
    internal readonly object Gate = new();

    /// <summary>Jobs pushed and not yet started or failed, in push order; the head waits for its
    /// dependencies. Under <see cref="Gate"/>.</summary>
    internal readonly Queue<GpuJob> Queue = new();

    /// <summary>The engine new jobs are armed on; re-picked only when the entity is idle. Under <see cref="Gate"/>.</summary>
    internal Engine CurrentEngine;

    /// <summary>The last seqno handed out on both contexts. Under <see cref="Gate"/>.</summary>
    internal ulong NextSeqno;

    /// <summary>The finished fence of the job armed last (each job's fences signal after that job's; its
    /// scheduled fence is reached through it). Under <see cref="Gate"/>.</summary>
    internal GpuFence? LastFinished;

    /// <summary>Set once by a kill or device loss; a killed entity takes no job. Under <see cref="Gate"/>.</summary>
    internal bool Killed;

    /// <summary>Engine time charged so far, scaled by the priority's weight (see <see cref="ReadyKey"/>).
    /// Read and written under the gate of the engine its ready job is on.</summary>
    internal long VRuntime;

    /// <summary>Jobs queued and not yet started.</summary>
    public int QueuedJobs
    {
        get
        {
            lock (Gate)
            {
                return Queue.Count;
            }
        }
    }
}
