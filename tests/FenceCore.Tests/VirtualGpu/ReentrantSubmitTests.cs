using FenceCore.Tests.Fences;
using FenceCore.VirtualGpu;

namespace FenceCore.Tests.VirtualGpu;

/// <summary>
/// A submission polls its dependencies (the kernel's rules drop those already signalled), and a poll may
/// signal a fence whose implementation says it has passed, running its callbacks on the submitting thread.
/// A callback that submits another job there re-enters the submission path; the outer job must keep every
/// dependency it was given.
/// </summary>
public sealed class ReentrantSubmitTests
{
    [Fact]
    public void ACallbackThatSubmitsDuringAPoll_LeavesTheOuterJobsDependenciesWhole()
    {
        using var gpu = new Gpu(new GpuConfig { Mode = GpuTimeMode.Virtual });
        GpuClient outer = gpu.CreateClient("outer");
        GpuClient inner = gpu.CreateClient("inner");
        FenceSource pending = TestFences.Pending(); // the outer job must wait for this one
        FenceSource innersDependency = TestFences.Pending();
        var passed = new TestFences.HookedFence(FenceContext.Allocate(), 1) { HardwareDone = true }; // signals when polled
        GpuJob? innerJob = null;
        passed.AddCallback(_ => innerJob = inner.Submit(new JobDescription { Dependencies = [innersDependency] }));

        GpuJob outerJob = outer.Submit(new JobDescription { Dependencies = [pending, passed] });
        gpu.RunUntil(TimeSpan.FromMilliseconds(1));

        Assert.NotNull(innerJob);
        Assert.Equal([innersDependency], innerJob.EffectiveDependencies);
        Assert.Equal([pending], outerJob.EffectiveDependencies); // was empty: the inner submission had cleared the shared scratch list
        Assert.Null(outerJob.StartTime); // so it did not start before its dependency
        pending.Signal();
        innersDependency.Signal();
        gpu.RunUntilIdle();
        Assert.Equal(GpuJobState.Done, outerJob.State);
        Assert.Equal(0, outerJob.Finished.Error);
        Assert.Equal(GpuJobState.Done, innerJob.State);
    }
}
