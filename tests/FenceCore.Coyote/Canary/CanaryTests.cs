using Microsoft.Coyote;
using Microsoft.Coyote.Specifications;
using Xunit.Abstractions;

namespace FenceCore.Coyote.Canary;

/// <summary>
/// Proves the Coyote setup can find a bug: if rewriting silently stops working (the build target did
/// not run, a runtime change made the rewritten calls pass through), these tests fail.
/// </summary>
public sealed class CanaryTests(ITestOutputHelper output)
{
    /// <summary>For the canaries whose window is narrow: the engine stops at the first bug, so a canary
    /// costs only what it takes to find it (the run-queue canary found its bug after 160 and 324 iterations in
    /// two runs, and not within 1,000 in a third).</summary>
    private const uint CanaryIterations = 20_000;

    /// <summary>The same scenario as <c>FenceCallbackTests</c>: a queued callback, a signal and a remove
    /// race; "removed" and "ran" must never both hold.</summary>
    private static Task RemoveRacesSignal() => RemoveRacesSignal(BrokenRemoveCallbackList.SeededBug.RemoveWithoutCas);

    private static async Task RemoveRacesSignal(BrokenRemoveCallbackList.SeededBug bug)
    {
        var list = new BrokenRemoveCallbackList(bug);
        int runs = 0;
        BrokenRemoveCallbackList.Cell cell = list.Add(() => Interlocked.Increment(ref runs));

        Task signaller = Task.Run(() => list.Signal());
        Task<bool> remover = Task.Run(() => list.RemoveCallback(cell));
        await signaller;
        bool removed = await remover;

        int ran = Volatile.Read(ref runs);
        Specification.Assert(!(removed && ran == 1), "canary: callback both removed and run");
        Specification.Assert(removed || ran == 1, "canary: callback neither removed nor run");
    }

    [Fact]
    public void BrokenRemoveWithoutCas_IsCaughtByCoyote()
    {
        CoyoteHarness.Outcome outcome = CoyoteHarness.Explore(output, RemoveRacesSignal, CoyoteHarness.DefaultIterations,
            configure: null, nameof(BrokenRemoveWithoutCas_IsCaughtByCoyote));

        Assert.True(outcome.Bugs > 0, "Coyote did not find the seeded read-then-write race: systematic testing is not in control.");
        Assert.Contains(outcome.BugReports, r => r.Contains("canary: callback both removed and run", StringComparison.Ordinal));
        Assert.Empty(outcome.UncontrolledInvocations);
    }

    /// <summary>The signaller frees cells with a store when it saw no remover; a remover that announces
    /// itself only after taking the cell lets that store overwrite its claim.</summary>
    [Fact]
    public void BrokenLateRemoverAnnounce_IsCaughtByCoyote()
    {
        CoyoteHarness.Outcome outcome = CoyoteHarness.Explore(output, () => RemoveRacesSignal(BrokenRemoveCallbackList.SeededBug.LateRemoverAnnounce),
            CanaryIterations, configure: null, nameof(BrokenLateRemoverAnnounce_IsCaughtByCoyote));

        Assert.True(outcome.Bugs > 0, "Coyote did not find the late remover announcement.");
        Assert.Contains(outcome.BugReports, r => r.Contains("canary: callback both removed and run", StringComparison.Ordinal));
        Assert.Empty(outcome.UncontrolledInvocations);
    }

    /// <summary>The race of <c>FenceArrayTests.SignalOnAll_MembersSignalAgainstEnable_*</c> on the broken
    /// walk: the first member signals while the walk registers on it; the walk must not finish while a
    /// member is pending.</summary>
    private static async Task AllOfWalkAgainstSignals()
    {
        ulong context = FenceContext.Allocate();
        FenceSource[] members = [new(context, 1), new(context, 2), new(context, 3)];
        var walk = new BrokenAllOfWalk(members);

        Task start = Task.Run(walk.Start);
        Task s0 = Task.Run(() => members[0].Signal());
        await start;
        await s0;
        members[1].Signal();
        Specification.Assert(!walk.Done.IsSignaled, "canary: the walk finished before every member signalled");
        members[2].Signal();
    }

