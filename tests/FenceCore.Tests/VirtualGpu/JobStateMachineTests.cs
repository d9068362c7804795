using FenceCore.VirtualGpu;

namespace FenceCore.Tests.VirtualGpu;

/// <summary>Issue 14: a job's state is one state machine (GpuJob.Phase); every move is checked, and the
/// public state reads from it.</summary>
public sealed class JobStateMachineTests
{
    private static GpuJob OneJob(Gpu gpu, TimeSpan? duration = null) =>
        gpu.CreateClient("c").Submit(new JobDescription { Engine = EngineKind.Graphics, Duration = duration ?? TimeSpan.FromMicroseconds(1) });

    [Fact]
    public void ARunningJob_GoesQueuedRunningDone()
    {
        using var gpu = new Gpu(new GpuConfig());
        GpuJob job = OneJob(gpu, TimeSpan.FromMicroseconds(10));
        var seen = new List<GpuJobState> { job.State };
        gpu.Subscribe(e =>
        {
            if (ReferenceEquals(e.Job, job))
            {
                seen.Add(job.State);
            }
        });
        gpu.RunUntilIdle();
        Assert.Equal([GpuJobState.Queued, GpuJobState.Running, GpuJobState.Done], seen);
        Assert.Equal(JobPhase.Done, job.Phase);
    }

    [Fact]
    public void AKilledJob_NeverRuns_AndEndsDone()
    {
        using var gpu = new Gpu(new GpuConfig());
        GpuClient client = gpu.CreateClient("c");
        GpuJob first = client.Submit(new JobDescription { Engine = EngineKind.Graphics, Duration = TimeSpan.FromMicroseconds(1), Dependencies = [new FenceSource(FenceContext.Allocate(), 1)] });
        gpu.Kill(client);
        Assert.Equal(GpuJobState.Done, first.State);
        Assert.Equal(-Errno.ESRCH, first.Finished.Error);
        Assert.Null(first.StartTime);
    }

    [Theory]
    [InlineData(JobPhase.Queued, JobPhase.Done)]              // done without ending one way or the other
    [InlineData(JobPhase.Queued, JobPhase.HardwareDone)]      // ring work over without a ring slot
    [InlineData(JobPhase.Started, JobPhase.FailedBeforeStart)]
    [InlineData(JobPhase.Done, JobPhase.Started)]
    [InlineData(JobPhase.FailedBeforeStart, JobPhase.Started)]
    public void AMoveOutsideTheStateMachine_Throws_AndLeavesThePhase(int from, int to)
    {
        using var gpu = new Gpu(new GpuConfig());
        GpuJob job = OneJob(gpu);
        job.Phase = from;
        var ex = Assert.Throws<InvalidOperationException>(() => job.Move(to));
        Assert.Contains("cannot move from", ex.Message, StringComparison.Ordinal);
        Assert.Equal(from, job.Phase);
        Assert.Throws<InvalidOperationException>(() => job.TryMove(from, to));
        Assert.Equal(from, job.Phase);
    }

    [Fact]
    public void AStartedJobWithoutItsHardwareFence_BreaksAnInvariant()
    {
        using var gpu = new Gpu(new GpuConfig());
        GpuJob job = OneJob(gpu);
        Assert.True(job.TryMove(JobPhase.Queued, JobPhase.Started)); // by hand: no ring slot, no hardware fence
        var ex = Assert.Throws<InvalidOperationException>(job.AssertInvariants);
        Assert.Contains("invariant broken", ex.Message, StringComparison.Ordinal);
    }
}

