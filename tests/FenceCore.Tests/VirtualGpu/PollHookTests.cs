using System.Reflection;
using FenceCore.VirtualGpu;

namespace FenceCore.Tests.VirtualGpu;

/// <summary>
/// <see cref="Fence.Poll"/> skips the poll hook of a pending fence whose type says it has none. A type that
/// said so and still overrode <see cref="Fence"/>'s PollSignaled would never be polled, so this pins which
/// of the library's fence types say it: exactly those that do not override it.
/// </summary>
public class PollHookTests
{
    [Fact]
    public void EveryLibraryFenceTypeThatSaysItHasNoPollHook_OverridesNone_AndTheOthersArePolled()
    {
        using var gpu = new Gpu(new GpuConfig());
        GpuClient client = gpu.CreateClient("c");
        GpuJob job = client.Submit(new JobDescription { Engine = EngineKind.Graphics, Duration = TimeSpan.FromMicroseconds(5) });
        using var swSync = new SwSyncTimeline();
        var timeline = new FenceTimeline("t");
        var a = new FenceSource(FenceContext.Allocate(), 1);
        var b = new FenceSource(FenceContext.Allocate(), 1);

        Fence[] fences =
        [
            job.Scheduled, job.Finished, timeline.CreateFence(), swSync.CreateFence(1),
            a, new FenceArray([a, b]), new FenceChain(null, a, 1), new PolledFence(),
        ];
        var said = new List<string>();
        foreach (Fence f in fences)
        {
            MethodInfo poll = f.GetType().GetMethod("PollSignaled", BindingFlags.Instance | BindingFlags.NonPublic)!;
            bool overrides = poll.GetBaseDefinition().DeclaringType != poll.DeclaringType;
            Assert.False(f.HasNoPollHookForTesting && overrides, $"{f.GetType().Name} overrides PollSignaled but says it has no poll hook");
            if (f.HasNoPollHookForTesting)
            {
                said.Add(f.GetType().Name);
            }
        }

        Assert.Equal(["GpuFence", "GpuFence", "TimelineFence", "SwSyncFence"], said);

        // The others still poll: a subclass's hook runs, and its yes signals the fence.
        var polled = new PolledFence();
        Assert.False(polled.Poll());
        polled.Passed = true;
        Assert.True(polled.Poll());
        Assert.True(polled.IsSignaled);
        Assert.Equal(2, polled.Polls);

        // Skipping the hook changes no answer: a pending GPU fence polls false until its job signals it.
        Assert.False(job.Finished.Poll());
        gpu.RunUntilIdle();
        Assert.True(job.Finished.Poll());
    }

    private sealed class PolledFence() : FenceSource(FenceContext.Allocate(), 1)
    {
        public bool Passed { get; set; }

        public int Polls { get; private set; }

        protected override bool PollSignaled()
        {
            Polls++;
            return Passed;
        }
    }
}
