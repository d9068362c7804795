using System.Runtime.CompilerServices;
using Microsoft.Coyote;
using Microsoft.Coyote.Runtime;
using Microsoft.Coyote.Specifications;
using Xunit.Abstractions;

namespace FenceCore.Coyote.SyncFiles;

/// <summary>
/// SyncObj wait-for-submit against adding a point, and QueryPoint against adding and signalling.
/// Invariants: a waiter for point P never misses the add of P (writers hand the fence they install to
/// the waiters registered before them, under the syncobj's lock); concurrent AddPoint calls lose no
/// point; QueryPoint never goes backwards and never reports a point whose fences
/// have not all signalled; the last-submitted query never goes backwards.
/// </summary>
public sealed class SyncObjTests(ITestOutputHelper output)
{
    /// <summary>A lost wake-up leaves the controlled waiter spinning.
    /// Unfair strategies (prioritization, delay bounding) can starve the task a spinner waits for; at the
    /// unfair bound (1,000, several times a normal path) Coyote continues the path fairly, and a path that
    /// then reaches the fair bound (20,000) is a real livelock and fails the test. Checked by mutation: with
    /// the bug injected, this configuration reports it within a few dozen iterations.</summary>
    private static Configuration FailOnStepBound(Configuration c) =>
        c.WithMaxSchedulingSteps(1_000, 20_000).WithFailureOnMaxStepsBoundEnabled(true);

    /// <summary>
    /// The wait-for-submit of <see cref="SyncObj.FindFence(ulong, TimeSpan, CancellationToken)"/> and of the
    /// syncobj wait: register a submit waiter (under the syncobj's lock), then wait for a writer to capture
    /// the fence for it, with the blocking wait replaced by a controlled spin (Fence.Wait parks on a
    /// ManualResetEventSlim, which Coyote cannot control).
    /// </summary>
    private static Fence WaitForSubmit(SyncObj s, ulong point)
    {
        var woken = new StrongBox<int>();
        SyncObj.SubmitWaiter waiter = s.AddSubmitWaiter(point, _ => Volatile.Write(ref woken.Value, 1));
        try
        {
            while (Volatile.Read(ref waiter.Captured) is null)
            {
                SchedulingPoint.Yield(); // a lost hand-over spins here until the step bound
            }

            return waiter.Captured!;
        }
        finally
        {
            s.RemoveSubmitWaiter(waiter);
        }
    }

    [Fact]
    public void WaitForSubmitAgainstReplaceNullReplace_CapturesASubmittedFence() => CoyoteHarness.Check(output, async () =>
    {
        // Issue 11: Replace(f1), Replace(null), Replace(f2) back to back lost f1 for a waiter that woke
        // after the null. The writer now hands its fence over under the lock: the waiter gets f1 when it
        // registered before f1's submission, else f2; never nothing.
        var s = new SyncObj();
        FenceSource f1 = new(FenceContext.Allocate(), 1), f2 = new(FenceContext.Allocate(), 1);
        Task<Fence> waiter = Task.Run(() => WaitForSubmit(s, 0));
        Task writer = Task.Run(() =>
        {
            s.Replace(f1);
            s.Replace(null);
            s.Replace(f2);
        });

        Fence found = await waiter;
        await writer;
        Specification.Assert(ReferenceEquals(found, f1) || ReferenceEquals(found, f2), "the waiter captured {0}, not a submitted fence", found);
        Specification.Assert(s.SubmitWaiterCountForTesting() == 0, "a waiter stayed registered");
    }, configure: FailOnStepBound);

    [Fact]
    public void WaitForSubmitAgainstConcurrentAddPoint_NoLostWakeUp() => CoyoteHarness.Check(output, async () =>
    {
        var s = new SyncObj();
        ulong ctx = FenceContext.Allocate();
        FenceSource f1 = new(ctx, 1), f2 = new(ctx, 2), f3 = new(ctx, 3);

        // Two waiters share the change fence; two adders race their CASes on the pointer (point 1 may land
        // after point 2 or 3: an unordered point, which still counts as submitted up to the head).
        Task<Fence> w2 = Task.Run(() => WaitForSubmit(s, 2));
        Task<Fence> w3 = Task.Run(() => WaitForSubmit(s, 3));
        Task a1 = Task.Run(() =>
        {
            s.AddPoint(1, f1);
            s.AddPoint(3, f3);
        });
        Task a2 = Task.Run(() => s.AddPoint(2, f2));

        Fence found2 = await w2;
        Fence found3 = await w3;
        await a1;
        await a2;

        Specification.Assert(found2 is not null && found3 is not null, "a waiter returned no fence");
        Specification.Assert(s.QueryPoint(lastSubmitted: true) == 3, "last submitted {0}, expected 3", s.QueryPoint(lastSubmitted: true));

        // No point was lost by the CASes: the timeline holds all three contained fences.
        var contained = new List<Fence>();
        foreach (Fence node in FenceChain.ForEach(s.Fence))
        {
            contained.Add(FenceChain.Contained(node));
        }

        Specification.Assert(contained.Contains(f1) && contained.Contains(f2) && contained.Contains(f3),
            "a point added concurrently is missing from the timeline ({0} nodes)", contained.Count);
    }, configure: FailOnStepBound);

