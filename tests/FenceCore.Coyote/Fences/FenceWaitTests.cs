using Microsoft.Coyote;
using Microsoft.Coyote.Specifications;
using Xunit.Abstractions;

namespace FenceCore.Coyote.Fences;

/// <summary>
/// Waiting against signalling (Fence.Wait, Fence.WaitAsync): no lost wake-up; a wait that returns
/// true implies the fence is signalled; a timeout or cancellation is never reported for a signal that
/// was already visible when the wait was interrupted.
/// </summary>
/// <remarks>
/// These run under Coyote's systematic fuzzing: the blocking wait parks on a ManualResetEventSlim,
/// the async waiter completes an IValueTaskSource whose continuation goes through the thread pool, and
/// timeouts are real timers, none of which Coyote 1.7 can control. Fuzzing keeps the real threads and
/// injects delays at every rewritten Interlocked/Volatile call instead, so the fence's own races are
/// still explored; its traces are not replayable step for step.
/// </remarks>
public sealed class FenceWaitTests(ITestOutputHelper output)
{
    /// <summary>What the blocking waiter calls that Coyote does not control.</summary>
    private static readonly string[] s_eventCalls =
    [
        "System.Threading.ManualResetEventSlim..ctor",
        "System.Threading.ManualResetEventSlim.Wait",
        "System.Threading.ManualResetEventSlim.Set",
        "System.Threading.ManualResetEventSlim.Reset",
    ];

    private static FenceSource NewFence() => new(FenceContext.Allocate(), 1);

    private static Configuration Fuzzing(Configuration c) => c.WithSystematicFuzzingEnabled(true);

    [Fact]
    public void BlockingWaitAgainstSignal_NoLostWakeUp() => CoyoteHarness.Check(output, async () =>
    {
        FenceSource fence = NewFence();
        Task waiter = Task.Run(() =>
        {
            fence.Wait();
            Specification.Assert(fence.IsSignaled, "Wait returned on a pending fence");
        });
        Task signaller = Task.Run(() => fence.Signal());
        await signaller;
        await waiter;
    }, configure: Fuzzing, expectedUncontrolled: s_eventCalls);

    [Fact]
    public void BlockingWaitWithTimeoutAgainstSignal_TrueOnlyWhenSignalledAndWaiterReusable() => CoyoteHarness.Check(output, async () =>
    {
        FenceSource fence = NewFence();
        FenceSource next = NewFence();
        Task<bool> waiter = Task.Run(() =>
        {
            bool signalled = fence.Wait(TimeSpan.FromMilliseconds(1));
            Specification.Assert(!signalled || fence.IsSignaled, "Wait returned true on a pending fence");

            // The same thread's waiter is reused (or replaced) for the next wait: it must still wake up.
            next.Signal();
            Specification.Assert(next.Wait(TimeSpan.FromSeconds(10)), "the thread's next wait did not see a signalled fence");
            return signalled;
        });
        Task signaller = Task.Run(() => fence.Signal());
        await signaller;
        await waiter;
    }, configure: Fuzzing, expectedUncontrolled: s_eventCalls);

