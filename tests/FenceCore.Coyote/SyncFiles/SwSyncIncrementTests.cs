using FenceCore.Coyote.Canary;
using Microsoft.Coyote.Specifications;
using Xunit.Abstractions;

namespace FenceCore.Coyote.SyncFiles;

/// <summary>The two operations of a sw_sync timeline that the synchronous-increment scenario uses.</summary>
internal interface IIncrementingTimeline
{
    Fence CreateFence(uint value);

    void Increment();
}

/// <summary>
/// The synchronous sw_sync increment (issue 11): when <c>Increment</c> returns, every point it reached has
/// signalled, even while another thread is the drainer; a reached point that is still being signalled is
/// returned by <c>CreateFence</c>, never a second fence. The canary runs the same scenario on a copy of the
/// old drain, which returned at once when another thread drained, and must be caught.
/// </summary>
public sealed class SwSyncIncrementTests(ITestOutputHelper output)
{
    private sealed class RealTimeline : IIncrementingTimeline
    {
        private readonly SwSyncTimeline _timeline = new("coyote");

        public Fence CreateFence(uint value) => _timeline.CreateFence(value);

        public void Increment() => _timeline.Increment();
    }

    internal static async Task IncrementReturnsAfterItsPoints(IIncrementingTimeline timeline)
    {
        Fence p1 = timeline.CreateFence(1);
        Fence p2 = timeline.CreateFence(2);

        // Two increments race; whichever drains, the other must not return before the points are signalled.
        Task a = Task.Run(() =>
        {
            timeline.Increment();
            Specification.Assert(p1.IsSignaled, "an increment returned before point 1, which it reached, signalled");
        });
        Task b = Task.Run(() =>
        {
            timeline.Increment();
            Specification.Assert(p1.IsSignaled, "an increment returned before point 1, which it reached, signalled");
            Fence again = timeline.CreateFence(1);
            Specification.Assert(ReferenceEquals(again, p1) || again.IsSignaled, "point 1 got a second, unsignalled fence");
        });
        await a;
        await b;

        Specification.Assert(p2.IsSignaled, "point 2 is not signalled after both increments returned");
    }

    [Fact]
    public void IncrementAgainstIncrement_ReturnsOnlyAfterItsPointsSignalled() =>
        CoyoteHarness.Check(output, () => IncrementReturnsAfterItsPoints(new RealTimeline()));

    [Fact]
    public void EarlyReturningDrain_IsCaughtByCoyote()
    {
        CoyoteHarness.Outcome outcome = CoyoteHarness.Explore(output, () => IncrementReturnsAfterItsPoints(new EarlyReturnTimeline()),
            CoyoteHarness.DefaultIterations, configure: null, nameof(EarlyReturningDrain_IsCaughtByCoyote));

        Assert.True(outcome.Bugs > 0, "Coyote did not find the seeded early return of the old sw_sync drain.");
        Assert.Contains(outcome.BugReports, r => r.Contains("returned before point 1", StringComparison.Ordinal));
    }
}