    [Fact]
    public void BrokenAllOfWalkAdvancingAfterRegistration_IsCaughtByCoyote()
    {
        CoyoteHarness.Outcome outcome = CoyoteHarness.Explore(output, AllOfWalkAgainstSignals, CanaryIterations,
            configure: null, nameof(BrokenAllOfWalkAdvancingAfterRegistration_IsCaughtByCoyote));

        Assert.True(outcome.Bugs > 0, "Coyote did not find the walk's seeded index race.");
        Assert.Contains(outcome.BugReports, r => r.Contains("canary: the walk finished before every member signalled", StringComparison.Ordinal));
        Assert.Empty(outcome.UncontrolledInvocations);
    }

    /// <summary>
    /// A node is removed while the signal walks, then queued on a second list; it must run only for the list
    /// it is on. Synchronous walk (<c>FenceCallbackTests.RemoveRacesSignalThenReAddElsewhere</c>): the node
    /// sits below another. Deferred walk (<c>FenceCallbackTests.AsynchronousWalk_*</c>): the walk runs on the
    /// thread pool, and the signaller's task completes when it has.
    /// </summary>
    private static async Task RemoveWhileWalkingThenReAddElsewhere(BrokenRemoveCallbackList.SeededBug bug, bool deferredWalk)
    {
        var first = new BrokenRemoveCallbackList(bug);
        var second = new BrokenRemoveCallbackList(bug);
        BrokenRemoveCallbackList? ranFor = null;
        int runs = 0;
        var node = new BrokenRemoveCallbackList.Cell(list =>
        {
            Volatile.Write(ref ranFor, list);
            Interlocked.Increment(ref runs);
        });
        first.Add(node);
        if (!deferredWalk)
        {
            first.Add(() => { });
        }

        Task signaller = deferredWalk ? Task.Run(first.SignalDeferred) : Task.Run(first.Signal);
        Task<bool> mover = Task.Run(() => first.RemoveCallback(node) && second.Add(node));
        await signaller;
        bool moved = await mover;
        if (deferredWalk)
        {
            await second.SignalDeferred();
        }
        else
        {
            second.Signal();
        }

        Specification.Assert(Volatile.Read(ref runs) == 1, "canary: node ran {0} times", Volatile.Read(ref runs));
        Specification.Assert(ReferenceEquals(Volatile.Read(ref ranFor), moved ? second : first), "canary: node ran for the list it was removed from");
    }

    [Fact]
    public void BrokenFreeWithoutRecheck_IsCaughtByCoyote()
    {
        // Under 1% of schedules hit this window, so the search gets 20,000 iterations (it stops at the first bug).
        CoyoteHarness.Outcome outcome = CoyoteHarness.Explore(output, () => RemoveWhileWalkingThenReAddElsewhere(BrokenRemoveCallbackList.SeededBug.FreeWithoutRecheck, deferredWalk: false), 20_000,
            configure: null, nameof(BrokenFreeWithoutRecheck_IsCaughtByCoyote));

        Assert.True(outcome.Bugs > 0, "Coyote did not find the seeded free-while-reachable race in the unlink.");

        // The race shows as a run for the wrong list, a lost run (the old walk marks the re-queued node),
        // or a re-add refused because the old walk claimed the node first.
        Assert.Contains(outcome.BugReports, r => r.Contains("canary: node ran", StringComparison.Ordinal) ||
            r.Contains("already queued", StringComparison.Ordinal));
        Assert.Empty(outcome.UncontrolledInvocations);
    }

