using Microsoft.Coyote.Specifications;
using Xunit.Abstractions;

namespace FenceCore.Coyote.Fences;

/// <summary>
/// Concurrent signals (Fence.SignalCore): exactly one signaller wins the claim, and the error and
/// timestamp every reader sees, inside a callback or after, are the winner's.
/// </summary>
public sealed class FenceSignalTests(ITestOutputHelper output)
{
    [Fact]
    public void ConcurrentSignals_ExactlyOneWinsAndItsErrorAndTimestampStand() => CoyoteHarness.Check(output, async () =>
    {
        var fence = new FenceSource(FenceContext.Allocate(), 1);
        int[] errors = [0, -Errno.EIO, -Errno.ETIMEDOUT];
        long[] stamps = [100, 200, 300];
        long seenInCallback = -1;
        int statusInCallback = 0;
        fence.AddCallback(f =>
        {
            Volatile.Write(ref statusInCallback, f.Status);
            Volatile.Write(ref seenInCallback, f.Timestamp.Ticks);
        });

        var signallers = new Task<bool>[3];
        for (int i = 0; i < signallers.Length; i++)
        {
            int me = i;
            signallers[i] = Task.Run(() => fence.SignalWithTimestamp(errors[me], TimeSpan.FromTicks(stamps[me])));
        }

        // A reader racing the signallers: once it sees the fence signalled, status and timestamp are final.
        Task<(int Status, long Stamp)> reader = Task.Run(() =>
            fence.TryGetTimestamp(out TimeSpan ts) ? (fence.Status, ts.Ticks) : (0, -1L));

        await Task.WhenAll(signallers);
        (int readStatus, long readStamp) = await reader;

        int winners = 0;
        int winner = -1;
        for (int i = 0; i < signallers.Length; i++)
        {
            if (signallers[i].Result)
            {
                winners++;
                winner = i;
            }
        }

        Specification.Assert(winners == 1, "{0} signallers won", winners);
        int expectedStatus = errors[winner] < 0 ? errors[winner] : 1;
        Specification.Assert(fence.Status == expectedStatus, "status {0}, winner signalled {1}", fence.Status, errors[winner]);
        Specification.Assert(fence.Timestamp.Ticks == stamps[winner], "timestamp {0}, winner's {1}", fence.Timestamp.Ticks, stamps[winner]);
        Specification.Assert(statusInCallback == expectedStatus, "callback saw status {0}, winner's {1}", statusInCallback, expectedStatus);
        Specification.Assert(seenInCallback == stamps[winner], "callback saw timestamp {0}, winner's {1}", seenInCallback, stamps[winner]);
        Specification.Assert(readStamp == -1 || (readStamp == stamps[winner] && readStatus == expectedStatus),
            "a racing reader saw status {0} at {1}; the winner's are {2} at {3}", readStatus, readStamp, expectedStatus, stamps[winner]);
    });

    /// <summary>The time word holds the deadline hint while pending and the timestamp once claimed. A hint
    /// lowered while the fence signals at exactly the earlier hint's time must not replace the timestamp (a
    /// compare-and-swap that expects the hint's value found the equal timestamp and succeeded, before the
    /// fix). A simulator's virtual time makes such equal times ordinary (a deadline at a vblank, the fence
    /// signalled at that vblank).</summary>
    [Fact]
    public void ADeadlineLoweredWhileTheFenceSignalsAtTheOldDeadline_LeavesTheTimestamp() => CoyoteHarness.Check(output, async () =>
    {
        var fence = new FenceSource(FenceContext.Allocate(), 1);
        fence.SetDeadline(TimeSpan.FromTicks(500));

        Task<bool> signaller = Task.Run(() => fence.SignalWithTimestamp(TimeSpan.FromTicks(500)));
        Task hint = Task.Run(() => fence.SetDeadline(TimeSpan.FromTicks(100)));
        await signaller;
        await hint;

        Specification.Assert(fence.Timestamp == TimeSpan.FromTicks(500), "timestamp {0} ticks, signalled at 500", fence.Timestamp.Ticks);
        Specification.Assert(fence.Deadline is null, "a signalled fence reports the deadline {0}", fence.Deadline);
    });

    [Fact]
    public void EnableSignalingAgainstSignal_HookRunsAtMostOnceAndNeverAfterTheSignal() => CoyoteHarness.Check(output, async () =>
    {
        var fence = new HookCountingFence();
        bool Enable()
        {
            bool signaledBefore = fence.IsSignaled;
            fence.EnableSignaling();
            return signaledBefore;
        }

        Task<bool> enable1 = Task.Run(Enable);
        Task<bool> enable2 = Task.Run(Enable);
        Task<bool> signal = Task.Run(() => fence.Signal());
        bool late1 = await enable1;
        bool late2 = await enable2;
        bool signalled = await signal;

        Specification.Assert(signalled, "the only signaller lost");
        Specification.Assert(fence.HookCalls <= 1, "OnEnableSignaling ran {0} times", fence.HookCalls);
        Specification.Assert(fence.IsSignalingEnabled, "enable bit lost");
        Specification.Assert(!(late1 && late2) || fence.HookCalls == 0, "OnEnableSignaling ran although every enable came after the signal");
    });

    private sealed class HookCountingFence() : FenceSource(FenceContext.Allocate(), 1)
    {
        private int _hookCalls;

        public int HookCalls => Volatile.Read(ref _hookCalls);

        protected override bool OnEnableSignaling()
        {
            Interlocked.Increment(ref _hookCalls);
            return true;
        }
    }
}
