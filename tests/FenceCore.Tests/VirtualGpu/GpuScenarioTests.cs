using System.Runtime.CompilerServices;
using FenceCore.VirtualGpu;

namespace FenceCore.Tests.VirtualGpu;

/// <summary>Scenario tests for each scheduler rule, each fault and its error code, memory pressure and the leak detector.</summary>
public class GpuScenarioTests
{
    private static readonly TimeSpan Us = TimeSpan.FromMicroseconds(1);
    private static readonly TimeSpan Ms = TimeSpan.FromMilliseconds(1);

    private static Gpu NewGpu(Func<GpuConfig, GpuConfig>? tweak = null)
    {
        var config = new GpuConfig();
        return new Gpu(tweak is null ? config : tweak(config));
    }

    private static JobDescription Job(EngineKind engine, TimeSpan duration, params BufferAccess[] buffers) =>
        new() { Engine = engine, Duration = duration, Buffers = buffers };

    [Fact]
    public void Job_RunsForItsDuration_AndSignalsScheduledThenFinished()
    {
        using Gpu gpu = NewGpu();
        GpuClient c = gpu.CreateClient("c");
        GpuJob job = c.Submit(Job(EngineKind.Graphics, 50 * Us));

        gpu.RunUntil(10 * Us);
        Assert.True(job.Scheduled.IsSignaled);
        Assert.False(job.Finished.IsSignaled);
        gpu.RunUntil(60 * Us);
        Assert.Equal(1, job.Finished.Status);
        Assert.Equal(job.StartTime + (50 * Us), job.EndTime);
        Assert.Equal(GpuJobState.Done, job.State);
    }

    [Fact]
    public void JobsOfOneEntity_RunInPushOrder()
    {
        using Gpu gpu = NewGpu();
        GpuClient c = gpu.CreateClient("c");
        var jobs = Enumerable.Range(0, 10).Select(_ => c.Submit(Job(EngineKind.Graphics, 5 * Us))).ToList();
        var order = new List<long>();
        foreach (GpuJob j in jobs)
        {
            j.Finished.AddCallback(_ => order.Add(j.Id));
        }

        gpu.RunUntilIdle();
        Assert.Equal(jobs.Select(j => j.Id), order);
        Assert.Equal(jobs.Select(j => j.Finished.Seqno), jobs.Select(j => j.Finished.Seqno).Order());
        for (int i = 1; i < jobs.Count; i++)
        {
            Assert.True(jobs[i].StartTime >= jobs[i - 1].EndTime);
        }
    }

    [Fact]
    public void ImplicitSync_ReaderOnAnotherEngineWaitsForTheWriter_ReadersOverlap()
    {
        using Gpu gpu = NewGpu();
        GpuBuffer bo = gpu.CreateBuffer(4096);
        GpuClient a = gpu.CreateClient("a");
        GpuClient b = gpu.CreateClient("b");
        GpuJob write = a.Submit(Job(EngineKind.Graphics, 100 * Us, new BufferAccess(bo, true)));
        GpuJob read1 = b.Submit(Job(EngineKind.Compute, 30 * Us, new BufferAccess(bo, false)));
        GpuJob read2 = b.Submit(Job(EngineKind.Video, 30 * Us, new BufferAccess(bo, false)));

        Assert.Contains(write.Finished, read1.EffectiveDependencies);
        gpu.RunUntilIdle();
        Assert.True(read1.StartTime >= write.EndTime);
        Assert.True(read2.StartTime >= write.EndTime);
        Assert.True(read2.StartTime < read1.EndTime, "two readers on different engines overlap");
    }

    [Fact]
    public void ImplicitSync_WriterWaitsForEarlierReaders()
    {
        using Gpu gpu = NewGpu();
        GpuBuffer bo = gpu.CreateBuffer(4096);
        GpuClient a = gpu.CreateClient("a");
        GpuClient b = gpu.CreateClient("b");
        GpuJob read = a.Submit(Job(EngineKind.Compute, 100 * Us, new BufferAccess(bo, false)));
        GpuJob write = b.Submit(Job(EngineKind.Video, 10 * Us, new BufferAccess(bo, true)));

        gpu.RunUntilIdle();
        Assert.True(write.StartTime >= read.EndTime);
    }

