using FenceCore.VirtualGpu;

namespace FenceCore.Tests.VirtualGpu;

/// <summary>Issue 15: buffers shared between devices (the seed thread's imported dma-buf): export and import,
/// pinned and dynamic importers, peer-to-peer or bounced placement, cross-device dependencies, faults, the
/// importer that skips KERNEL fences, and one event loop for all devices.</summary>
public class MultiDeviceTests
{
    private static readonly TimeSpan Us = TimeSpan.FromMicroseconds(1);
    private static readonly TimeSpan Ms = TimeSpan.FromMilliseconds(1);
    private const long MiB = 1024 * 1024;

    private static (Gpu A, Gpu B) TwoDevices(Func<GpuConfig, GpuConfig>? a = null, Func<GpuConfig, GpuConfig>? b = null)
    {
        var gpuA = new Gpu(a?.Invoke(new GpuConfig { Name = "gpuA" }) ?? new GpuConfig { Name = "gpuA" });
        var gpuB = new Gpu(b?.Invoke(new GpuConfig { Name = "gpuB" }) ?? new GpuConfig { Name = "gpuB" }, shareTimeWith: gpuA);
        return (gpuA, gpuB);
    }

    /// <summary>A 1 MiB buffer of <paramref name="a"/>'s, imported (dynamic) into <paramref name="b"/>.</summary>
    private static (GpuBuffer Shared, GpuBuffer Imported) ShareOne(Gpu a, Gpu b)
    {
        GpuBuffer shared = a.CreateBuffer(MiB, "shared");
        return (shared, b.Import(a.Export(shared)));
    }

    /// <summary>A writer on A that hangs (until A's engine timeout resets it).</summary>
    private static GpuJob HungWriter(Gpu a, GpuBuffer shared) =>
        a.CreateClient("app").Submit(new JobDescription { Engine = EngineKind.Graphics, Duration = 10 * Us, Hang = true, Buffers = [new BufferAccess(shared, true)] });

    private static JobDescription Job(EngineKind engine, TimeSpan duration, params BufferAccess[] buffers) =>
        new() { Engine = engine, Duration = duration, Buffers = buffers };

    private static List<GpuEvent> Record(Gpu gpu, GpuEventKind kind)
    {
        var events = new List<GpuEvent>();
        gpu.Subscribe(e =>
        {
            if (e.Kind == kind)
            {
                events.Add(e);
            }
        });
        return events;
    }

    [Fact]
    public void ImportSharesTheReservation_AndImplicitSyncOrdersAWriterOnOneDeviceBeforeAReaderOnTheOther()
    {
        (Gpu a, Gpu b) = TwoDevices();
        using (a)
        using (b)
        {
            GpuBuffer bo = a.CreateBuffer(MiB, "frame");
            GpuBuffer imported = b.Import(a.Export(bo));
            Assert.True(imported.IsImported);
            Assert.Same(bo, imported.Origin);
            Assert.Same(bo.Reservation, imported.Reservation);
            Assert.Same(b, imported.Device);

            GpuJob render = a.CreateClient("app").Submit(Job(EngineKind.Graphics, 200 * Us, new BufferAccess(bo, true)));
            GpuJob compose = b.CreateClient("compositor").Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(imported, false)));
            Assert.Contains(render.Finished, compose.EffectiveDependencies); // device A's fence, device B's dependency

