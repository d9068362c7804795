namespace FenceCore.VirtualGpu;

/// <summary>
/// Walks a job's dependencies with one callback node, re-armed on the next unsignalled one (the
/// scheduler's <c>drm_sched_entity_add_dependency_cb</c>), so waiting allocates nothing per dependency.
/// </summary>
/// <remarks>
/// Abandoning the wait (dependency timeout, kill, device loss) unlinks the node from the fence it waits
/// on and drops the waiter's reference to the job, so a foreign fence that never signals holds neither
/// the node nor the job, its description and its buffers.
/// </remarks>
internal sealed class DependencyWaiter(Gpu gpu, GpuJob job) : FenceCallback
{
    public const int Waiting = 0;
    public const int Ready = 1;
    public const int Abandoned = 2;

    private int _index;

    /// <summary>The job, until the wait is abandoned. Written once to null, after the state CAS; read with Volatile.Read.</summary>
    private GpuJob? _job = job;

    /// <summary>The dependency this waiter is queued on, or null. Written by the thread that (re-)arms it,
    /// before the add; read by <see cref="TryAbandon"/> to unlink it.</summary>
    private Fence? _armedOn;

    /// <summary>Waiting → Ready (all signalled) or Waiting → Abandoned (timeout, kill, device lost), once, by CAS.</summary>
    public int State;

    /// <summary>The GPU that owns the job.</summary>
    public Gpu Gpu => gpu;

    /// <summary>The job, or null once the wait was abandoned.</summary>
    public GpuJob? Job => Volatile.Read(ref _job);

    public void Begin()
    {
        _index = 0;
        Volatile.Write(ref State, Waiting);
        if (!Advance())
        {
            gpu.Scheduler.ArmDependencyTimeout(this);
        }
    }

    protected override void Invoke(Fence fence)
    {
        if (Volatile.Read(ref State) == Waiting)
        {
            _index++;
            Advance();
        }
    }

    /// <summary>Moves to the next unsignalled dependency; returns true if none is left.</summary>
    private bool Advance()
    {
        GpuJob? job = Volatile.Read(ref _job);
        if (job is null)
        {
            return true; // abandoned meanwhile
        }

        IReadOnlyList<Fence> deps = job.EffectiveDependencies;
        while (_index < deps.Count)
        {
            Volatile.Write(ref _armedOn, deps[_index]);
            if (deps[_index].AddCallback(this))
            {
                return false; // re-armed: Invoke continues from here
            }

            _index++;
        }

        Volatile.Write(ref _armedOn, null);
        if (Interlocked.CompareExchange(ref State, Ready, Waiting) == Waiting)
        {
            gpu.Scheduler.JobDependenciesMet(job);
        }

        return true;
    }

    /// <summary>
    /// Abandons the wait and unlinks it (see the remarks). Returns the job when this call abandoned it,
    /// null when the wait had already ended.
    /// </summary>
    public GpuJob? TryAbandon()
    {
        GpuJob? job = Volatile.Read(ref _job);
        if (Interlocked.CompareExchange(ref State, Abandoned, Waiting) != Waiting)
        {
            return null;
        }

        Volatile.Read(ref _armedOn)?.RemoveCallback(this);
        Volatile.Write(ref _armedOn, null);
        Volatile.Write(ref _job, null); // the job, its description and its buffers are no longer reachable from here
        return job;
    }
}
