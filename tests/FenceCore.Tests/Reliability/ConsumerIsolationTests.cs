using System.Runtime.CompilerServices;
using FenceCore.VirtualGpu;

namespace FenceCore.Tests.Reliability;

/// <summary>
/// Nothing a consumer does can wedge a producer (issue 11): a throwing fence callback, event subscriber
/// or CPU-access action is caught where it is thrown, counted in <see cref="Gpu.ConsumerFailures"/>, and
/// the scheduler goes on; an abandoned dependency waiter lets go of its job; a submission that races
/// with device loss fails with -ENODEV.
/// </summary>
public class ConsumerIsolationTests
{
    private static readonly TimeSpan Us = TimeSpan.FromMicroseconds(1);

    private static JobDescription Job(EngineKind engine, TimeSpan duration, params BufferAccess[] buffers) =>
        new() { Engine = engine, Duration = duration, Buffers = buffers };

    [Fact]
    public void ThrowingScheduledCallback_DoesNotWedgeTheGpu()
    {
        using var gpu = new Gpu(new GpuConfig());
        GpuBuffer buffer = gpu.CreateBuffer(4096);
        GpuClient client = gpu.CreateClient("c");
        GpuJob j1 = client.Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(buffer, Write: true)));
        j1.Scheduled.AddCallback(_ => throw new InvalidOperationException("consumer bug"));
        GpuJob j2 = client.Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(buffer, Write: true)));

        gpu.RunUntilIdle(); // threw FenceCallbackException before the fix, and left j1 Running, j2 Queued

        Assert.Equal(GpuJobState.Done, j1.State);
        Assert.Equal(GpuJobState.Done, j2.State);
        Assert.Equal(1, j1.Finished.Status);
        Assert.Equal(1, j2.Finished.Status);
        Assert.Equal(1, gpu.ConsumerFailures);
    }

    [Fact]
    public void ThrowingSubscriber_OnEveryEvent_DoesNotWedgeTheEngine()
    {
        using var gpu = new Gpu(new GpuConfig());
        var seen = new List<Exception>();
        gpu.ConsumerFailed += seen.Add;
        using IDisposable sub = gpu.Subscribe(e => throw new InvalidOperationException($"subscriber bug on {e.Kind}"));
        GpuClient client = gpu.CreateClient("c");
        var first = Enumerable.Range(0, 3).Select(_ => client.Submit(Job(EngineKind.Graphics, 5 * Us))).ToList();

        gpu.RunUntilIdle();
        GpuJob later = client.Submit(Job(EngineKind.Graphics, 5 * Us));
        gpu.RunUntilIdle();

        Assert.All(first.Append(later), j => Assert.Equal(1, j.Finished.Status));
        Assert.True(gpu.ConsumerFailures >= 12, $"4 jobs x (submitted, started, completed) failures expected, got {gpu.ConsumerFailures}");
        Assert.Equal(gpu.ConsumerFailures, seen.Count);
    }

    [Fact]
    public void ThrowingConsumerFailedHandler_IsCountedAndIgnored()
    {
        using var gpu = new Gpu(new GpuConfig());
        gpu.ConsumerFailed += _ => throw new InvalidOperationException("handler bug");
        GpuClient client = gpu.CreateClient("c");
        GpuJob job = client.Submit(Job(EngineKind.Graphics, 5 * Us));
        job.Finished.AddCallback(_ => throw new InvalidOperationException("consumer bug"));

        gpu.RunUntilIdle();

        Assert.Equal(1, job.Finished.Status);
        Assert.Equal(2, gpu.ConsumerFailures); // the callback's exception and the handler's
    }

    [Fact]
    public void ThrowingCpuAccessAction_DoesNotStopTheEventLoop()
    {
        using var gpu = new Gpu(new GpuConfig());
        GpuBuffer buffer = gpu.CreateBuffer(4096);
        GpuClient client = gpu.CreateClient("c");
        GpuJob writer = client.Submit(Job(EngineKind.Graphics, 5 * Us, new BufferAccess(buffer, Write: true)));
        gpu.CpuAccess(buffer, write: false, _ => throw new InvalidOperationException("CPU access bug"));
        GpuJob after = client.Submit(Job(EngineKind.Graphics, 5 * Us, new BufferAccess(buffer, Write: true)));

        gpu.RunUntilIdle();

        Assert.Equal(1, writer.Finished.Status);
        Assert.Equal(1, after.Finished.Status);
        Assert.Equal(1, gpu.ConsumerFailures);
    }

    [Fact]
    public void ThreadsMode_ThrowingCallback_DoesNotKillTheProcess_AndLaterJobsComplete()
    {
        using var gpu = new Gpu(new GpuConfig { Mode = GpuTimeMode.Threads, WorkerThreads = 2 });
        GpuClient client = gpu.CreateClient("c");
        var go = new FenceSource(FenceContext.Allocate(), 1); // holds the job back until its callbacks are in place
        GpuJob first = client.Submit(new JobDescription { Engine = EngineKind.Graphics, Dependencies = [go] });
        Assert.NotNull(first.Scheduled.AddCallback(_ => throw new InvalidOperationException("consumer bug")));
        Assert.NotNull(first.Finished.AddCallback(_ => throw new InvalidOperationException("consumer bug")));
        GpuJob second = client.Submit(Job(EngineKind.Graphics, TimeSpan.Zero));
        go.Signal();

        Assert.True(second.Finished.Wait(TimeSpan.FromSeconds(10)));
        Assert.True(first.Finished.Wait(TimeSpan.FromSeconds(10)));
        Assert.Equal(1, second.Finished.Status);
        Assert.True(gpu.WaitForIdle(TimeSpan.FromSeconds(10)));
        Assert.Equal(2, gpu.ConsumerFailures);
    }

    [Fact]
    public void AbandonedDependencyWaiter_LetsGoOfItsJob_WhileTheForeignFenceLives()
    {
        using var gpu = new Gpu(new GpuConfig { DependencyTimeout = TimeSpan.FromMilliseconds(1) });
        var never = new FenceSource(FenceContext.Allocate(), 1);
        WeakReference job = SubmitWaitingOn(gpu, never);

        gpu.RunUntilIdle(); // the dependency times out: the job fails with -ETIME
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        Assert.False(job.IsAlive, "the abandoned waiter, still linked on the foreign fence, keeps the job alive");
        GC.KeepAlive(never);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference SubmitWaitingOn(Gpu gpu, Fence never)
    {
        GpuClient client = gpu.CreateClient("c");
        GpuJob stuck = client.Submit(new JobDescription { Engine = EngineKind.Graphics, Dependencies = [never] });

        // A later job on the same entity, so the entity's "last finished fence" is not the stuck job's.
        client.Submit(Job(EngineKind.Graphics, 1 * Us));
        return new WeakReference(stuck);
    }

    [Fact]
    public void SubmissionRacingWithDeviceLoss_FailsWithENODEV()
    {
        using var gpu = new Gpu(new GpuConfig());
        GpuClient client = gpu.CreateClient("c");
        SchedEntity entity = client.EntityFor(EngineKind.Graphics);
        GpuJob? job = null;
        Thread submitter;
        lock (entity.Gate)
        {
            // The submitter passes the "is the device lost?" check, then blocks on the entity's lock.
            submitter = new Thread(() => job = client.Submit(Job(EngineKind.Graphics, 5 * Us)));
            submitter.Start();
            SpinWait.SpinUntil(() => submitter.ThreadState.HasFlag(ThreadState.WaitSleepJoin), TimeSpan.FromSeconds(10));
            gpu.LoseDevice(); // kills the entity meanwhile (the lock is re-entrant on this thread)
        }

        Assert.True(submitter.Join(TimeSpan.FromSeconds(10)));
        gpu.RunUntilIdle();
        Assert.Equal(-Errno.ENODEV, job!.Finished.Status); // was -ESRCH, the status of a killed client
    }
}

