namespace FenceCore.VirtualGpu;

/// <summary>
/// The ordering of an entity's scheduled and finished fences (the kernel's <c>sched_fence.c</c>): each
/// signals only after the entity's previous one of the same kind, whatever thread completes, fails or
/// kills the job; and the bookkeeping of a job's completion (counters, the event, letting go of its
/// dependency graph).
/// </summary>
/// <remarks>Holds no lock; <see cref="_jobsCompleted"/> is counted with Interlocked.</remarks>
internal sealed class SchedFences(Gpu gpu)
{
    private readonly Gpu _gpu = gpu;

    /// <summary>Jobs whose finished fence has signalled: Interlocked increments, read with Interlocked.Read.</summary>
    private long _jobsCompleted;

    public long JobsCompleted => Interlocked.Read(ref _jobsCompleted);

    /// <summary>
    /// Signals an entity fence only once the entity's previous fence of the same kind has signalled
    /// (at once when it has, else from a work item posted by its callback). Every scheduled and finished
    /// fence goes through here, so an entity's contexts stay in seqno order on any number of workers,
    /// even when a kill or timeout on one thread races with the scheduler on another. Posting, not
    /// signalling inside the callback, keeps a long run of failed jobs from recursing.
    /// <paramref name="nowNs"/> is the caller's reading of the GPU's clock, the signal's time when it signals
    /// at once (a fence that waits for its previous one reads the clock when it signals).
    /// </summary>
    /// <remarks>PERF: the caller's one reading serves the step, instead of a reading for each signal and event;
    /// in threads mode each is a read of the monotonic clock (<c>clock_gettime</c>), which was 5-8 % of a run's
    /// profile. In virtual mode the clock does not move within a step, so nothing changes there.</remarks>
    internal void SignalAfter(GpuFence? previous, GpuFence fence, int error, GpuJob? job, long nowNs)
    {
        if (previous is null || previous.IsSignaled || !previous.AddCallback(new SignalAfterPrevious(_gpu, fence, error, job)))
        {
            SignalFailed(fence, error, job, nowNs);
        }
    }

    /// <summary>Signals <paramref name="fence"/> at <paramref name="nowNs"/> and, for a job's finished fence, counts
    /// and reports its completion at the same time.</summary>
    internal void SignalFailed(GpuFence fence, int error, GpuJob? job, long nowNs)
    {
        fence.SignalAt(error, nowNs);
        if (job is not null)
        {
            Interlocked.Increment(ref _jobsCompleted);
            _gpu.Metrics.JobsCompleted.Add(1);
            _gpu.Hub.Raise(new GpuEvent(GpuEventKind.JobCompleted, nowNs, job, job.Engine, error));

            // Let go of the dependency graph: a finished job's dependencies (and theirs, through each
            // fence's job) would otherwise keep every earlier job alive and memory would grow with the run.
            job.ReleaseDependencies();
        }
    }

    private sealed class SignalAfterPrevious(Gpu gpu, GpuFence fence, int error, GpuJob? job) : FenceCallback
    {
        protected internal override void Invoke(Fence previous) => gpu.Dispatcher.Post(static s => ((SignalAfterPrevious)s!).Run(), this);

        private void Run() => gpu.Fences.SignalFailed(fence, error, job, gpu.NowNs);
    }
}