    [Fact]
    public void QueryAgainstAddAndSignal_NeverGoesBackwardsNorAhead() => CoyoteHarness.Check(output, async () =>
    {
        var s = new SyncObj();
        ulong ctx = FenceContext.Allocate();
        FenceSource[] f = [new(FenceContext.Stub, 0), new(ctx, 1), new(ctx, 2), new(ctx, 3)];

        bool AllSignalledUpTo(ulong p)
        {
            for (ulong i = 1; i <= p; i++)
            {
                if (!f[i].IsSignaled)
                {
                    return false;
                }
            }

            return true;
        }

        Task adder = Task.Run(() =>
        {
            for (ulong p = 1; p <= 3; p++)
            {
                s.AddPoint(p, f[p]);
            }
        });
        Task signaller = Task.Run(() =>
        {
            f[2].Signal();
            f[3].Signal();
            f[1].Signal();
        });
        Task reader = Task.Run(() =>
        {
            ulong last = 0, lastSubmitted = 0;
            for (int i = 0; i < 4; i++)
            {
                ulong submitted = s.QueryPoint(lastSubmitted: true);
                ulong q = s.QueryPoint();
                Specification.Assert(q >= last, "QueryPoint went back from {0} to {1}", last, q);
                Specification.Assert(AllSignalledUpTo(q), "QueryPoint reported {0} with a fence up to it pending", q);
                Specification.Assert(submitted >= lastSubmitted, "last-submitted query went back from {0} to {1}", lastSubmitted, submitted);
                last = q;
                lastSubmitted = submitted;
            }
        });

        await adder;
        await signaller;
        await reader;
        Specification.Assert(s.QueryPoint() == 3, "QueryPoint {0} after every point signalled", s.QueryPoint());
    });

    /// <summary>What the public blocking waits call that Coyote does not control.</summary>
    private static readonly string[] s_eventCalls =
    [
        "System.Threading.ManualResetEventSlim..ctor",
        "System.Threading.ManualResetEventSlim.Wait",
        "System.Threading.ManualResetEventSlim.Set",
        "System.Threading.ManualResetEventSlim.Reset",
    ];

    [Fact]
    public void PublicWaitForSubmitAgainstAddPoint_NoLostWakeUp_Fuzzing() => CoyoteHarness.Check(output, async () =>
    {
        // The real public waits (FindFence with a timeout, and the timeline wait with WAIT_FOR_SUBMIT) park
        // on ManualResetEventSlims: systematic fuzzing, as in FenceWaitTests. A lost wake-up shows as a
        // timeout far longer than any run (-ETIME / false), which fails the test.
        var s = new SyncObj();
        ulong ctx = FenceContext.Allocate();
        FenceSource f1 = new(ctx, 1), f2 = new(ctx, 2);
        TimeSpan patience = TimeSpan.FromSeconds(30);

        Task<Fence> finder = Task.Run(() => s.FindFence(2, patience));
        Task<bool> waiter = Task.Run(() => SyncObj.Wait([s], [1UL], patience, SyncObjWaitOptions.WaitForSubmit | SyncObjWaitOptions.WaitAll, out _));
        Task adder = Task.Run(() =>
        {
            s.AddPoint(1, f1);
            f1.Signal();
            s.AddPoint(2, f2);
        });

        await adder;
        Fence found = await finder;
        Specification.Assert(found is not null, "FindFence returned no fence for a submitted point");
        Specification.Assert(await waiter, "the WAIT_FOR_SUBMIT wait for point 1 timed out");
    }, configure: c => c.WithSystematicFuzzingEnabled(true), expectedUncontrolled: s_eventCalls);
}
