using FenceCore.VirtualGpu;

namespace FenceCore.Tests.VirtualGpu;

/// <summary>Issue 14: a job's state is one state machine (GpuJob.Phase); every move is checked, and the
/// public state reads from it.</summary>
public sealed class JobStateMachineTests
{
    private static GpuJob OneJob(Gpu gpu, long durationNs = 1_000) =>
        gpu.CreateClient("c").Submit(new JobDescription { Engine = EngineKind.Graphics, DurationNs = durationNs });

    [Fact]
    public void ARunningJob_GoesQueuedRunningDone()
    {
        using var gpu = new Gpu(new GpuConfig());
        GpuJob job = OneJob(gpu, durationNs: 10_000);
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
        GpuJob first = client.Submit(new JobDescription { Engine = EngineKind.Graphics, DurationNs = 1_000, Dependencies = [new FenceSource(FenceContext.Allocate(), 1)] });
        gpu.Kill(client);
        Assert.Equal(GpuJobState.Done, first.State);
        Assert.Equal(-Errno.ESRCH, first.Finished.Error);
        Assert.Equal(-1, first.StartNs);
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

/// <summary>Issue 14: dependency timeouts are one FIFO with one pending check, not one timed event per
/// wait; each wait still times out exactly its timeout after it began.</summary>
public sealed class DependencyTimeoutTests
{
    [Fact]
    public void WaitsBegunAtDifferentTimes_EachTimeOutAtItsOwnDeadline_AndSatisfiedOnesDoNot()
    {
        using var gpu = new Gpu(new GpuConfig { DependencyTimeout = TimeSpan.FromMicroseconds(100) });
        var timedOut = new List<(long Job, long TimeNs)>();
        gpu.Subscribe(e =>
        {
            if (e.Kind == GpuEventKind.DependencyTimeout)
            {
                timedOut.Add((e.Job!.Id, e.TimeNs));
            }
        });

        var never = new FenceSource(FenceContext.Allocate(), 1);
        var later = new FenceSource(FenceContext.Allocate(), 1);
        var jobs = new List<GpuJob>();
        gpu.Schedule(50_000, () => later.Signal()); // the second wait ends before its deadline (110 us)
        foreach ((long at, Fence dep) in ((long, Fence)[])[(0, never), (10_000, later), (30_000, never), (30_000, never), (250_000, never)])
        {
            gpu.RunUntil(at);
            jobs.Add(gpu.CreateClient($"c{jobs.Count}").Submit(new JobDescription { Engine = EngineKind.Compute, DurationNs = 1_000, Dependencies = [dep] }));
        }

        gpu.RunUntilIdle();

        Assert.Equal([(jobs[0].Id, 100_000L), (jobs[2].Id, 130_000L), (jobs[3].Id, 130_000L), (jobs[4].Id, 350_000L)], timedOut);
        Assert.Equal(-Errno.ETIME, jobs[0].Finished.Error);
        Assert.Equal(0, jobs[1].Finished.Error);
        Assert.True(jobs[1].StartNs >= 50_000);
        Assert.Equal(0, gpu.PendingEvents);
    }
}
