using Microsoft.Coyote.Specifications;
using Xunit.Abstractions;

namespace FenceCore.Coyote.Fences;

/// <summary>
/// The fast signal of a plain <see cref="FenceSource"/> (Fence.SignalCore with no adder announced): its one
/// compare-and-swap on the flag word claims the fence and shuts adders out, and a store publishes it. An
/// add racing it either is run by the signaller exactly once, or returns false with the signal, its error
/// and its timestamp already visible; a second signaller loses; a remove of a cell added in the race is
/// either a true remove (never run) or a false one after the run.
/// </summary>
public sealed class FastSignalTests(ITestOutputHelper output)
{
    [Fact]
    public void AddAgainstAFastSignal_RunsOnceOrSeesTheWholeSignal() =>
        CoyoteHarness.Check(output, () => AddAgainstFastSignal(new FenceSource(FenceContext.Allocate(), 1)));

    /// <summary>The same race on a <see cref="FenceTimeline"/>'s fence, one of the library's hookless types
    /// that take the fast signal too.</summary>
    [Fact]
    public void AddAgainstAFastSignal_OnATimelinesFence() =>
        CoyoteHarness.Check(output, () => AddAgainstFastSignal(new FenceTimeline("coyote").CreateFence()));

    /// <summary>A public enable adds nothing, so it leaves the fence its fast signal: the adds that come after it
    /// announce with a compare-and-swap of their own (Fence.Announce), which must order them with a fast claim.</summary>
    [Fact]
    public void AddAgainstAFastSignal_AfterAnEnableThatAddedNothing() => CoyoteHarness.Check(output, () =>
    {
        var fence = new FenceSource(FenceContext.Allocate(), 1);
        fence.EnableSignaling();
        return AddAgainstFastSignal(fence);
    });

    /// <summary>The same race with the enable itself racing the adds and the signals.</summary>
    [Fact]
    public void AddAgainstAFastSignal_WithARacingEnable() =>
        CoyoteHarness.Check(output, () => AddAgainstFastSignal(new FenceSource(FenceContext.Allocate(), 1), enableAlongside: true));

    private static async Task AddAgainstFastSignal(FenceSource fence, bool enableAlongside = false)
    {
        Task enabler = enableAlongside ? Task.Run(fence.EnableSignaling) : Task.CompletedTask;
        var first = new CountingCallback();
        var second = new CountingCallback();

        (bool Added, bool SignaledWhenRefused, int Status, long Stamp) Add(CountingCallback cell)
        {
            if (fence.AddCallback(cell))
            {
                return (true, false, 0, -1);
            }

            // Refused: the signal must already be whole, with the winner's error and timestamp.
            bool signaled = fence.IsSignaled;
            return (false, signaled, fence.Status, signaled ? fence.Timestamp.Ticks : -1);
        }

        Task<(bool, bool, int, long)> adder1 = Task.Run(() => Add(first));
        Task<(bool, bool, int, long)> adder2 = Task.Run(() => Add(second));
        Task<bool> signaller1 = Task.Run(() => fence.SignalWithTimestamp(-Errno.EIO, TimeSpan.FromTicks(100)));
        Task<bool> signaller2 = Task.Run(() => fence.SignalWithTimestamp(0, TimeSpan.FromTicks(200)));

        await enabler;
        bool won1 = await signaller1;
        bool won2 = await signaller2;
        (bool added1, bool seen1, int status1, long stamp1) = await adder1;
        (bool added2, bool seen2, int status2, long stamp2) = await adder2;

        Specification.Assert(won1 ^ won2, "signallers won: {0} and {1}", won1, won2);
        int status = won1 ? -Errno.EIO : 1;
        long stamp = won1 ? 100 : 200;
        Specification.Assert(fence.Status == status && fence.Timestamp.Ticks == stamp, "fence ends at {0} {1}", fence.Status, fence.Timestamp.Ticks);

        foreach ((CountingCallback cell, bool added, bool seen, int st, long ts) in new[] { (first, added1, seen1, status1, stamp1), (second, added2, seen2, status2, stamp2) })
        {
            if (added)
            {
                Specification.Assert(cell.Runs == 1, "an added callback ran {0} times", cell.Runs);
                Specification.Assert(cell.StatusSeen == status, "a callback saw status {0}, the winner's is {1}", cell.StatusSeen, status);
            }
            else
            {
                Specification.Assert(cell.Runs == 0, "a refused callback ran");
                Specification.Assert(seen, "an add was refused before the signal was visible");
                Specification.Assert(st == status && ts == stamp, "a refused add saw {0} at {1}; the winner's are {2} at {3}", st, ts, status, stamp);
            }
        }
    }

    [Fact]
    public void AddRemoveAgainstAFastSignal_RemovedXorRun() => CoyoteHarness.Check(output, async () =>
    {
        var fence = new FenceSource(FenceContext.Allocate(), 1);
        var cell = new CountingCallback();

        Task<(bool Added, bool Removed)> user = Task.Run(() =>
        {
            bool added = fence.AddCallback(cell);
            return (added, added && fence.RemoveCallback(cell));
        });
        Task<bool> signaller = Task.Run(() => fence.Signal());

        (bool added, bool removed) = await user;
        await signaller;

        Specification.Assert(fence.IsSignaled, "the fence did not signal");
        if (!added)
        {
            Specification.Assert(cell.Runs == 0, "a refused callback ran");
        }
        else
        {
            Specification.Assert(removed ? cell.Runs == 0 : cell.Runs == 1, "removed {0}, ran {1} times", removed, cell.Runs);
        }

        // The node is free again either way: it can be queued on another fence.
        var next = new FenceSource(FenceContext.Allocate(), 1);
        Specification.Assert(next.AddCallback(cell), "the node was not freed");
    });
}