    [Fact]
    public void BrokenDeferredWalkEndingEarly_IsCaughtByCoyote()
    {
        CoyoteHarness.Outcome outcome = CoyoteHarness.Explore(output, () => RemoveWhileWalkingThenReAddElsewhere(BrokenRemoveCallbackList.SeededBug.WalkDoneBeforeDeferredWalk, deferredWalk: true), CanaryIterations,
            configure: null, nameof(BrokenDeferredWalkEndingEarly_IsCaughtByCoyote));

        Assert.True(outcome.Bugs > 0, "Coyote did not find the deferred walk's seeded early end-of-walk.");
        Assert.Contains(outcome.BugReports, r => r.Contains("canary: node ran", StringComparison.Ordinal) ||
            r.Contains("already queued", StringComparison.Ordinal));
        Assert.Empty(outcome.UncontrolledInvocations);
    }

    /// <summary>The race of <c>FastSignalTests</c> on the model that links without announcing: an add that
    /// returned true must see its callback run.</summary>
    private static async Task AddAgainstFastSignal()
    {
        var fence = new BrokenFastSignal();
        int runs = 0;
        Task<bool> adder = Task.Run(() => fence.Add(new BrokenFastSignal.Cell(() => Interlocked.Increment(ref runs))));
        Task<bool> signaller = Task.Run(fence.Signal);
        bool added = await adder;
        await signaller;
        Specification.Assert(!added || Volatile.Read(ref runs) == 1, "canary: an added callback never ran");
    }

    [Fact]
    public void BrokenFastSignalWithoutAnnounce_IsCaughtByCoyote()
    {
        CoyoteHarness.Outcome outcome = CoyoteHarness.Explore(output, AddAgainstFastSignal, CoyoteHarness.DefaultIterations,
            configure: null, nameof(BrokenFastSignalWithoutAnnounce_IsCaughtByCoyote));

        Assert.True(outcome.Bugs > 0, "Coyote did not find the seeded add that links without announcing.");
        Assert.Contains(outcome.BugReports, r => r.Contains("canary: an added callback never ran", StringComparison.Ordinal));
        Assert.Empty(outcome.UncontrolledInvocations);
    }

    /// <summary>The await node's pool: the awaiting thread's first node runs on another thread while the
    /// awaiting thread rents for its next await; the first continuation must run, once, and the second not yet.</summary>
    private static async Task NodeComesHomeWhileTheOwnerRents()
    {
        var pool = new BrokenAwaitNodePool.Pool();
        int firstRuns = 0, secondRuns = 0;
        BrokenAwaitNodePool.Node first = BrokenAwaitNodePool.Rent(pool, () => Interlocked.Increment(ref firstRuns));
        Task runner = Task.Run(() => BrokenAwaitNodePool.Run(first));
        Task owner = Task.Run(() => BrokenAwaitNodePool.Rent(pool, () => Interlocked.Increment(ref secondRuns)));
        await runner;
        await owner;
        Specification.Assert(Volatile.Read(ref firstRuns) == 1 && Volatile.Read(ref secondRuns) == 0,
            "canary: the runner ran the owner's next continuation instead of the first");
    }

    [Fact]
    public void BrokenAwaitNodeHomeBeforeItsContinuationIsRead_IsCaughtByCoyote()
    {
        CoyoteHarness.Outcome outcome = CoyoteHarness.Explore(output, NodeComesHomeWhileTheOwnerRents, CoyoteHarness.DefaultIterations,
            configure: null, nameof(BrokenAwaitNodeHomeBeforeItsContinuationIsRead_IsCaughtByCoyote));

        Assert.True(outcome.Bugs > 0, "Coyote did not find the seeded node that goes home before its continuation is read.");
        Assert.Contains(outcome.BugReports, r => r.Contains("canary: the runner ran the owner's next continuation", StringComparison.Ordinal));
        Assert.Empty(outcome.UncontrolledInvocations);
    }