/// <summary>Submit's one failure path, and the stress runner's retained-heap invariant (issue 11).</summary>
public class SubmitFailurePathTests
{
    [Fact]
    public void FailureAfterArming_FailsTheJobWithECANCELED_SignalsItsFence_AndUnpins()
    {
        using var gpu = new Gpu(new GpuConfig());
        GpuBuffer buffer = gpu.CreateBuffer(4096);
        GpuClient client = gpu.CreateClient("c");
        GpuJob? armed = null;
        gpu.AfterArmForTesting = job =>
        {
            armed = job;
            throw new InvalidOperationException("injected fault after arming");
        };

        Assert.Throws<InvalidOperationException>(() => client.Submit(new JobDescription
        {
            Engine = EngineKind.Graphics,
            Duration = TimeSpan.FromMicroseconds(1),
            Buffers = [new BufferAccess(buffer, Write: true)],
        }));
        gpu.AfterArmForTesting = null;
        gpu.RunUntilIdle();

        Assert.NotNull(armed);
        Assert.Equal(-Errno.ECANCELED, armed!.Finished.Status);
        Assert.Equal(0, buffer.PinCount);
        Assert.True(buffer.Reservation.TestSignaled(FenceUsage.Bookkeep)); // no unsignalled fence is left behind

        // The GPU goes on: the next submission on the same buffer runs.
        GpuJob next = client.Submit(new JobDescription { Engine = EngineKind.Graphics, Duration = TimeSpan.FromMicroseconds(1), Buffers = [new BufferAccess(buffer, Write: true)] });
        gpu.RunUntilIdle();
        Assert.Equal(1, next.Finished.Status);
    }
}