    [Fact]
    public void JobDescription_KeepsItsOwnCopyOfTheBufferList_SoTheCallerMayReuseIt()
    {
        using Gpu gpu = NewGpu();
        GpuBuffer a = gpu.CreateBuffer(4096);
        GpuBuffer b = gpu.CreateBuffer(4096);
        GpuClient c = gpu.CreateClient("c");
        var list = new[] { new BufferAccess(a, Write: true) };
        JobDescription desc = Job(EngineKind.Graphics, 10 * Us, list);
        list[0] = new BufferAccess(b, Write: false); // the caller reuses its array for the next job

        Assert.Equal([new BufferAccess(a, true)], desc.Buffers);
        GpuJob job = c.Submit(desc);
        list[0] = new BufferAccess(b, Write: true);

        Assert.Equal([new BufferAccess(a, true)], job.Accesses);
        Assert.Contains(job.Finished, a.Reservation.GetFences(FenceUsage.Write)); // with the clear's KERNEL fence
        Assert.DoesNotContain(b.Reservation.GetFences(FenceUsage.Bookkeep), f => ReferenceEquals(f, job.Finished));
        gpu.RunUntilIdle();
        Assert.Equal(1, job.Finished.Status);
    }

    [Fact]
    public void JobDescription_ListingABufferTwice_GivesOneAccess_WhereAWriteDominates_AndLeavesTheDescriptionAsGiven()
    {
        using Gpu gpu = NewGpu();
        GpuBuffer a = gpu.CreateBuffer(4096);
        GpuBuffer b = gpu.CreateBuffer(4096);
        GpuClient c = gpu.CreateClient("c");
        BufferAccess[] given = [new(a, false), new(b, false), new(a, true)];
        GpuJob job = c.Submit(Job(EngineKind.Graphics, 10 * Us, given));

        Assert.Equal([new BufferAccess(a, true), new BufferAccess(b, false)], job.Accesses);
        Assert.Equal(given, job.Description.Buffers);
        gpu.RunUntilIdle();
    }

    [Fact]
    public void JobDescription_WithNoBufferList_IsRejectedByName()
    {
        var e = Assert.Throws<ArgumentNullException>(() => new JobDescription { Buffers = null! });
        Assert.Equal("Buffers", e.ParamName);
    }

    [Fact]
    public void GpuFences_KnowTheirKind_Timeline_AndCreationTime()
    {
        using Gpu gpu = NewGpu();
        GpuBuffer bo = gpu.CreateBuffer(4096);
        GpuClient a = gpu.CreateClient("a");
        GpuClient b = gpu.CreateClient("b");
        GpuJob write = a.Submit(Job(EngineKind.Graphics, 100 * Us, new BufferAccess(bo, true)));
        gpu.RunUntil(10 * Us);
        GpuJob read = b.Submit(Job(EngineKind.Compute, 30 * Us, new BufferAccess(bo, false))); // waits for the write
        gpu.RunUntilIdle();

        Assert.Equal(GpuFenceKind.Scheduled, read.Scheduled.Kind);
        Assert.Equal(GpuFenceKind.Finished, read.Finished.Kind);
        Assert.Equal(GpuFenceKind.Hardware, read.Hardware!.Kind);
        Assert.Equal("b.compute.scheduled", read.Scheduled.Timeline);
        Assert.Equal("b.compute.finished", read.Finished.TimelineName);
        Assert.Equal(read.Engine.RingTimeline, read.Hardware.Timeline);
        Assert.Equal(10 * Us, read.SubmitTime);
        Assert.Equal(read.SubmitTime, read.Scheduled.CreationTime);
        Assert.Equal(read.SubmitTime, read.Finished.CreationTime);
        Assert.Equal(write.EndTime, read.Hardware.CreationTime); // handed to its ring when the write finished
        Assert.Equal(read.StartTime, read.Hardware.CreationTime);
    }

