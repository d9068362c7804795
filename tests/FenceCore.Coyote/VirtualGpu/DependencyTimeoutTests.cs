using FenceCore.VirtualGpu;
using Microsoft.Coyote.Specifications;
using Xunit.Abstractions;

namespace FenceCore.Coyote.VirtualGpu;

/// <summary>
/// The dependency timeouts' list of pending waits (<c>DependencyTimeouts</c>): a job's wait begins on one
/// task (its submission) while, on another, its one dependency signals or its client is killed. However
/// the two interleave, the job ends once, the way it should (it runs, or ends with -ESRCH), and no ended
/// wait is left in the list: the wait that ends before its timeout is linked is never linked, and one
/// that ends after is unlinked at once.
/// </summary>
public sealed class DependencyTimeoutTests(ITestOutputHelper output)
{
    /// <summary>The race of one submission against its dependency's signal (or its client's kill).
    /// <paramref name="seededBug"/>: the canary's, the list links a wait without looking whether it ended.</summary>
    internal static async Task Scenario(bool kill, bool seededBug = false)
    {
        using var gpu = new Gpu(new GpuConfig { Mode = GpuTimeMode.Virtual, DependencyTimeout = TimeSpan.FromMilliseconds(100) });
        gpu.Scheduler.DependencyTimeoutsForTesting.SeededBugLinkEndedWaitsForTesting = seededBug;
        GpuClient client = gpu.CreateClient("c");
        var dependency = new FenceSource(FenceContext.Allocate(), 1);
        GpuJob? job = null;

        Task submit = Task.Run(() =>
        {
            job = client.Submit(new JobDescription { Engine = EngineKind.Compute, Duration = TimeSpan.FromMicroseconds(1), Dependencies = [dependency] });
        });
        Task end = Task.Run(() =>
        {
            if (kill)
            {
                gpu.Kill(client);
            }
            else
            {
                dependency.Signal();
            }
        });
        await submit;
        await end;

        int pending = gpu.Scheduler.PendingDependencyTimeoutsForTesting;
        Specification.Assert(pending == 0, $"an ended wait was left in the dependency timeouts' list ({pending} there)");

        gpu.RunUntilIdle();
        int expected = kill ? -Errno.ESRCH : 0;
        Specification.Assert(job!.Finished.IsSignaled && job.Finished.Error == expected,
            $"the job ended with {job.Finished.Error}, not {expected} (signalled: {job.Finished.IsSignaled})");
        Specification.Assert(gpu.JobsCompleted == 1, $"{gpu.JobsCompleted} jobs completed, not 1");
    }

    [Fact]
    public void TheLastDependencySignalsWhileTheWaitBegins_TheJobRunsAndNoEndedWaitIsKept() =>
        CoyoteHarness.Check(output, () => Scenario(kill: false));

    [Fact]
    public void TheClientIsKilledWhileTheWaitBegins_TheJobEndsWithEsrchAndNoEndedWaitIsKept() =>
        CoyoteHarness.Check(output, () => Scenario(kill: true));
}
