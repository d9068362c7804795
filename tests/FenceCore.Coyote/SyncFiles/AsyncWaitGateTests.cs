using Microsoft.Coyote.Specifications;
using Xunit.Abstractions;

namespace FenceCore.Coyote.SyncFiles;

/// <summary>
/// The asynchronous wake-up gate (Internal/WaitGate) of <c>SyncObj.WaitAsync</c> and
/// <see cref="Fence.WaitAnyAsync(IReadOnlyList{Fence}, TimeSpan, CancellationToken)"/>: the waiter resets
/// the gate (a fresh completion source) before it checks its condition, callbacks and submit waiters set
/// whichever source they read. Invariant: no wake-up is lost, so every wait whose condition becomes true
/// completes, with the result the blocking wait would give. A lost wake-up leaves the awaiting task
/// blocked with nothing left to run, which Coyote reports as a deadlock.
/// </summary>
public sealed class AsyncWaitGateTests(ITestOutputHelper output)
{
    [Fact]
    public void SyncObjWaitAsync_AgainstSubmitAndSignal_AlwaysCompletes() => CoyoteHarness.Check(output, async () =>
    {
        var a = new SyncObj();
        var b = new SyncObj();
        ulong ctx = FenceContext.Allocate();
        FenceSource fa = new(ctx, 1), fb = new(ctx, 2);

        Task<SyncObjWaitResult> wait = SyncObj.WaitAsync([a, b], [1, 1], Timeout.InfiniteTimeSpan,
            SyncObjWaitOptions.WaitAll | SyncObjWaitOptions.WaitForSubmit).AsTask();
        Task submitA = Task.Run(() =>
        {
            _ = a.AddPoint(1, fa);
            fa.Signal();
        });
        Task submitB = Task.Run(() =>
        {
            _ = b.AddPoint(1, fb);
            fb.Signal();
        });

        await submitA;
        await submitB;
        SyncObjWaitResult result = await wait;
        Specification.Assert(result.Signaled, "the wait-all ended without both points signalled: {0}", result);
        Specification.Assert(a.SubmitWaiterCountForTesting() == 0 && b.SubmitWaiterCountForTesting() == 0, "a submit waiter was left registered");
    });

    [Fact]
    public void GateResetBeforeTheCheck_NeverLosesAWakeUp() => CoyoteHarness.Check(output, () => WaitGateScenario.Run(resetBeforeCheck: true));

    [Fact]
    public void WaitAnyAsync_AgainstSignals_ReportsASignalledIndex() => CoyoteHarness.Check(output, async () =>
    {
        ulong ctx = FenceContext.Allocate(2);
        FenceSource f0 = new(ctx, 1), f1 = new(ctx + 1, 1);

        Task<int> wait = Fence.WaitAnyAsync([f0, f1], Timeout.InfiniteTimeSpan).AsTask();
        Task s1 = Task.Run(() => f1.Signal());
        Task s0 = Task.Run(() => f0.Signal());

        int index = await wait;
        await s1;
        await s0;
        Specification.Assert(index is 0 or 1, "wait-any returned {0}", index);
        Specification.Assert(f0.LinkedCallbackCellsForTesting() == 0 && f1.LinkedCallbackCellsForTesting() == 0, "a wake-up callback was left queued");
    });
}

/// <summary>
/// The gate protocol alone, with the real <c>WaitGate</c>: wait until two fences have signalled, re-arming
/// the gate either before the check (the library's order) or after it (the seeded bug of the canary in
/// <c>CanaryTests</c>: a signal between the check and the reset is lost).
/// </summary>
internal static class WaitGateScenario
{
    public static async Task Run(bool resetBeforeCheck)
    {
        ulong ctx = FenceContext.Allocate(2);
        FenceSource f0 = new(ctx, 1), f1 = new(ctx + 1, 1);
        var gate = new FenceCore.Internal.WaitGate(blocking: false);
        var n0 = new FenceCore.Internal.WaitGateCallback(gate);
        var n1 = new FenceCore.Internal.WaitGateCallback(gate);
        _ = f0.AddCallback(n0);
        _ = f1.AddCallback(n1);
        Task s0 = Task.Run(() => f0.Signal());
        Task s1 = Task.Run(() => f1.Signal());

        while (true)
        {
            if (resetBeforeCheck)
            {
                gate.Reset();
            }

            bool done = f0.IsSignaled && f1.IsSignaled;
            if (done)
            {
                break;
            }

            if (!resetBeforeCheck)
            {
                gate.Reset();
            }

            // A lost wake-up leaves this await with nothing left that can complete it: Coyote reports the
            // deadlock.
            await gate.WaitAsync(Timeout.InfiniteTimeSpan, CancellationToken.None);
        }

        await s0;
        await s1;
    }
}