    [Fact]
    public void BrokenSerialDrainWithoutSecondLook_IsCaughtByCoyote()
    {
        var gate = new AsyncLocal<BrokenSerialDrain>();
        CoyoteHarness.Outcome outcome = CoyoteHarness.Explore(output, () =>
        {
            gate.Value = new BrokenSerialDrain();
            return FenceCore.Coyote.VirtualGpu.SerialDrainTests.Scenario(w => gate.Value!.Drain(w, static x => x.TakeOne()), withFault: false);
        }, CoyoteHarness.DefaultIterations, configure: null, nameof(BrokenSerialDrainWithoutSecondLook_IsCaughtByCoyote));

        Assert.True(outcome.Bugs > 0, "Coyote did not find the seeded lost wake-up in the serial drain.");
        Assert.Contains(outcome.BugReports, r => r.Contains("lost wake-up", StringComparison.Ordinal));
        Assert.Empty(outcome.UncontrolledInvocations);
    }

    [Fact]
    public void DependencyTimeoutsLinkingAnEndedWait_IsCaughtByCoyote()
    {
        CoyoteHarness.Outcome outcome = CoyoteHarness.Explore(output, () => FenceCore.Coyote.VirtualGpu.DependencyTimeoutTests.Scenario(kill: false, seededBug: true),
            CanaryIterations, configure: null, nameof(DependencyTimeoutsLinkingAnEndedWait_IsCaughtByCoyote));

        Assert.True(outcome.Bugs > 0, "Coyote did not find the seeded ended wait left in the dependency timeouts' list.");
        Assert.Contains(outcome.BugReports, r => r.Contains("an ended wait was left", StringComparison.Ordinal));
        Assert.Empty(outcome.UncontrolledInvocations);
    }

    [Fact]
    public void BrokenWorkQueueWithoutSecondLook_IsCaughtByCoyote()
    {
        CoyoteHarness.Outcome outcome = CoyoteHarness.Explore(output, () =>
        {
            var queue = new BrokenWorkQueue();
            return FenceCore.Coyote.VirtualGpu.WorkQueueTests.Scenario(queue.Post, () => (queue.Take(out int item), item), queue.Close);
        }, CanaryIterations, configure: null, nameof(BrokenWorkQueueWithoutSecondLook_IsCaughtByCoyote));

        Assert.True(outcome.Bugs > 0, "Coyote did not find the seeded lost wake-up in the run queue.");
        Assert.Contains(outcome.BugReports, r => r.Contains("eadlock", StringComparison.Ordinal));
        Assert.Empty(outcome.UncontrolledInvocations);
    }

    [Fact]
    public void WaitGateResetAfterTheCheck_IsCaughtByCoyote()
    {
        CoyoteHarness.Outcome outcome = CoyoteHarness.Explore(output, () => FenceCore.Coyote.SyncFiles.WaitGateScenario.Run(resetBeforeCheck: false),
            CoyoteHarness.DefaultIterations, configure: null, nameof(WaitGateResetAfterTheCheck_IsCaughtByCoyote));

        Assert.True(outcome.Bugs > 0, "Coyote did not find the seeded lost wake-up in the wait gate.");
        Assert.Contains(outcome.BugReports, r => r.Contains("eadlock", StringComparison.Ordinal));
        Assert.Empty(outcome.UncontrolledInvocations);
    }

    [Fact]
    public void BrokenRemoveWithoutCas_TraceReplaysTheSameBug()
    {
        CoyoteHarness.Outcome found = CoyoteHarness.Explore(output, RemoveRacesSignal, CoyoteHarness.DefaultIterations,
            configure: null, nameof(BrokenRemoveWithoutCas_TraceReplaysTheSameBug));
        Assert.NotNull(found.TracePath);

        string trace = File.ReadAllText(found.TracePath!);
        CoyoteHarness.Outcome replayed = CoyoteHarness.Explore(output, RemoveRacesSignal, 1,
            c => c.WithReproducibleTrace(trace), "replay");

        Assert.Equal(1, replayed.Bugs);
        Assert.Contains(replayed.BugReports, r => r.Contains("canary: callback both removed and run", StringComparison.Ordinal));
    }

    [Fact]
    public void TestAndLibraryAssemblies_AreRewritten() => CoyoteHarness.AssertRewritten();
}