/// <summary>Issue 14: dependency timeouts are one list of the pending waits with one pending check, not one timed event per
/// wait; each wait still times out exactly its timeout after it began.</summary>
public sealed class DependencyTimeoutTests
{
    [Fact]
    public void WaitsBegunAtDifferentTimes_EachTimeOutAtItsOwnDeadline_AndSatisfiedOnesDoNot()
    {
        using var gpu = new Gpu(new GpuConfig { DependencyTimeout = TimeSpan.FromMicroseconds(100) });
        var timedOut = new List<(long Job, TimeSpan Time)>();
        gpu.Subscribe(e =>
        {
            if (e.Kind == GpuEventKind.DependencyTimeout)
            {
                timedOut.Add((e.Job!.Id, e.Time));
            }
        });

        var never = new FenceSource(FenceContext.Allocate(), 1);
        var later = new FenceSource(FenceContext.Allocate(), 1);
        var jobs = new List<GpuJob>();
        gpu.Schedule(TimeSpan.FromMicroseconds(50), () => later.Signal()); // the second wait ends before its deadline (110 us)
        foreach ((int atUs, Fence dep) in ((int, Fence)[])[(0, never), (10, later), (30, never), (30, never), (250, never)])
        {
            gpu.RunUntil(TimeSpan.FromMicroseconds(atUs));
            jobs.Add(gpu.CreateClient($"c{jobs.Count}").Submit(new JobDescription { Engine = EngineKind.Compute, Duration = TimeSpan.FromMicroseconds(1), Dependencies = [dep] }));
        }

        gpu.RunUntilIdle();

        Assert.Equal([(jobs[0].Id, TimeSpan.FromMicroseconds(100)), (jobs[2].Id, TimeSpan.FromMicroseconds(130)), (jobs[3].Id, TimeSpan.FromMicroseconds(130)), (jobs[4].Id, TimeSpan.FromMicroseconds(350))], timedOut);
        Assert.Equal(-Errno.ETIME, jobs[0].Finished.Error);
        Assert.Equal(0, jobs[1].Finished.Error);
        Assert.True(jobs[1].StartTime >= TimeSpan.FromMicroseconds(50));
        Assert.Equal(0, gpu.PendingEvents);
    }

    [Fact]
    public void AnEndedWait_IsNotKeptUntilItsDeadline_OnceItsJobHasCompleted()
    {
        // In threads mode the timeout is 1 s: a list that kept ended waits until their deadline held some
        // 300,000 of them in the stress runner's throughput run.
        using var gpu = new Gpu(new GpuConfig { DependencyTimeout = TimeSpan.FromMilliseconds(100) });
        var dependency = new FenceSource(FenceContext.Allocate(), 1);
        GpuClient client = gpu.CreateClient("c");
        WeakReference waiter = SubmitWaiting(client, dependency);
        dependency.Signal();
        gpu.RunFor(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, gpu.JobsCompleted); // and so it let go of its waiter (GpuJob.ReleaseDependencies)
        Assert.True(gpu.PendingEvents > 0, "the timeouts' check is still pending: the window this test is about");

        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.False(waiter.IsAlive, "an ended wait is not kept by the dependency timeouts until its deadline");
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static WeakReference SubmitWaiting(GpuClient client, Fence dependency)
    {
        GpuJob job = client.Submit(new JobDescription { Engine = EngineKind.Compute, Duration = TimeSpan.FromMicroseconds(1), Dependencies = [dependency] });
        return new WeakReference(job.Waiter ?? throw new InvalidOperationException("the job did not wait"));
    }

    [Fact]
    public void AWaitThatEnds_LeavesTheTimeoutList_AtOnce_WhetherItsDependenciesSignalOrItsClientIsKilled()
    {
        using var gpu = new Gpu(new GpuConfig { DependencyTimeout = TimeSpan.FromMilliseconds(100) });
        var signalled = new FenceSource(FenceContext.Allocate(), 1);
        var never = new FenceSource(FenceContext.Allocate(), 1);
        GpuClient killed = gpu.CreateClient("killed");
        GpuJob ready = gpu.CreateClient("ready").Submit(new JobDescription { Engine = EngineKind.Compute, Duration = TimeSpan.FromMicroseconds(1), Dependencies = [signalled] });
        GpuJob abandoned = killed.Submit(new JobDescription { Engine = EngineKind.Compute, Duration = TimeSpan.FromMicroseconds(1), Dependencies = [never] });
        Assert.Equal(2, gpu.Scheduler.PendingDependencyTimeoutsForTesting);

        signalled.Signal();
        Assert.Equal(1, gpu.Scheduler.PendingDependencyTimeoutsForTesting);
        gpu.Kill(killed);
        Assert.Equal(0, gpu.Scheduler.PendingDependencyTimeoutsForTesting);

        gpu.RunUntilIdle();
        Assert.Equal(0, ready.Finished.Error);
        Assert.Equal(-Errno.ESRCH, abandoned.Finished.Error);
        Assert.Equal(TimeSpan.FromMilliseconds(100), gpu.Now); // the one check posted still runs at the first deadline, finds the list empty and posts none
        Assert.Equal(0, gpu.PendingEvents);
    }
}
