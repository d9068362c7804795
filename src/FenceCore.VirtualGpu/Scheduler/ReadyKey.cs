namespace FenceCore.VirtualGpu;

/// <summary>
/// The order of an engine's ready queue: the kernel's entity first, then the entity with the least
/// virtual runtime, ties to the higher priority, then first come. Each started job charges its entity
/// its duration times the priority's weight (<see cref="Charge"/>), so a higher priority gets a larger
/// share of the engine while every entity still progresses.
/// </summary>
/// <remarks>
/// This follows the fair policy proposed for the DRM scheduler (the "fair DRM scheduler" series on
/// dri-devel, 2025), whose entities carry a priority-scaled virtual runtime and are picked lowest first.
/// The strict-priority run queues that FenceCore modelled before (one <c>drm_sched_rq</c> per priority,
/// the higher always served first) starve a low-priority entity for as long as higher ones stay busy:
/// with no buffer dependencies to slow the busy clients (<c>--buffers-per-job 0</c>) the stress runner's
/// watchdog saw a low-priority job wait over a second of GPU time. The weights here are FenceCore's own
/// (1, 2 and 4 for high, normal and low; the series uses shifts).
/// </remarks>
internal readonly record struct ReadyKey(int Class, long VRuntime, int Rank, long Seq) : IComparable<ReadyKey>
{
    /// <summary>The smallest charge of a job, so that zero-length jobs still take their turn.</summary>
    private const long MinChargeNs = 1_000;

    public static ReadyKey For(SchedEntity entity, long vruntime, long seq) =>
        new(entity.Priority == GpuPriority.Kernel ? 0 : 1, vruntime, -(int)entity.Priority, seq);

    /// <summary>What running <paramref name="durationNs"/> adds to an entity's virtual runtime.</summary>
    public static long Charge(GpuPriority priority, long durationNs)
    {
        long weight = priority switch
        {
            GpuPriority.High => 1,
            GpuPriority.Normal => 2,
            _ => 4,
        };

        return Math.Max(durationNs, MinChargeNs) * weight;
    }

    public int CompareTo(ReadyKey other)
    {
        int c = Class.CompareTo(other.Class);
        if (c == 0)
        {
            c = VRuntime.CompareTo(other.VRuntime);
        }

        if (c == 0)
        {
            c = Rank.CompareTo(other.Rank);
        }

        return c != 0 ? c : Seq.CompareTo(other.Seq);
    }
}