            a.RunUntilIdle(); // one loop runs both devices
            Assert.Equal(1, compose.Finished.Status);
            Assert.True(compose.StartTime >= render.EndTime, "the reader on B started before the writer on A finished");
            Assert.NotEqual(render.Finished.Context, compose.Finished.Context);
            Assert.Equal(0, a.LeakCount + b.LeakCount);
        }
    }

    [Fact]
    public void Export_IsOneDmaBufPerBuffer_ImportingYourOwnGivesTheBuffer_AndBadUsesNameTheRule()
    {
        (Gpu a, Gpu b) = TwoDevices();
        using (a)
        using (b)
        {
            GpuBuffer bo = a.CreateBuffer(MiB, "bo");
            DmaBuf dmaBuf = a.Export(bo);
            Assert.Same(dmaBuf, a.Export(bo));
            Assert.Same(bo, a.Import(dmaBuf));
            GpuBuffer imported = b.Import(dmaBuf);
            Assert.Same(dmaBuf, b.Export(imported)); // re-exporting an import exports its origin

            var foreign = Assert.Throws<ArgumentException>(() => b.Import(new DmaBuf(name: "vgem")));
            Assert.Contains("not exported by a virtual GPU", foreign.Message, StringComparison.Ordinal);
            var notMine = Assert.Throws<ArgumentException>(() => b.Export(bo));
            Assert.Contains("belongs to gpuA", notMine.Message, StringComparison.Ordinal);
            var wrongDevice = Assert.Throws<ArgumentException>(() => b.CreateClient("c").Submit(Job(EngineKind.Graphics, Us, new BufferAccess(bo, false))));
            Assert.Contains("import the dma-buf into gpuB", wrongDevice.Message, StringComparison.Ordinal);
            Assert.Throws<ArgumentOutOfRangeException>(() => b.Import(dmaBuf, (ImportMode)7));

            b.Detach(imported);
            Assert.False(imported.IsMapped);
            var detached = Assert.Throws<ArgumentException>(() => b.CreateClient("c2").Submit(Job(EngineKind.Graphics, Us, new BufferAccess(imported, false))));
            Assert.Contains("detached", detached.Message, StringComparison.Ordinal);
            Assert.Throws<ArgumentException>(() => b.Detach(imported));
            Assert.Throws<ArgumentException>(() => a.Detach(bo));

            var mismatch = Assert.Throws<ArgumentException>(() => new Gpu(new GpuConfig { Name = "t", Mode = GpuTimeMode.Threads }, shareTimeWith: a));
            Assert.Contains("cannot share the event loop", mismatch.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void APinnedImport_IsNeverMovedUnderPressure_EvictionPicksAnotherBuffer()
    {
        (Gpu a, Gpu b) = TwoDevices(a: c => new GpuConfig { Name = "gpuA", DeviceMemoryBytes = 3 * MiB });
        using (a)
        using (b)
        {
            GpuBuffer shared = a.CreateBuffer(MiB, "scanout");
            GpuBuffer pinned = b.Import(a.Export(shared), ImportMode.Pinned);
            Assert.True(pinned.IsMapped); // a static importer is mapped from the attach on
            Fence placement = shared.StorageFence!;
            Assert.Equal(BufferPlacement.Device, shared.Placement);

            var others = Enumerable.Range(0, 5).Select(i => a.CreateBuffer(MiB, $"bo{i}")).ToArray();
            GpuClient app = a.CreateClient("app");
            var jobs = Enumerable.Range(0, 20).Select(i => app.Submit(Job(EngineKind.Compute, 10 * Us, new BufferAccess(others[i % 5], true)))).ToList();
            a.RunUntilIdle();

            Assert.All(jobs, j => Assert.Equal(1, j.Finished.Status));
            Assert.Same(placement, shared.StorageFence); // never moved
            Assert.Equal(BufferPlacement.Device, shared.Placement);
            Assert.True(others.Count(o => o.Placement == BufferPlacement.System) >= 3, "the others were evicted instead");
            Assert.Equal(0, pinned.MoveNotifications);
        }
    }

    [Fact]
    public void PinnedImportsThatHoldAllOfDeviceMemory_MakeThePlacementFailWithEnomem_AndLeaveStateAsItWas()
    {
        (Gpu a, Gpu b) = TwoDevices(a: c => new GpuConfig { Name = "gpuA", DeviceMemoryBytes = 2 * MiB });
        using (a)
        using (b)
        {
            GpuBuffer s0 = a.CreateBuffer(MiB, "s0"), s1 = a.CreateBuffer(MiB, "s1"), other = a.CreateBuffer(MiB, "other");
            GpuBuffer p0 = b.Import(a.Export(s0), ImportMode.Pinned);
            b.Import(a.Export(s1), ImportMode.Pinned);
            GpuClient app = a.CreateClient("app");
            long submitted = a.JobsSubmitted; // the two pinned placements' clears

            var ex = Assert.Throws<FenceErrnoException>(() => app.Submit(Job(EngineKind.Compute, 10 * Us, new BufferAccess(other, true))));
            Assert.Equal(-Errno.ENOMEM, ex.Errno);
            Assert.Contains("pinned imports", ex.Message, StringComparison.Ordinal);
            Assert.Equal(BufferPlacement.System, other.Placement); // nothing changed
            Assert.Equal(submitted, a.JobsSubmitted);

            var third = Assert.Throws<FenceErrnoException>(() => b.Import(a.Export(other), ImportMode.Pinned));
            Assert.Equal(-Errno.ENOMEM, third.Errno);

            b.Detach(p0); // the pin goes: the exporter may evict s0 now
            GpuJob job = app.Submit(Job(EngineKind.Compute, 10 * Us, new BufferAccess(other, true)));
            a.RunUntilIdle();
            Assert.Equal(1, job.Finished.Status);
            Assert.Equal(BufferPlacement.System, s0.Placement);
        }
    }

    [Fact]
    public void ADynamicImport_IsToldOfEachMove_AndItsNextJobWaitsForTheMovesKernelFence()
    {
        (Gpu a, Gpu b) = TwoDevices(a: c => new GpuConfig { Name = "gpuA", DeviceMemoryBytes = 2 * MiB });
        using (a)
        using (b)
        {
            GpuBuffer shared = a.CreateBuffer(MiB, "shared");
            GpuBuffer imported = b.Import(a.Export(shared)); // dynamic, peer-to-peer
            List<GpuEvent> notified = Record(b, GpuEventKind.MoveNotified);
            GpuClient app = a.CreateClient("app");
            GpuClient compositor = b.CreateClient("compositor");
            b.RunUntilIdle();

            compositor.Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(imported, false)));
            a.RunUntilIdle();
            long before = imported.MoveNotifications; // the first placement (a clear) is a move too

            // Pressure on A evicts the shared buffer (two others take all of device memory).
            GpuBuffer x = a.CreateBuffer(MiB, "x"), y = a.CreateBuffer(MiB, "y");
            app.Submit(Job(EngineKind.Compute, 10 * Us, new BufferAccess(x, true), new BufferAccess(y, true)));
            a.RunUntilIdle();
            Assert.Equal(BufferPlacement.System, shared.Placement);
            Assert.True(imported.MoveNotifications > before, "the eviction did not notify the importer");
            Assert.Contains(notified, e => ReferenceEquals(e.Buffer, imported));
            Assert.False(imported.IsMapped, "the importer kept a mapping the exporter's move invalidated");

            // The importer's next job maps it again: the exporter moves it back in, and the job waits for that.
            GpuJob next = compositor.Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(imported, false)));
            Assert.True(imported.IsMapped);
            var move = (GpuFence)shared.StorageFence!;
            Assert.Equal(FenceUsage.Kernel, shared.Reservation.Snapshot.ToArray().Single(e => ReferenceEquals(e.Fence, move)).Usage);
            a.RunUntilIdle();
            Assert.True(next.StartTime >= move.Job!.EndTime, "the importer's job ran before the exporter's move finished");
            Assert.Equal(0, a.LeakCount + b.LeakCount);
        }
    }

    [Fact]
    public void WithoutPeerToPeer_TheBufferBouncesToSystemMemory_AndTheCopyIsFenced()
    {
        // Both devices must allow peer-to-peer: the importer here does not.
        AssertTheImportBouncesThroughSystemMemory(TwoDevices(b: c => new GpuConfig { Name = "gpuB", PeerToPeer = false }));

        (Gpu c, Gpu d) = TwoDevices();
        using (c)
        using (d)
        {
            GpuBuffer shared = c.CreateBuffer(MiB, "shared");
            c.CreateClient("app").Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(shared, true)));
            c.RunUntilIdle();
            GpuBuffer imported = d.Import(c.Export(shared));
            Assert.True(imported.PeerToPeer);
            d.CreateClient("compositor").Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(imported, false)));
            c.RunUntilIdle();
            Assert.Equal(BufferPlacement.Device, shared.Placement); // read in place, peer to peer
        }
    }

    /// <summary>Each device's first client submits its first job on its first graphics engine ("gfx", index 0,
    /// seqno 1); B's depends on A's, which runs 100 us. Alike in everything but device, context and engine object.</summary>
    private static (Gpu A, Gpu B, GpuJob OnA, GpuJob OnB) TwinJobsOnTwoDevices()
    {
        (Gpu a, Gpu b) = TwoDevices();
        GpuJob onA = a.CreateClient("a").Submit(Job(EngineKind.Graphics, 100 * Us));
        GpuJob onB = b.CreateClient("b").Submit(new JobDescription { Engine = EngineKind.Graphics, Duration = 10 * Us, Dependencies = [onA.Finished] });
        return (a, b, onA, onB);
    }

    [Fact]
    public void CrossDeviceDependencies_NeverTakeTheSameEngineShortcut()
    {
        (Gpu a, Gpu b, GpuJob onA, GpuJob onB) = TwinJobsOnTwoDevices();
        using (a)
        using (b)
        {
            // Both devices' first engine is "gfx", index 0: the same-engine rule must compare engines, not names.
            Assert.Equal(onA.Engine.Index, onB.Engine.Index);
            Assert.Contains(onA.Finished, onB.EffectiveDependencies);
            Assert.DoesNotContain(onA.Scheduled, onB.EffectiveDependencies);
            a.RunUntilIdle();
            Assert.True(onB.StartTime >= onA.EndTime);
        }
    }

    /// <summary>Were contexts shared between devices, or the same-context rule to compare seqnos and engine
    /// kinds, B would drop A's fence as one of its own entity's (already ordered) and run at once.</summary>
    [Fact]
    public void CrossDeviceDependencies_NeverTakeTheSameContextShortcut_AndReallyWait()
    {
        (Gpu a, Gpu b, GpuJob onA, GpuJob onB) = TwinJobsOnTwoDevices();
        using (a)
        using (b)
        {
            Assert.Equal(onA.Finished.Seqno, onB.Finished.Seqno);
            Assert.Equal(onA.Engine.Kind, onB.Engine.Kind);
            Assert.Equal(onA.Engine.Name, onB.Engine.Name);
            Assert.NotEqual(onA.Finished.Context, onB.Finished.Context);
            Assert.NotEqual(onA.Scheduled.Context, onB.Scheduled.Context);
            Assert.Equal([onA.Finished], onB.EffectiveDependencies);

            a.RunUntil(50 * Us);
            Assert.Null(onB.StartTime); // still waiting for A
            a.RunUntilIdle();
            Assert.True(onB.StartTime >= onA.EndTime, "B's job ran before the fence of A it depends on");
        }
    }

    [Fact]
    public void LosingTheExporter_SignalsTheImportersDependenciesWithEnodev_AndNewImportsFail()
    {
        (Gpu a, Gpu b) = TwoDevices();
        using (a)
        using (b)
        {
            GpuBuffer shared = a.CreateBuffer(MiB, "shared");
            DmaBuf dmaBuf = a.Export(shared);
            GpuBuffer imported = b.Import(dmaBuf);
            GpuJob render = a.CreateClient("app").Submit(Job(EngineKind.Graphics, 10 * Ms, new BufferAccess(shared, true)));
            GpuJob compose = b.CreateClient("compositor").Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(imported, false)));
            a.RunFor(100 * Us);

            a.LoseDevice();
            Assert.Equal(-Errno.ENODEV, render.Finished.Error);
            a.RunUntilIdle();
            Assert.True(compose.Finished.IsSignaled, "B's job waited forever on the lost device");
            Assert.True(compose.EndTime < 10 * Ms, "B waited for the lost job's full duration");

            Assert.Equal(-Errno.ENODEV, Assert.Throws<FenceErrnoException>(() => b.Import(dmaBuf)).Errno);
            Assert.Equal(-Errno.ENODEV, Assert.Throws<FenceErrnoException>(() => a.Export(shared)).Errno);
            GpuJob after = b.CreateClient("late").Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(imported, false)));
            a.RunUntilIdle();
            Assert.Equal(1, after.Finished.Status); // an existing mapping keeps working (contents undefined)
        }
    }

    /// <summary>The importer's side of device loss: B's job depends on A's writer and on A's pending bounce
    /// (a KERNEL move for B, which has no peer-to-peer); losing A ends both with -ENODEV, and B's job, whose
    /// scheduler passes no dependency error on (drm_sched_job_dependency, drm_sched_entity_pop_job), runs
    /// and signals without error once they have signalled.</summary>
    [Fact]
    public void LosingTheExporter_EndsTheFencesTheImportersJobWaitsFor_AWriterAndAPendingBounce_WithEnodev()
    {
        (Gpu a, Gpu b) = TwoDevices(b: c => new GpuConfig { Name = "gpuB", PeerToPeer = false });
        using (a)
        using (b)
        {
            (GpuBuffer shared, GpuBuffer imported) = ShareOne(a, b);
            GpuJob render = a.CreateClient("app").Submit(Job(EngineKind.Graphics, 10 * Ms, new BufferAccess(shared, true)));
            GpuJob compose = b.CreateClient("compositor").Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(imported, false)));
            var bounce = (GpuFence)shared.StorageFence!;
            Assert.Contains("bounce", bounce.Job!.Description.Label, StringComparison.Ordinal);
            Fence[] fromA = [.. compose.EffectiveDependencies.Where(f => f is GpuFence { Job: { } j } && ReferenceEquals(j.Engine.Owner, a))];
            Assert.Contains(render.Finished, fromA);
            Assert.Contains(bounce, fromA);
            a.RunFor(100 * Us);
            Assert.False(bounce.IsSignaled, "the bounce was not pending when the exporter was lost");

            TimeSpan lostAt = a.Now;
            a.LoseDevice();
            a.RunUntilIdle();

            Assert.All(fromA, f => Assert.Equal(-Errno.ENODEV, f.Error));
            Assert.Equal(-Errno.ENODEV, bounce.Error);
            Assert.Equal(1, compose.Finished.Status); // ran: the scheduler leaves the dependencies' errors to the submitter
            Assert.Equal(0, compose.Finished.Error);
            Assert.True(compose.StartTime >= lostAt && compose.EndTime < 10 * Ms, "B's job did not run as soon as the lost device's fences signalled");
        }
    }

    [Fact]
    public void AHangOnOneDevice_ReleasesTheOtherAtItsReset_WhenTheResetComesBeforeTheDependencyTimeout()
    {
        (Gpu a, Gpu b) = TwoDevices();
        using (a)
        using (b)
        {
            Assert.True(a.Config.EngineTimeout < b.Config.DependencyTimeout);
            (GpuBuffer shared, GpuBuffer imported) = ShareOne(a, b);
            GpuJob hang = HungWriter(a, shared);
            GpuJob compose = b.CreateClient("compositor").Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(imported, false)));
            a.RunUntilIdle();

            Assert.Equal(-Errno.ETIMEDOUT, hang.Finished.Error);
            Assert.Equal(1, compose.Finished.Status); // released by A's reset, it ran
            Assert.True(compose.StartTime >= hang.Finished.Timestamp, "B's reader ran before A's hung writer was reset");
            Assert.True(compose.StartTime < b.Config.DependencyTimeout, "B waited for its dependency timeout although A's reset came first");
        }
    }

    /// <summary>A's engine timeout (500 ms) is longer than B's dependency timeout (30 ms): B's job that waits
    /// for A's hung writer is released by its own timeout, with -ETIME and without running, long before A
    /// resets; B's other work, on the same engine and another, runs at once.</summary>
    [Fact]
    public void AHangOnOneDevice_ReleasesTheOthersJobAtItsDependencyTimeoutWithEtime_AndItsOtherWorkIsNotDelayed()
    {
        TimeSpan dependencyTimeout = 30 * Ms;
        (Gpu a, Gpu b) = TwoDevices(
            a: c => new GpuConfig { Name = "gpuA", EngineTimeout = 500 * Ms },
            b: c => new GpuConfig { Name = "gpuB", DependencyTimeout = dependencyTimeout });
        using (a)
        using (b)
        {
            (GpuBuffer shared, GpuBuffer imported) = ShareOne(a, b);
            List<GpuEvent> timeouts = Record(b, GpuEventKind.DependencyTimeout);
            GpuJob hang = HungWriter(a, shared);
            a.RunFor(1 * Ms);
            GpuJob compose = b.CreateClient("compositor").Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(imported, false)));
            GpuJob sameEngine = b.CreateClient("hud").Submit(Job(EngineKind.Graphics, 10 * Us));
            GpuJob otherEngine = b.CreateClient("other").Submit(Job(EngineKind.Compute, 10 * Us));

            a.RunUntil(compose.SubmitTime + dependencyTimeout - Us);
            Assert.False(compose.Finished.IsSignaled, "B's job was released before its dependency timeout");
            Assert.True(sameEngine.Finished.IsSignaled && otherEngine.Finished.IsSignaled, "B's independent work waited for A's hang");
            Assert.Equal(sameEngine.SubmitTime + (10 * Us), sameEngine.EndTime);
            Assert.Equal(otherEngine.SubmitTime + (10 * Us), otherEngine.EndTime);

            a.RunUntil(compose.SubmitTime + dependencyTimeout);
            Assert.Equal(-Errno.ETIME, compose.Finished.Error);
            Assert.Equal(compose.SubmitTime + dependencyTimeout, compose.Finished.Timestamp);
            Assert.Null(compose.StartTime); // it never ran
            Assert.Same(compose, Assert.Single(timeouts).Job);
            Assert.False(hang.Finished.IsSignaled, "A reset before B's dependency timeout: the scenario does not test the timeout");

            a.RunUntilIdle();
            Assert.Equal(-Errno.ETIMEDOUT, hang.Finished.Error);
        }
    }

    private static (long Leaks, List<GpuEvent> Events) RunTheSeedScenario(bool importerSkipsKernelFences)
    {
        (Gpu a, Gpu b) = TwoDevices(
            a: c => new GpuConfig { Name = "gpuA", DeviceMemoryBytes = 2 * MiB },
            b: c => new GpuConfig { Name = "gpuB", InjectImporterSkipsKernelFences = importerSkipsKernelFences });
        using (a)
        using (b)
        {
            GpuBuffer shared = a.CreateBuffer(MiB, "shared");
            GpuBuffer imported = b.Import(a.Export(shared));
            List<GpuEvent> leaks = Record(b, GpuEventKind.LeakDetected);
            GpuClient app = a.CreateClient("app");
            GpuClient compositor = b.CreateClient("compositor");
            app.Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(shared, true)));
            a.RunUntilIdle();
            GpuBuffer x = a.CreateBuffer(MiB, "x"), y = a.CreateBuffer(MiB, "y");
            app.Submit(Job(EngineKind.Compute, 10 * Us, new BufferAccess(x, true), new BufferAccess(y, true))); // evicts the shared buffer
            a.RunUntilIdle();

            // The importer reads while the exporter moves the buffer back in.
            compositor.Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(imported, false)));
            a.RunUntilIdle();
            return (a.LeakCount + b.LeakCount, leaks);
        }
    }

    [Fact]
    public void TheSeedBug_AnImporterThatIgnoresKernelFences_IsCaughtAsACrossDeviceAccessDuringAMove()
    {
        (long leaks, List<GpuEvent> events) = RunTheSeedScenario(importerSkipsKernelFences: true);
        Assert.Equal(1, leaks);
        GpuEvent leak = Assert.Single(events);
        Assert.True(leak.Buffer!.IsImported, "the leak was not on the imported buffer");
        Assert.Equal("gpuB", leak.Job!.Engine.Owner!.Name);

        (long correct, _) = RunTheSeedScenario(importerSkipsKernelFences: false);
        Assert.Equal(0, correct);
    }

    private static (ulong, ulong) SharedRun()
    {
        (Gpu a, Gpu b) = TwoDevices(a: c => new GpuConfig { Name = "gpuA", DeviceMemoryBytes = 3 * MiB });
        using (a)
        using (b)
        {
            var buffers = Enumerable.Range(0, 5).Select(i => a.CreateBuffer(MiB, $"bo{i}")).ToArray();
            var imports = buffers.Take(3).Select((bo, i) => b.Import(a.Export(bo), i == 0 ? ImportMode.Pinned : ImportMode.Dynamic, allowPeerToPeer: i != 2)).ToArray();
            GpuClient app = a.CreateClient("app");
            GpuClient compositor = b.CreateClient("compositor");
            var rng = new Random(7);
            for (int i = 0; i < 200; i++)
            {
                app.Submit(Job(EngineKind.Compute, rng.Next(5, 30) * Us, new BufferAccess(buffers[rng.Next(5)], rng.Next(2) == 0)));
                compositor.Submit(Job(EngineKind.Graphics, rng.Next(5, 30) * Us, new BufferAccess(imports[rng.Next(3)], rng.Next(4) == 0)));
                a.RunFor(rng.Next(1, 20) * Us);
            }

            a.RunUntilIdle();
            Assert.Equal(0, a.LeakCount + b.LeakCount);
            return (a.Digest, b.Digest);
        }
    }

    [Fact]
    public void TwoDevicesOnOneEventLoop_ReplayEventForEvent()
    {
        (ulong a1, ulong b1) = SharedRun();
        (ulong a2, ulong b2) = SharedRun();
        Assert.Equal(a1, a2);
        Assert.Equal(b1, b2);
    }

    /// <summary>Where a buffer's storage is and what the exporter did to it: equal before and after a call
    /// that failed means it changed nothing (no move, no eviction job, no accounting change).</summary>
    private readonly record struct StorageState(BufferPlacement Placement, Fence? Storage, long ExporterJobs, long ExporterUsed)
    {
        public static StorageState Of(GpuBuffer buffer) =>
            new(buffer.Placement, buffer.StorageFence, buffer.Device.JobsSubmitted, buffer.Device.DeviceMemoryUsed);
    }

    /// <summary>A exports a 1 MiB buffer; B reaches A peer to peer, C does not (PeerToPeer off).</summary>
    private sealed class ThreeDevices : IDisposable
    {
        public ThreeDevices()
        {
            A = new Gpu(new GpuConfig { Name = "gpuA" });
            B = new Gpu(new GpuConfig { Name = "gpuB" }, shareTimeWith: A);
            C = new Gpu(new GpuConfig { Name = "gpuC", PeerToPeer = false }, shareTimeWith: A);
            Shared = A.CreateBuffer(MiB, "scanout");
            DmaBuf = A.Export(Shared);
        }

        public Gpu A { get; }

        public Gpu B { get; }

        public Gpu C { get; }

        public GpuBuffer Shared { get; }

        public DmaBuf DmaBuf { get; }

        public long Leaks => A.LeakCount + B.LeakCount + C.LeakCount;

        public void Dispose()
        {
            C.Dispose();
            B.Dispose();
            A.Dispose(); // the loop's owner last
        }
    }

    [Fact]
    public void APinnedImportWithoutPeerToPeer_OfABufferPinnedInDeviceMemory_FailsWithEinval_AndChangesNothing()
    {
        using var d = new ThreeDevices();
        GpuBuffer p2p = d.B.Import(d.DmaBuf, ImportMode.Pinned); // pinned in device memory: B reaches it peer to peer
        Assert.Equal(BufferPlacement.Device, d.Shared.Placement);
        StorageState before = StorageState.Of(d.Shared);

        var ex = Assert.Throws<FenceErrnoException>(() => d.C.Import(d.DmaBuf, ImportMode.Pinned));

        Assert.Equal(-Errno.EINVAL, ex.Errno);
        Assert.Contains("no peer-to-peer", ex.Message, StringComparison.Ordinal);
        Assert.Equal(before, StorageState.Of(d.Shared)); // not moved under B's pin
        d.B.Detach(p2p); // with B's pin gone, C's pinned import moves it to system memory, where C reaches it
        Assert.True(d.C.Import(d.DmaBuf, ImportMode.Pinned).IsMapped);
        Assert.Equal(BufferPlacement.System, d.Shared.Placement);
    }

    [Fact]
    public void ADynamicImportWithoutPeerToPeer_CannotMapABufferPinnedInDeviceMemory_Ebusy_AndNothingMoves()
    {
        using var d = new ThreeDevices();
        d.B.Import(d.DmaBuf, ImportMode.Pinned);
        GpuBuffer dynamic = d.C.Import(d.DmaBuf, ImportMode.Dynamic); // attaching is fine; mapping is where it fails
        GpuBuffer own = d.C.CreateBuffer(MiB, "own"); // C's own buffer in the same job: not placed either
        GpuClient reader = d.C.CreateClient("reader");
        StorageState before = StorageState.Of(d.Shared);

        var ex = Assert.Throws<FenceErrnoException>(() => reader.Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(own, true), new BufferAccess(dynamic, false))));

        Assert.Equal(-Errno.EBUSY, ex.Errno);
        Assert.Contains("pinned import", ex.Message, StringComparison.Ordinal);
        Assert.Equal(before, StorageState.Of(d.Shared));
        Assert.Equal(0, d.C.JobsSubmitted); // no clear of C's own buffer either
        Assert.Null(own.StorageFence);
        Assert.False(dynamic.IsMapped);
    }

    [Fact]
    public void APinnedPeerToPeerImport_PinsInSystemMemory_WhenAnotherAttachmentCannotReachDeviceMemory()
    {
        using var d = new ThreeDevices();
        d.A.CreateClient("app").Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(d.Shared, true)));
        d.A.RunUntilIdle();
        GpuBuffer dynamic = d.C.Import(d.DmaBuf, ImportMode.Dynamic);

        GpuBuffer pinned = d.B.Import(d.DmaBuf, ImportMode.Pinned); // amdgpu_dma_buf_pin: GTT, since C's attachment has no P2P

        Assert.Equal(BufferPlacement.System, d.Shared.Placement);
        GpuJob read = d.C.CreateClient("reader").Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(dynamic, false)));
        GpuJob use = d.B.CreateClient("user").Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(pinned, false)));
        d.A.RunUntilIdle();
        Assert.Equal(1, read.Finished.Status);
        Assert.Equal(1, use.Finished.Status);
        Assert.Equal(BufferPlacement.System, d.Shared.Placement);
        Assert.Equal(0, d.Leaks);
    }

    [Fact]
    public void APinnedImportWithoutPeerToPeer_PinsTheBufferInSystemMemory_WhereEveryJobUsesIt_AndNoEvictionMovesIt()
    {
        (Gpu a, Gpu b) = TwoDevices(a: c => new GpuConfig { Name = "gpuA", DeviceMemoryBytes = 2 * MiB });
        using (a)
        using (b)
        {
            GpuBuffer shared = a.CreateBuffer(MiB, "shared");
            GpuClient app = a.CreateClient("app");
            app.Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(shared, true)));
            a.RunUntilIdle();
            Assert.Equal(BufferPlacement.Device, shared.Placement);

            GpuBuffer pinned = b.Import(a.Export(shared), ImportMode.Pinned, allowPeerToPeer: false);
            var move = (GpuFence)shared.StorageFence!;
            Assert.Equal(BufferPlacement.System, shared.Placement); // moved out to be pinned where B reaches it
            Assert.Equal(FenceUsage.Kernel, shared.Reservation.Snapshot.ToArray().Single(e => ReferenceEquals(e.Fence, move)).Usage);
            Assert.Equal(0, a.DeviceMemoryUsed);

            GpuJob own = app.Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(shared, true))); // the exporter uses it there too
            GpuJob imported = b.CreateClient("compositor").Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(pinned, false)));
            var others = Enumerable.Range(0, 4).Select(i => a.CreateBuffer(MiB, $"bo{i}")).ToArray();
            var pressure = others.Select(o => app.Submit(Job(EngineKind.Compute, 10 * Us, new BufferAccess(o, true)))).ToList();
            a.RunUntilIdle();

            Assert.Equal(1, own.Finished.Status);
            Assert.Equal(1, imported.Finished.Status);
            Assert.True(imported.StartTime >= move.Job!.EndTime);
            Assert.All(pressure, j => Assert.Equal(1, j.Finished.Status));
            Assert.Same(move, shared.StorageFence); // neither moved back in nor evicted
            Assert.Equal(BufferPlacement.System, shared.Placement);
            Assert.Equal(0, a.LeakCount + b.LeakCount);
        }
    }

    /// <summary>Three buffers fill A's 3 MiB: two pinned by pinned imports, one, v, evictable (and imported
    /// dynamically, so a move of it would notify).</summary>
    private static (Gpu A, Gpu B, GpuBuffer Evictable, GpuBuffer EvictableImport, GpuClient App) AllButOneBufferPinned()
    {
        (Gpu a, Gpu b) = TwoDevices(a: c => new GpuConfig { Name = "gpuA", DeviceMemoryBytes = 3 * MiB });
        b.Import(a.Export(a.CreateBuffer(MiB, "p0")), ImportMode.Pinned);
        b.Import(a.Export(a.CreateBuffer(MiB, "p1")), ImportMode.Pinned);
        GpuBuffer v = a.CreateBuffer(MiB, "v");
        GpuBuffer vImport = b.Import(a.Export(v), ImportMode.Dynamic);
        GpuClient app = a.CreateClient("app");
        app.Submit(Job(EngineKind.Compute, 10 * Us, new BufferAccess(v, true)));
        a.RunUntilIdle();
        Assert.Equal(3 * MiB, a.DeviceMemoryUsed);
        return (a, b, v, vImport, app);
    }

    /// <summary>A submission that cannot be placed throws -ENOMEM having evicted nothing: v is where it was,
    /// its importer was not told of a move, and every new buffer is still unplaced.</summary>
    private static void AssertEnomemChangedNothing(Func<GpuClient, BufferAccess[]> buffers)
    {
        (Gpu a, Gpu b, GpuBuffer v, GpuBuffer vImport, GpuClient app) = AllButOneBufferPinned();
        using (a)
        using (b)
        {
            BufferAccess[] accesses = buffers(app);
            StorageState before = StorageState.Of(v);
            long notified = vImport.MoveNotifications;

            var ex = Assert.Throws<FenceErrnoException>(() => app.Submit(Job(EngineKind.Compute, 10 * Us, accesses)));

            Assert.Equal(-Errno.ENOMEM, ex.Errno);
            Assert.Contains("nothing was evicted", ex.Message, StringComparison.Ordinal);
            Assert.Equal(before, StorageState.Of(v)); // no eviction job, accounting as it was
            Assert.Equal(notified, vImport.MoveNotifications);
            Assert.All(accesses, x => Assert.Null(x.Buffer.StorageFence));
        }
    }

    [Fact]
    public void APlacementNeedingTwoVictims_WhenOnlyOneIsEvictable_FailsWithEnomem_HavingEvictedNothing() =>
        AssertEnomemChangedNothing(app => [new BufferAccess(app.Gpu.CreateBuffer(2 * MiB, "big"), true)]);

    [Fact]
    public void ASubmissionWhoseSecondBufferFindsNoVictim_FailsWithEnomem_HavingPlacedAndEvictedNothing() =>
        AssertEnomemChangedNothing(app => [new BufferAccess(app.Gpu.CreateBuffer(MiB, "x"), true), new BufferAccess(app.Gpu.CreateBuffer(MiB, "y"), true)]);

    /// <summary>A's buffer sits in device memory and a CPU access to it is in progress: <paramref name="during"/>
    /// runs inside the access and must fail with -EBUSY without moving the buffer; once the access is over,
    /// <paramref name="after"/> bounces it to system memory.</summary>
    private static void AssertBounceRefusedDuringCpuAccess(bool importerPeerToPeer, Func<Gpu, Gpu, GpuBuffer, Action> during, Action<Gpu, Gpu, GpuBuffer> after)
    {
        (Gpu a, Gpu b) = TwoDevices(b: c => new GpuConfig { Name = "gpuB", PeerToPeer = importerPeerToPeer });
        using (a)
        using (b)
        {
            GpuBuffer shared = a.CreateBuffer(MiB, "shared");
            a.CreateClient("app").Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(shared, true)));
            a.RunUntilIdle();
            Action act = during(a, b, shared);
            StorageState before = StorageState.Of(shared);
            FenceErrnoException? refused = null;
            StorageState seen = default;

            a.CpuAccess(shared, write: false, _ =>
            {
                refused = Assert.Throws<FenceErrnoException>(act); // the CPU reads device memory: no move until it ends
                seen = StorageState.Of(shared);
            });

            Assert.Equal(-Errno.EBUSY, refused!.Errno);
            Assert.Contains("CPU access in progress", refused.Message, StringComparison.Ordinal);
            Assert.Equal(before, seen);
            after(a, b, shared);
            Assert.Equal(BufferPlacement.System, shared.Placement);
            a.RunUntilIdle();
            Assert.Equal(0, a.LeakCount + b.LeakCount);
        }
    }

    [Fact]
    public void ABounceObeysTheEvictionRule_ACpuAccessInProgressOnTheExporter_MakesTheImportersMapFailWithEbusy()
    {
        GpuBuffer? imported = null;
        GpuClient? compositor = null;
        AssertBounceRefusedDuringCpuAccess(
            importerPeerToPeer: false,
            during: (a, b, shared) =>
            {
                imported = b.Import(a.Export(shared));
                compositor = b.CreateClient("compositor");
                return () => compositor.Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(imported, false)));
            },
            after: (a, b, shared) => compositor!.Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(imported!, false))));
    }

    [Fact]
    public void ABounceForAPinnedImport_DuringACpuAccessOnTheExporter_FailsWithEbusy_AndNothingChanges() =>
        AssertBounceRefusedDuringCpuAccess(
            importerPeerToPeer: true,
            during: (a, b, shared) => () => b.Import(a.Export(shared), ImportMode.Pinned, allowPeerToPeer: false),
            after: (a, b, shared) => Assert.True(b.Import(a.Export(shared), ImportMode.Pinned, allowPeerToPeer: false).IsMapped));

    /// <summary>Threads mode: a bounce that finds the buffer pinned by a CPU access on another thread backs
    /// off and waits (holding no pin) instead of failing, and bounces once the access ends.</summary>
    [Fact]
    public void InThreadsMode_ABounceWaitsForACpuAccessInProgressOnTheExporter_ThenMoves()
    {
        using var a = new Gpu(new GpuConfig { Name = "gpuA", Mode = GpuTimeMode.Threads, WorkerThreads = 1, DependencyTimeout = TimeSpan.FromSeconds(10) });
        using var b = new Gpu(new GpuConfig { Name = "gpuB", Mode = GpuTimeMode.Threads, PeerToPeer = false, DependencyTimeout = TimeSpan.FromSeconds(10) }, shareTimeWith: a);
        GpuBuffer shared = a.CreateBuffer(MiB, "shared");
        GpuBuffer imported = b.Import(a.Export(shared));
        a.CreateClient("app").Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(shared, true)));
        Assert.True(a.WaitForIdle(TimeSpan.FromSeconds(10)));
        GpuClient compositor = b.CreateClient("compositor");
        using var submitting = new ManualResetEventSlim();
        Task<GpuJob>? read = null;
        BufferPlacement atAccessEnd = BufferPlacement.System;

        a.CpuAccess(shared, write: false, _ =>
        {
            read = Task.Run(() =>
            {
                submitting.Set();
                return compositor.Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(imported, false)));
            });
            Assert.True(submitting.Wait(TimeSpan.FromSeconds(10)));
            Thread.Sleep(50); // the submission meets the CPU's pin meanwhile
            atAccessEnd = shared.Placement;
        });

        GpuJob job = read!.GetAwaiter().GetResult(); // no -EBUSY: it waited
        Assert.Equal(BufferPlacement.Device, atAccessEnd); // not moved under the CPU
        Assert.Equal(BufferPlacement.System, shared.Placement);
        Assert.True(a.WaitForIdle(TimeSpan.FromSeconds(10)));
        Assert.Equal(1, job.Finished.Status);
        Assert.Equal(0, a.LeakCount + b.LeakCount);
    }

    [Fact]
    public void WithPeerToPeerOffOnTheExporter_TheImportBouncesToSystemMemory_AndTheReadWaitsForTheCopy() =>
        AssertTheImportBouncesThroughSystemMemory(TwoDevices(a: c => new GpuConfig { Name = "gpuA", PeerToPeer = false })); // the importer allows it, the exporter does not

    /// <summary>With peer-to-peer off on one side, an import that allows it still gets none: the buffer
    /// written on <c>A</c> bounces to system memory when <c>B</c> reads it, the bounce is a fenced copy after
    /// the writer, and the read waits for it. Disposes both devices.</summary>
    private static void AssertTheImportBouncesThroughSystemMemory((Gpu A, Gpu B) devices)
    {
        (Gpu a, Gpu b) = devices;
        using (a)
        using (b)
        {
            GpuBuffer shared = a.CreateBuffer(MiB, "shared");
            GpuBuffer imported = b.Import(a.Export(shared), allowPeerToPeer: true);
            Assert.False(imported.PeerToPeer);
            GpuJob render = a.CreateClient("app").Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(shared, true)));
            a.RunUntilIdle();
            Assert.Equal(BufferPlacement.Device, shared.Placement);

            GpuJob read = b.CreateClient("compositor").Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(imported, false)));
            var bounce = (GpuFence)shared.StorageFence!;
            Assert.Equal(BufferPlacement.System, shared.Placement);
            Assert.Contains("bounce", bounce.Job!.Description.Label, StringComparison.Ordinal);
            Assert.Contains(bounce, read.EffectiveDependencies);
            a.RunUntilIdle();
            Assert.True(read.StartTime >= bounce.Job.EndTime, "the read began before the bounce copy ended");
            Assert.True(bounce.Job.StartTime >= render.EndTime, "the bounce copied before the writer finished");
            Assert.Equal(0, a.LeakCount + b.LeakCount);
        }
    }

    /// <summary>The README's example, as written there.</summary>
    [Fact]
    public void ReadmeExample_DrawBounceFlip()
    {
        using var render = new Gpu(new GpuConfig { Name = "render" });
        using var display = new Gpu(new GpuConfig { Name = "display", PeerToPeer = false }, shareTimeWith: render);
        GpuBuffer frame = render.CreateBuffer(8L << 20, "frame");
        GpuBuffer scanout = display.Import(render.Export(frame), ImportMode.Dynamic);
        GpuJob draw = render.CreateClient("game").Submit(new JobDescription { Buffers = [new(frame, Write: true)] });
        GpuJob flip = display.CreateClient("kms").Submit(new JobDescription { Buffers = [new(scanout, Write: false)] });
        render.RunUntilIdle();

        var bounce = (GpuFence)frame.StorageFence!;
        Assert.True(bounce.Job!.StartTime >= draw.EndTime && flip.StartTime >= bounce.Job.EndTime, "not draw, bounce, flip");
        Assert.Equal(BufferPlacement.System, frame.Placement);
    }

    /// <summary>A pin stops a move in as it stops a move out: A's buffer sits in system memory (bounced for
    /// B) and a CPU access to it is in progress; a job of A's that uses it, submitted from inside the access,
    /// uses it where it is (as amdgpu_cs_bo_validate skips a pinned BO) instead of moving it back into device
    /// memory under the CPU. The same rule keeps a threads-mode render job from moving a buffer that another
    /// device's submission has just pinned in system memory before its fence is in the reservation.</summary>
    [Fact]
    public void AMoveIntoDeviceMemory_ObeysThePinRule_AJobSubmittedDuringACpuAccessUsesTheBufferInSystemMemory()
    {
        (Gpu a, Gpu b, GpuBuffer shared, GpuClient app) = BouncedForAnImporterWithoutPeerToPeer();
        using (a)
        using (b)
        {
            StorageState before = StorageState.Of(shared);
            GpuJob? render = null;
            StorageState seen = default;

            a.CpuAccess(shared, write: false, _ =>
            {
                render = app.Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(shared, true)));
                seen = StorageState.Of(shared);
            });

            Assert.Equal(before with { ExporterJobs = before.ExporterJobs + 1 }, seen); // the render job alone: no move, nothing placed, under the CPU
            a.RunUntilIdle();
            Assert.Equal(1, render!.Finished.Status);
            Assert.Equal(0, a.LeakCount + b.LeakCount);
        }
    }

    /// <summary>A's buffer, written by A's app and then read by B's compositor without peer-to-peer, so
    /// bounced to system memory; everything idle.</summary>
    private static (Gpu A, Gpu B, GpuBuffer Shared, GpuClient App) BouncedForAnImporterWithoutPeerToPeer()
    {
        (Gpu a, Gpu b) = TwoDevices(b: c => new GpuConfig { Name = "gpuB", PeerToPeer = false });
        GpuBuffer shared = a.CreateBuffer(MiB, "shared");
        GpuClient app = a.CreateClient("app");
        app.Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(shared, true)));
        a.RunUntilIdle();
        GpuBuffer imported = b.Import(a.Export(shared));
        b.CreateClient("compositor").Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(imported, false)));
        a.RunUntilIdle();
        Assert.Equal(BufferPlacement.System, shared.Placement);
        return (a, b, shared, app);
    }

    /// <summary>Two peer-to-peer imports of one exporter that each fit its memory alone but not together are
    /// planned together: the job fails with -ENOMEM before anything moves, on either device (before, the
    /// importer's own buffer was cleared and the first import placed on the exporter before the second
    /// failed).</summary>
    [Fact]
    public void TwoImportsOfOneExporterThatFitAloneButNotTogether_FailWithEnomem_HavingPlacedNothing()
    {
        (Gpu a, Gpu b) = TwoDevices(a: c => new GpuConfig { Name = "gpuA", DeviceMemoryBytes = 3 * MiB });
        using (a)
        using (b)
        {
            GpuBuffer x1 = a.CreateBuffer(2 * MiB, "x1");
            GpuBuffer x2 = a.CreateBuffer(2 * MiB, "x2");
            GpuBuffer own = b.CreateBuffer(MiB, "own");
            GpuBuffer i1 = b.Import(a.Export(x1));
            GpuBuffer i2 = b.Import(a.Export(x2));
            long aJobs = a.JobsSubmitted;
            long bJobs = b.JobsSubmitted;

            var ex = Assert.Throws<FenceErrnoException>(() => b.CreateClient("compositor").Submit(
                Job(EngineKind.Graphics, 10 * Us, new BufferAccess(own, true), new BufferAccess(i1, false), new BufferAccess(i2, false))));

            Assert.Equal(-Errno.ENOMEM, ex.Errno);
            Assert.All(new[] { x1, x2, own }, x => Assert.Null(x.StorageFence));
            Assert.Equal(0, a.DeviceMemoryUsed + b.DeviceMemoryUsed);
            Assert.Equal(aJobs, a.JobsSubmitted);
            Assert.Equal(bJobs, b.JobsSubmitted);
        }
    }

    /// <summary>Two threads that meet at each arrival of the same kind: each waits, up to a short time, for
    /// the other to have arrived as often as itself.</summary>
    private sealed class Rendezvous
    {
        private readonly object _gate = new();
        private readonly int[] _arrivals = new int[2];

        public void Arrive(int side, int timeoutMs)
        {
            lock (_gate)
            {
                int mine = ++_arrivals[side];
                Monitor.PulseAll(_gate);
                long end = Environment.TickCount64 + timeoutMs;
                while (_arrivals[1 - side] < mine && Environment.TickCount64 < end)
                {
                    Monitor.Wait(_gate, 1);
                }
            }
        }
    }

    /// <summary>Threads mode, wait-die: two submissions, one per device, each pin their own buffer and must
    /// bounce the other's (imported without peer-to-peer). The hooks make them meet: both have pinned before
    /// either maps (or 50 ms passed), and a back-off unpins only once the other has also found its bounce
    /// pinned (or 10 ms passed). The older waits holding its pins and the younger backs off, so both complete, every round,
    /// long before the dependency timeout (before, both backed off alike and retried in step until both
    /// failed with -EBUSY).</summary>
    [Fact]
    public void InThreadsMode_TwoSubmissionsThatEachPinWhatTheOtherMustBounce_BothComplete()
    {
        GpuConfig Config(string name) => new()
        {
            Name = name, Mode = GpuTimeMode.Threads, WorkerThreads = 1, PeerToPeer = false, DependencyTimeout = TimeSpan.FromSeconds(2),
        };
        using var a = new Gpu(Config("gpuA"));
        using var b = new Gpu(Config("gpuB"), shareTimeWith: a);
        GpuBuffer x = a.CreateBuffer(MiB, "x");
        GpuBuffer y = b.CreateBuffer(MiB, "y");
        GpuBuffer xOnB = b.Import(a.Export(x));
        GpuBuffer yOnA = a.Import(b.Export(y));
        GpuClient appA = a.CreateClient("appA");
        GpuClient appB = b.CreateClient("appB");
        var clock = System.Diagnostics.Stopwatch.StartNew();

        for (int round = 0; round < 20; round++)
        {
            appA.Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(x, true))); // back into device memory
            appB.Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(y, true)));
            Assert.True(a.WaitForIdle(TimeSpan.FromSeconds(5)) && b.WaitForIdle(TimeSpan.FromSeconds(5)));
            Assert.Equal(BufferPlacement.Device, x.Placement);
            Assert.Equal(BufferPlacement.Device, y.Placement);
            var pinned = new Rendezvous();
            var backingOff = new Rendezvous();
            a.AfterPinResidentForTesting = () => pinned.Arrive(0, 50);
            b.AfterPinResidentForTesting = () => pinned.Arrive(1, 50);
            a.BeforeBackOffForTesting = () => backingOff.Arrive(0, 10);
            b.BeforeBackOffForTesting = () => backingOff.Arrive(1, 10);
            using var start = new Barrier(2);
            Task<GpuJob> onA = Task.Factory.StartNew(() =>
            {
                start.SignalAndWait();
                return appA.Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(x, true), new BufferAccess(yOnA, false)));
            }, TaskCreationOptions.LongRunning);
            Task<GpuJob> onB = Task.Factory.StartNew(() =>
            {
                start.SignalAndWait();
                return appB.Submit(Job(EngineKind.Graphics, 10 * Us, new BufferAccess(y, true), new BufferAccess(xOnB, false)));
            }, TaskCreationOptions.LongRunning);

            GpuJob jobA = onA.GetAwaiter().GetResult(); // no -EBUSY
            GpuJob jobB = onB.GetAwaiter().GetResult();
            a.AfterPinResidentForTesting = b.AfterPinResidentForTesting = a.BeforeBackOffForTesting = b.BeforeBackOffForTesting = null;
            Assert.True(a.WaitForIdle(TimeSpan.FromSeconds(5)) && b.WaitForIdle(TimeSpan.FromSeconds(5)));
            Assert.Equal(1, jobA.Finished.Status);
            Assert.Equal(1, jobB.Finished.Status);
        }

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"20 rounds took {clock.Elapsed}");
        Assert.Equal(0, a.LeakCount + b.LeakCount);
    }
}
