namespace FenceCore.VirtualGpu;

/// <summary>
/// Walks a job's dependencies with one callback node, re-armed on the next unsignalled one (the
/// scheduler's <c>drm_sched_entity_add_dependency_cb</c>), so waiting allocates nothing per dependency.
/// </summary>
/// <remarks>
/// Abandoning the wait (dependency timeout, kill, device loss) unlinks the node from the fence it waits
/// on and drops the waiter's reference to the job, so a foreign fence that never signals holds neither
/// the node nor the job, its description and its buffers. A wait that ends because every dependency has
/// signalled drops the job too. Either way the wait leaves the dependency timeouts' list at once
/// (<see cref="DependencyTimeouts.Disarm"/>), so nothing keeps an ended wait, or its job, until its
/// deadline (<see cref="GpuConfig.DependencyTimeout"/>). PERF: in the stress runner's throughput run the
/// timeouts kept about 10,000 finished jobs alive in virtual mode, 300,000 waits in threads mode, carried past every
/// young collection (GpuScenarioTests.AJobWhoseDependenciesHaveSignalled_IsNotKeptAliveUntilItsDependencyTimeoutComes).
/// </remarks>
internal sealed class DependencyWaiter(GpuJob job) : RearmingCallback
{
    public const int Waiting = 0;
    public const int Ready = 1;
    public const int Abandoned = 2;

    /// <summary>The walk's position in the job's dependencies; used only by the thread running the walk
    /// (see <see cref="RearmingCallback"/>).</summary>
    private int _next;

    /// <summary>The job, until the wait ends (ready or abandoned). Written once to null, after the state CAS that
    /// ended the wait; read with Volatile.Read.</summary>
    private GpuJob? _job = job;

    /// <summary>Waiting → Ready (all signalled) or Waiting → Abandoned (timeout, kill, device lost), once, by CAS.</summary>
    public int WaitState;

    /// <summary>The neighbours in the dependency timeouts' list and this wait's deadline (it is linked when it has a
    /// previous one or is the list's head). Read and written only under that list's lock (<see cref="DependencyTimeouts"/>).</summary>
    internal DependencyWaiter? TimeoutPrevious;

    /// <inheritdoc cref="TimeoutPrevious"/>
    internal DependencyWaiter? TimeoutNext;

    /// <inheritdoc cref="TimeoutPrevious"/>
    internal long TimeoutDeadlineNs;

    /// <summary>The job, or null once the wait has ended.</summary>
    public GpuJob? Job => Volatile.Read(ref _job);

    /// <summary>Starts the walk at dependency <paramref name="first"/> (the ones before it have signalled).</summary>
    public void Begin(int first)
    {
        GpuJob? job = Volatile.Read(ref _job);
        if (job is null)
        {
            return; // abandoned (its job killed) before it began: a wait begins once, as its job becomes its entity's head once
        }

        _next = first;
        if (!Advance())
        {
            // The job read before the walk: once armed, the wait may end on another thread and drop it.
            job.Engine.Owner!.Scheduler.ArmDependencyTimeout(this);
        }
    }

    protected internal override void Invoke(Fence fence)
    {
        if (Volatile.Read(ref WaitState) == Waiting)
        {
            Advance();
        }
    }

    protected override Fence? NextInWalk()
    {
        IReadOnlyList<Fence> deps = Volatile.Read(ref _job)?.EffectiveDependencies ?? [];
        return _next < deps.Count ? deps[_next++] : null; // an abandoned wait has nothing left to walk
    }

    /// <summary>Waits on the next unsignalled dependency; returns true if none is left (the job is ready,
    /// or the wait was abandoned meanwhile).</summary>
    private bool Advance()
    {
        if (ArmOnNext())
        {
            return false; // re-armed: Invoke continues from here
        }

        GpuJob? job = Volatile.Read(ref _job);
        if (job is not null && Interlocked.CompareExchange(ref WaitState, Ready, Waiting) == Waiting)
        {
            Volatile.Write(ref _job, null); // the wait is over; nothing of it may hold the job (see the remarks)
            GpuScheduler scheduler = job.Engine.Owner!.Scheduler;
            scheduler.DisarmDependencyTimeout(this);
            scheduler.JobDependenciesMet(job);
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
        if (job is null || Interlocked.CompareExchange(ref WaitState, Abandoned, Waiting) != Waiting)
        {
            return null;
        }

        Unlink();
        Volatile.Write(ref _job, null); // the job, its description and its buffers are no longer reachable from here
        job.Engine.Owner!.Scheduler.DisarmDependencyTimeout(this);
        return job;
    }
}