    [Fact]
    public void BlockingWaitWithCancellationAgainstSignal_NotCancelledOnceTheSignalWasVisible() => CoyoteHarness.Check(output, async () =>
    {
        FenceSource fence = NewFence();
        using var cts = new CancellationTokenSource();
        Task<bool> waiter = Task.Run(() =>
        {
            try
            {
                fence.Wait(cts.Token);
                Specification.Assert(fence.IsSignaled, "Wait returned on a pending fence");
                return true;
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        });
        Task signaller = Task.Run(() => fence.Signal());
        Task<bool> canceller = Task.Run(() =>
        {
            bool signaledBeforeCancel = fence.IsSignaled;
            cts.Cancel();
            return signaledBeforeCancel;
        });

        await signaller;
        bool signaledBeforeCancel = await canceller;
        bool completed = await waiter;
        Specification.Assert(completed || !signaledBeforeCancel,
            "Wait threw OperationCanceledException although the fence was signalled before the token was cancelled");
    }, configure: Fuzzing, expectedUncontrolled: [.. s_eventCalls, "System.Threading.CancellationTokenSource.Cancel"]);

    [Fact]
    public void AsyncWaitAgainstSignal_NoLostWakeUp() => CoyoteHarness.Check(output, async () =>
    {
        FenceSource fence = NewFence();
        Task waiter = Task.Run(async () =>
        {
            await fence.WaitAsync();
            Specification.Assert(fence.IsSignaled, "WaitAsync completed on a pending fence");
        });
        Task signaller = Task.Run(() => fence.Signal());
        await signaller;
        await waiter;
    }, configure: Fuzzing, expectedUncontrolled: s_awaitDispatch);

    /// <summary>Two awaiting loops over the same fences, signalled in order by a third task: each await's
    /// node goes home to its loop's thread from wherever the continuation ran, while that thread may be
    /// renting for its next await (the pool's one race). Every await must resume once, after its own fence.</summary>
    [Fact]
    public void AwaitLoopsAgainstSignals_EachAwaitResumesOnceAfterItsOwnFence() => CoyoteHarness.Check(output, async () =>
    {
        FenceSource[] fences = [NewFence(), NewFence(), NewFence()];
        async Task<int> Loop()
        {
            int resumed = 0;
            foreach (FenceSource fence in fences)
            {
                await fence.WaitAsync();
                Specification.Assert(fence.IsSignaled, "an await resumed before its fence signalled");
                resumed++;
            }

            return resumed;
        }

        Task<int> first = Task.Run(Loop);
        Task<int> second = Task.Run(Loop);
        Task signaller = Task.Run(() =>
        {
            foreach (FenceSource fence in fences)
            {
                fence.Signal();
            }
        });
        await signaller;
        int firstResumed = await first;
        int secondResumed = await second;
        Specification.Assert(firstResumed == 3 && secondResumed == 3, "an awaiting loop lost or repeated a resumption");
    }, configure: Fuzzing, expectedUncontrolled: s_awaitDispatch);

    /// <summary>An <c>await</c> of a fence posts its continuation to the awaiter's synchronization context,
    /// which under Coyote is Coyote's own (<c>ControlledSynchronizationContext</c>, where controlled operations
    /// run): the post is Coyote scheduling the continuation, though its rewriter lists the calls.</summary>
    private static readonly string[] s_awaitDispatch =
        ["System.Threading.SynchronizationContext.get_Current", "System.Threading.SynchronizationContext.Post"];

    [Fact]
    public void AsyncWaitWithTimeoutAgainstSignal_CompletesOnceAndTrueOnlyWhenSignalled()
    {
        int[] outcomes = new int[2];
        CoyoteHarness.Check(output, async () =>
        {
            FenceSource fence = NewFence();
            Task<bool> waiter = Task.Run(async () =>
            {
                bool signalled = await fence.WaitAsync(TimeSpan.FromMilliseconds(1));
                Specification.Assert(!signalled || fence.IsSignaled, "WaitAsync returned true on a pending fence");
                return signalled;
            });
            Task signaller = Task.Run(() => fence.Signal());
            await signaller;
            Interlocked.Increment(ref (await waiter ? ref outcomes[0] : ref outcomes[1]));
        }, configure: Fuzzing, expectedUncontrolled: ["System.Threading.Timer..ctor"]);
        output.WriteLine($"outcomes: signalled {outcomes[0]}, timed out {outcomes[1]}");
    }

    [Fact]
    public void AsyncWaitWithCancellationAgainstSignal_NotCancelledOnceTheSignalWasVisible() => CoyoteHarness.Check(output, async () =>
    {
        FenceSource fence = NewFence();
        using var cts = new CancellationTokenSource();
        Task<bool> waiter = Task.Run(async () =>
        {
            try
            {
                bool signalled = await fence.WaitAsync(Timeout.InfiniteTimeSpan, cts.Token);
                Specification.Assert(signalled, "an infinite wait reported a timeout");
                Specification.Assert(fence.IsSignaled, "WaitAsync returned true on a pending fence");
                return true;
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        });
        Task signaller = Task.Run(() => fence.Signal());
        Task<bool> canceller = Task.Run(() =>
        {
            bool signaledBeforeCancel = fence.IsSignaled;
            cts.Cancel();
            return signaledBeforeCancel;
        });

        await signaller;
        bool signaledBeforeCancel = await canceller;
        bool completed = await waiter;
        Specification.Assert(completed || !signaledBeforeCancel,
            "WaitAsync reported cancellation although the fence was signalled before the token was cancelled");
    }, configure: Fuzzing);
}