    [Fact]
    public void SameEngineDependency_WaitsOnlyForTheScheduledFence()
    {
        using Gpu gpu = NewGpu(c => new GpuConfig { Engines = [new("gfx", EngineKind.Graphics), new("copy0", EngineKind.Copy)] });
        GpuBuffer bo = gpu.CreateBuffer(4096);
        GpuClient a = gpu.CreateClient("a");
        GpuClient b = gpu.CreateClient("b");
        GpuJob write = a.Submit(Job(EngineKind.Graphics, 100 * Us, new BufferAccess(bo, true)));
        GpuJob read = b.Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(bo, false)));

        Assert.Contains(write.Scheduled, read.EffectiveDependencies);
        Assert.DoesNotContain(write.Finished, read.EffectiveDependencies);
        gpu.RunUntilIdle();
        Assert.True(read.StartTime >= write.EndTime, "the ring runs in order, so the read still executes after the write");
    }

    [Fact]
    public void OwnEntityFences_AreSkipped_AndDependenciesAreDedupedPerContext()
    {
        using Gpu gpu = NewGpu();
        GpuClient c = gpu.CreateClient("c");
        GpuJob first = c.Submit(Job(EngineKind.Graphics, 10 * Us));
        ulong foreignCtx = FenceContext.Allocate();
        var older = new FenceSource(foreignCtx, 1);
        var newer = new FenceSource(foreignCtx, 2);
        GpuJob second = c.Submit(new JobDescription { Engine = EngineKind.Graphics, Dependencies = [first.Finished, older, newer] });

        Assert.Equal([newer], second.EffectiveDependencies);
        older.Signal();
        newer.Signal();
        gpu.RunUntilIdle();
        Assert.Equal(1, second.Finished.Status);
    }

    [Fact]
    public void CreditLimit_HoldsJobsBackUntilTheRingHasRoom()
    {
        using Gpu gpu = NewGpu(_ => new GpuConfig { Engines = [new("gfx", EngineKind.Graphics, CreditLimit: 1), new("copy0", EngineKind.Copy)] });
        GpuClient a = gpu.CreateClient("a");
        GpuClient b = gpu.CreateClient("b");
        GpuJob j1 = a.Submit(Job(EngineKind.Graphics, 50 * Us));
        GpuJob j2 = b.Submit(Job(EngineKind.Graphics, 50 * Us));

        gpu.RunUntil(10 * Us);
        Assert.True(j1.Scheduled.IsSignaled);
        Assert.False(j2.Scheduled.IsSignaled);
        Assert.Equal(1, gpu.Engines[0].CreditsInFlight);
        gpu.RunUntilIdle();
        Assert.True(j2.Scheduled.Timestamp >= j1.Finished.Timestamp || j2.StartTime >= j1.EndTime);
    }

    [Fact]
    public void HigherPriority_IsServedFirst()
    {
        using Gpu gpu = NewGpu(_ => new GpuConfig { Engines = [new("gfx", EngineKind.Graphics, CreditLimit: 1), new("copy0", EngineKind.Copy)] });
        GpuClient low = gpu.CreateClient("low", GpuPriority.Low);
        GpuClient high = gpu.CreateClient("high", GpuPriority.High);
        GpuClient blocker = gpu.CreateClient("blocker");
        GpuJob busy = blocker.Submit(Job(EngineKind.Graphics, 50 * Us));
        GpuJob l = low.Submit(Job(EngineKind.Graphics, 10 * Us));
        GpuJob h = high.Submit(Job(EngineKind.Graphics, 10 * Us));

        gpu.RunUntilIdle();
        Assert.True(h.StartTime < l.StartTime);
        Assert.True(busy.EndTime <= h.StartTime);
    }

    /// <summary>Issue 11's watchdog failure with <c>--buffers-per-job 0</c>: under strict priorities a
    /// low-priority entity waited for as long as busier, higher ones kept the engine full. Before the fair
    /// ready queue the low job here did not start until the other clients stopped submitting (20 ms).</summary>
    [Fact]
    public void LowPriority_IsNotStarvedByBusyHigherPriorities_AndSharesFollowThePriority()
    {
        using Gpu gpu = NewGpu(_ => new GpuConfig { Engines = [new("gfx", EngineKind.Graphics, CreditLimit: 1), new("copy0", EngineKind.Copy)] });
        var clients = new[] { gpu.CreateClient("high", GpuPriority.High), gpu.CreateClient("normal"), gpu.CreateClient("low", GpuPriority.Low) };
        var done = new int[clients.Length];
        TimeSpan stopAt = 20 * Ms;
        GpuJob? firstLow = null;

        void Loop(int i)
        {
            if (gpu.Now >= stopAt)
            {
                return;
            }

            GpuJob job = clients[i].Submit(Job(EngineKind.Graphics, 10 * Us));
            firstLow ??= i == 2 ? job : null;
            job.Finished.AddCallback(_ =>
            {
                done[i]++;
                gpu.Schedule(gpu.Now, () => Loop(i)); // closed loop: resubmit at once, the engine never idles
            });
        }

        for (int i = 0; i < clients.Length; i++)
        {
            Loop(i);
        }

        gpu.RunUntilIdle();
        Assert.NotNull(firstLow);
        Assert.True(firstLow.EndTime < 1 * Ms, $"the first low-priority job ended at {firstLow.EndTime?.TotalMilliseconds:F3} ms");

        // Weights 1, 2, 4: the higher priority gets the larger share, and the low one a real share. (Not the
        // exact 4:2:1: a finished client is briefly not ready while its next job is submitted.)
        int total = done.Sum();
        string shares = string.Join(", ", done.Select(d => $"{d / (double)total:P1}"));
        Assert.True(done[0] > done[1] && done[1] > done[2], $"shares high, normal, low: {shares}");
        Assert.True(done[2] / (double)total >= 0.10, $"shares high, normal, low: {shares}");
    }

    [Fact]
    public void LoadBalancing_SpreadsAnIdleEntityOverEnginesOfItsKind()
    {
        using Gpu gpu = NewGpu();
        var clients = Enumerable.Range(0, 4).Select(i => gpu.CreateClient($"c{i}")).ToList();
        var jobs = clients.Select(c => c.Submit(Job(EngineKind.Compute, 100 * Us))).ToList();
        Assert.Equal(2, jobs.Select(j => j.Engine.Name).Distinct().Count());
        gpu.RunUntilIdle();
    }

    [Fact]
    public void Hang_IsResetByTheEngineTimeout_GuiltyETIMEDOUT_InnocentECANCELED()
    {
        using Gpu gpu = NewGpu(c => new GpuConfig { EngineTimeout = TimeSpan.FromMilliseconds(2) });
        GpuClient bad = gpu.CreateClient("bad");
        GpuClient good = gpu.CreateClient("good");
        GpuJob hang = bad.Submit(new JobDescription { Engine = EngineKind.Graphics, Hang = true });
        GpuJob behind = good.Submit(Job(EngineKind.Graphics, 10 * Us));

        gpu.RunUntil(1 * Ms);
        Assert.False(hang.Finished.IsSignaled);
        gpu.RunUntil(3 * Ms);
        Assert.Equal(-Errno.ETIMEDOUT, hang.Finished.Status);
        Assert.Equal(-Errno.ECANCELED, behind.Finished.Status);
        Assert.Equal(1, gpu.Engines[0].Resets);

        GpuJob after = good.Submit(Job(EngineKind.Graphics, 10 * Us));
        gpu.RunUntilIdle();
        Assert.Equal(1, after.Finished.Status);
    }

    [Fact]
    public void Kill_EndsQueuedJobsWithESRCH_InOrder()
    {
        using Gpu gpu = NewGpu();
        GpuClient c = gpu.CreateClient("c");
        var gate = new FenceSource(FenceContext.Allocate(), 1);
        GpuJob running = c.Submit(Job(EngineKind.Graphics, 100 * Us));
        GpuJob waiting = c.Submit(new JobDescription { Engine = EngineKind.Graphics, Dependencies = [gate] });
        GpuJob queued = c.Submit(Job(EngineKind.Graphics, 10 * Us));
        var order = new List<long>();
        foreach (GpuJob j in new[] { running, waiting, queued })
        {
            j.Finished.AddCallback(_ => order.Add(j.Id));
        }

        gpu.RunUntil(10 * Us);
        gpu.Kill(c);
        gpu.RunUntilIdle();
        Assert.Equal(1, running.Finished.Status);
        Assert.Equal(-Errno.ESRCH, waiting.Finished.Status);
        Assert.Equal(-Errno.ESRCH, queued.Finished.Status);
        Assert.Equal([running.Id, waiting.Id, queued.Id], order);
        Assert.Equal(-Errno.ESRCH, c.Submit(Job(EngineKind.Graphics, TimeSpan.FromTicks(1))).Finished.Status);
    }

    [Fact]
    public void DeviceLost_EndsEveryPendingJobWithENODEV_AndRejectsSubmission()
    {
        using Gpu gpu = NewGpu();
        GpuClient c = gpu.CreateClient("c");
        GpuJob running = c.Submit(Job(EngineKind.Graphics, 100 * Us));
        GpuJob queued = c.Submit(Job(EngineKind.Graphics, 100 * Us));
        GpuJob other = gpu.CreateClient("d").Submit(Job(EngineKind.Video, 100 * Us));
        gpu.RunUntil(10 * Us);

        gpu.LoseDevice();
        gpu.RunUntilIdle();
        Assert.All(new[] { running, queued, other }, j => Assert.Equal(-Errno.ENODEV, j.Finished.Status));
        var ex = Assert.Throws<FenceErrnoException>(() => c.Submit(Job(EngineKind.Graphics, TimeSpan.FromTicks(1)))); // was a bare InvalidOperationException
        Assert.Equal(-Errno.ENODEV, ex.Errno);
        Assert.IsAssignableFrom<InvalidOperationException>(ex);
        Assert.Contains("-ENODEV", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ForeignFenceThatNeverSignals_FailsTheJobWithETIME_AndTheQueueMovesOn()
    {
        using Gpu gpu = NewGpu(c => new GpuConfig { DependencyTimeout = TimeSpan.FromMilliseconds(5) });
        GpuClient c = gpu.CreateClient("c");
        var never = new FenceSource(FenceContext.Allocate(), 1);
        GpuJob stuck = c.Submit(new JobDescription { Engine = EngineKind.Graphics, Dependencies = [never] });
        GpuJob next = c.Submit(Job(EngineKind.Graphics, 10 * Us));

        gpu.RunUntil(4 * Ms);
        Assert.False(stuck.Finished.IsSignaled);
        gpu.RunUntilIdle();
        Assert.Equal(-Errno.ETIME, stuck.Finished.Status);
        Assert.Equal(1, next.Finished.Status);
    }

    [Fact]
    public void MemoryPressure_EvictsAndMovesBack_WithinDeviceMemory_AndNoLeak()
    {
        using Gpu gpu = NewGpu(c => new GpuConfig { DeviceMemoryBytes = 3 * 1024 * 1024 });
        var buffers = Enumerable.Range(0, 6).Select(i => gpu.CreateBuffer(1024 * 1024, $"bo{i}")).ToArray();
        GpuClient c = gpu.CreateClient("c");
        var jobs = new List<GpuJob>();
        for (int i = 0; i < 30; i++)
        {
            jobs.Add(c.Submit(Job(EngineKind.Compute, 20 * Us, new BufferAccess(buffers[i % 6], i % 2 == 0), new BufferAccess(buffers[(i + 1) % 6], false))));
        }

        gpu.RunUntilIdle();
        Assert.All(jobs, j => Assert.Equal(1, j.Finished.Status));
        Assert.True(gpu.PeakDeviceMemoryUsed <= 3 * 1024 * 1024);
        Assert.True(buffers.Count(b => b.Placement == BufferPlacement.System) >= 3, "some buffers were evicted");
        Assert.Equal(0, gpu.LeakCount);
    }

    [Fact]
    public void ExplicitSyncClient_AddsBookkeep_SkipsImplicitFences_ButWaitsForKernelFences()
    {
        using Gpu gpu = NewGpu();
        GpuBuffer bo = gpu.CreateBuffer(8 * 1024 * 1024);
        GpuClient implicitClient = gpu.CreateClient("implicit");
        GpuClient vulkan = gpu.CreateClient("vk", explicitSync: true);
        GpuJob write = implicitClient.Submit(Job(EngineKind.Graphics, 500 * Us, new BufferAccess(bo, true)));
        GpuJob mine = vulkan.Submit(Job(EngineKind.Compute, 10 * Us, new BufferAccess(bo, true)));

        Assert.Contains(bo.Reservation.Snapshot.ToArray(), e => e.Fence == mine.Finished && e.Usage == FenceUsage.Bookkeep);
        Assert.DoesNotContain(write.Finished, mine.EffectiveDependencies);
        Assert.Contains(bo.StorageFence!, mine.EffectiveDependencies);
        Fence clear = bo.StorageFence!;
        gpu.RunUntilIdle();
        Assert.True(mine.StartTime >= ((GpuFence)clear).Job!.EndTime, "the clear's KERNEL fence is never skipped");
        Assert.Equal(0, gpu.LeakCount);
    }

    [Fact]
    public void LeakDetector_Fires_WhenAKernelFenceIsDeliberatelySkipped()
    {
        using Gpu gpu = NewGpu(c => new GpuConfig { InjectSkipKernelFences = true });
        GpuBuffer bo = gpu.CreateBuffer(8 * 1024 * 1024); // its clear takes a while on the copy engine
        GpuClient vulkan = gpu.CreateClient("vk", explicitSync: true);
        var leaks = new List<GpuEvent>();
        using IDisposable sub = gpu.Subscribe(e =>
        {
            if (e.Kind == GpuEventKind.LeakDetected)
            {
                leaks.Add(e);
            }
        });

        vulkan.Submit(Job(EngineKind.Compute, 10 * Us, new BufferAccess(bo, false)));
        gpu.RunUntilIdle();
        Assert.Equal(1, gpu.LeakCount);
        Assert.Same(bo, Assert.Single(leaks).Buffer);
    }

    [Fact]
    public void CpuAccess_WaitsForTheWriterAndTheMove()
    {
        using Gpu gpu = NewGpu();
        GpuBuffer bo = gpu.CreateBuffer(1024 * 1024);
        GpuClient c = gpu.CreateClient("c");
        GpuJob write = c.Submit(Job(EngineKind.Graphics, 100 * Us, new BufferAccess(bo, true)));
        TimeSpan? accessedAt = null;
        gpu.CpuAccess(bo, write: false, _ => accessedAt = gpu.Now);

        gpu.RunUntilIdle();
        Assert.True(accessedAt >= write.EndTime);
        Assert.Equal(0, gpu.LeakCount);
    }

    [Fact]
    public void CompletedJobs_LetGoOfTheirDependencies_SoMemoryStaysBounded()
    {
        using Gpu gpu = NewGpu();
        GpuBuffer bo = gpu.CreateBuffer(4096);
        GpuClient a = gpu.CreateClient("a");
        GpuClient b = gpu.CreateClient("b");
        GpuJob first = a.Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(bo, true)));
        var weak = new WeakReference(first);
        GpuJob second = b.Submit(Job(EngineKind.Compute, 10 * Us, new BufferAccess(bo, true)));
        Assert.NotEmpty(second.EffectiveDependencies);
        first = null!;

        gpu.RunUntilIdle();
        Assert.Empty(second.EffectiveDependencies);
        Assert.Empty(second.SubmittedDependencies);

        // Later work moves the entity's last fence on and prunes the buffer's signalled entries.
        a.Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(bo, true)));
        gpu.RunUntilIdle();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Assert.False(weak.IsAlive, "a finished job is not kept alive by the jobs that depended on it");
        GC.KeepAlive(second);
    }

    [Fact]
    public void AJobWhoseDependenciesHaveSignalled_IsNotKeptAliveUntilItsDependencyTimeoutComes()
    {
        // Every wait arms the dependency timeout (100 ms), and its check stays pending until then. Nothing of
        // that timeout may hold the job once the wait has ended: at the stress runner's rate, 100 ms of virtual
        // time is thousands of finished jobs, with their fences and lists, kept past every young collection.
        using Gpu gpu = NewGpu();
        GpuClient c = gpu.CreateClient("c");
        var external = new FenceSource(FenceContext.Allocate(), 1);
        WeakReference weak = SubmitJobWaitingOn(c, external);
        external.Signal();
        gpu.RunFor(TimeSpan.FromMilliseconds(1)); // the job runs and completes
        c.Submit(Job(EngineKind.Graphics, 10 * Us)); // the entity's last fence moves on
        gpu.RunFor(TimeSpan.FromMilliseconds(1));
        Assert.Equal(2, gpu.JobsCompleted);
        Assert.True(gpu.PendingEvents > 0, "the dependency timeout's check is still pending: the window this test is about");

        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.False(weak.IsAlive, "a job whose wait ended is not kept alive by the wait's pending timeout");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference SubmitJobWaitingOn(GpuClient client, Fence dependency)
    {
        GpuJob job = client.Submit(new JobDescription { Engine = EngineKind.Graphics, Duration = 10 * Us, Dependencies = [dependency] });
        Assert.Equal(GpuJobState.Queued, job.State);
        return new WeakReference(job);
    }

    [Theory]
    [InlineData(8)] // the most the submission keeps on the stack
    [InlineData(12)] // more: a pooled array
    public void AJobOfManyBuffers_WaitsForTheEarlierWriterOfEveryOne(int count)
    {
        using Gpu gpu = NewGpu();
        GpuBuffer[] buffers = [.. Enumerable.Range(0, count).Select(_ => gpu.CreateBuffer(4096))];
        GpuJob first = gpu.CreateClient("a").Submit(Job(EngineKind.Graphics, 10 * Us, [.. buffers.Select(b => new BufferAccess(b, true))]));
        GpuJob second = gpu.CreateClient("b").Submit(Job(EngineKind.Compute, 10 * Us, [.. buffers.Select(b => new BufferAccess(b, false))]));
        Assert.Equal(count, second.SubmittedDependencies.Count(d => ReferenceEquals(d, first.Finished))); // one per buffer, read with the add
        Assert.All(buffers, b => Assert.Contains(second.Finished, b.Reservation.GetFences(FenceUsage.Read)));

        gpu.RunUntilIdle();
        Assert.True(second.StartTime >= first.EndTime);
    }

    [Fact]
    public void ExplicitDependencies_FromSyncFilesAndSyncObjPoints_AndOutSyncObjs()
    {
        using Gpu gpu = NewGpu();
        GpuClient producer = gpu.CreateClient("producer");
        GpuClient consumer = gpu.CreateClient("consumer");
        var timeline = new SyncObj();
        var binary = new SyncObj();
        GpuJob first = producer.Submit(new JobDescription
        {
            Engine = EngineKind.Graphics, Duration = 100 * Us, SyncObjSignals = [new(timeline, 1), new(binary, 0)],
        });
        var external = new FenceSource(FenceContext.Allocate(), 1);
        GpuJob second = consumer.Submit(new JobDescription
        {
            Engine = EngineKind.Compute, Duration = 10 * Us,
            SyncObjWaits = [new(timeline, 1)], SyncFiles = [new SyncFile(external)],
        });

        Assert.Same(first.Finished, binary.Fence);
        Assert.Contains(external, second.EffectiveDependencies);
        external.Signal();
        gpu.RunUntilIdle();
        Assert.True(second.StartTime >= first.EndTime);
        Assert.Equal(1ul, timeline.QueryPoint());
    }

    [Fact]
    public void WaitOnAFutureSyncObjPoint_IsEINVAL_AndNothingIsSubmitted()
    {
        using Gpu gpu = NewGpu();
        GpuBuffer bo = gpu.CreateBuffer(4096);
        var timeline = new SyncObj();
        var ex = Assert.Throws<FenceErrnoException>(() => gpu.CreateClient("c").Submit(new JobDescription
        {
            Buffers = [new(bo, true)], SyncObjWaits = [new(timeline, 5)],
        }));
        Assert.Equal(-Errno.EINVAL, ex.Errno);
        Assert.Equal(0, gpu.JobsSubmitted);
        Assert.Equal(0, bo.Reservation.Count);
    }

    [Fact]
    public void BadConfiguration_IsRejectedWithTheRule()
    {
        var ex = Assert.Throws<ArgumentException>(() => new Gpu(new GpuConfig { Engines = [new("gfx", EngineKind.Graphics)] }));
        Assert.Contains("copy engine", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new Gpu(new GpuConfig { Engines = [new("x", EngineKind.Copy), new("x", EngineKind.Copy)] }));
        Assert.Throws<ArgumentException>(() => new Gpu(new GpuConfig { DeviceMemoryBytes = 0 }));
        using Gpu gpu = NewGpu();
        Assert.Throws<ArgumentOutOfRangeException>(() => gpu.CreateBuffer(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => gpu.CreateClient("c").Submit(new JobDescription { Duration = TimeSpan.FromTicks(-1) }));
        Assert.Equal(0, gpu.JobsSubmitted);
    }

    [Fact]
    public void SameSeed_SameDigest_DifferentSeed_DifferentDigest()
    {
        static ulong Run(int seed)
        {
            using Gpu gpu = new(new GpuConfig { DeviceMemoryBytes = 4L << 20 });
            var rng = new Random(seed);
            var buffers = Enumerable.Range(0, 8).Select(_ => gpu.CreateBuffer(1L << 20)).ToArray();
            var clients = Enumerable.Range(0, 4).Select(i => gpu.CreateClient($"c{i}", explicitSync: i == 3)).ToArray();
            for (int i = 0; i < 400; i++)
            {
                GpuClient c = clients[rng.Next(clients.Length)];
                var kind = (EngineKind)rng.Next(4);
                var accesses = Enumerable.Range(0, rng.Next(1, 4)).Select(_ => new BufferAccess(buffers[rng.Next(buffers.Length)], rng.Next(2) == 0)).ToArray();
                TimeSpan at = i * 5 * Us;
                gpu.Schedule(at, () => c.Submit(new JobDescription { Engine = kind, Duration = rng.Next(1, 50) * Us, Buffers = accesses }));
            }

            gpu.RunUntilIdle();
            Assert.Equal(0, gpu.LeakCount);
            return gpu.Digest;
        }

        Assert.Equal(Run(42), Run(42));
        Assert.NotEqual(Run(42), Run(43));
    }

    [Fact]
    public void ThreadsMode_CompletesJobsSubmittedFromSeveralThreads()
    {
        using var gpu = new Gpu(new GpuConfig { Mode = GpuTimeMode.Threads, WorkerThreads = 2, DependencyTimeout = TimeSpan.FromSeconds(30) });
        var buffers = Enumerable.Range(0, 8).Select(_ => gpu.CreateBuffer(4096)).ToArray();
        var jobs = new System.Collections.Concurrent.ConcurrentBag<GpuJob>();
        var threads = Enumerable.Range(0, 3).Select(t => new Thread(() =>
        {
            GpuClient c = gpu.CreateClient($"t{t}");
            var rng = new Random(t);
            for (int i = 0; i < 500; i++)
            {
                jobs.Add(c.Submit(Job((EngineKind)rng.Next(4), TimeSpan.Zero, new BufferAccess(buffers[rng.Next(8)], true), new BufferAccess(buffers[rng.Next(8)], false))));
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());

        foreach (GpuJob j in jobs)
        {
            Assert.True(j.Finished.Wait(TimeSpan.FromSeconds(30)), $"{j} never finished");
            Assert.Equal(1, j.Finished.Status);
        }

        Assert.Equal(0, gpu.LeakCount);
    }
    /// <summary>Threads mode reads the real clock: each step of a job reads it once, so the step's fence and its
    /// event carry one time (before, each read the clock again, and the times of one step differed by the
    /// reads between them).</summary>
    [Fact]
    public void ThreadsMode_EachStepOfAJob_StampsItsFenceAndItsEventWithOneReadingOfTheClock()
    {
        using var gpu = new Gpu(new GpuConfig { Mode = GpuTimeMode.Threads, WorkerThreads = 2, DependencyTimeout = TimeSpan.FromSeconds(30) });
        var events = new System.Collections.Concurrent.ConcurrentQueue<GpuEvent>();
        using IDisposable subscription = gpu.Subscribe(events.Enqueue);
        GpuBuffer buffer = gpu.CreateBuffer(4096);
        GpuClient c = gpu.CreateClient("c");
        var jobs = Enumerable.Range(0, 200).Select(i => c.Submit(Job(EngineKind.Graphics, TimeSpan.Zero, new BufferAccess(buffer, i % 2 == 0)))).ToList();
        foreach (GpuJob j in jobs)
        {
            Assert.True(j.Finished.Wait(TimeSpan.FromSeconds(30)), $"{j} never finished");
        }

        Assert.True(gpu.WaitForIdle(TimeSpan.FromSeconds(30)));
        var byJob = events.Where(e => e.Job is { IsKernelJob: false }).ToLookup(e => e.Job!);
        foreach (GpuJob j in jobs)
        {
            GpuEvent submitted = Assert.Single(byJob[j], e => e.Kind == GpuEventKind.JobSubmitted);
            GpuEvent started = Assert.Single(byJob[j], e => e.Kind == GpuEventKind.JobStarted);
            GpuEvent completed = Assert.Single(byJob[j], e => e.Kind == GpuEventKind.JobCompleted);
            Assert.Equal(j.SubmitTime, submitted.Time);
            Assert.Equal(j.Hardware!.CreationTime, started.Time);
            Assert.Equal(j.Scheduled.Timestamp, started.Time);
            Assert.Equal(j.Hardware.Timestamp, completed.Time);
            Assert.Equal(j.Finished.Timestamp, completed.Time);
            Assert.True(submitted.Time <= started.Time && started.Time <= completed.Time, $"{j}: {submitted.Time} {started.Time} {completed.Time}");
        }
    }
}
