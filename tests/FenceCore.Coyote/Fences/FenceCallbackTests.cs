using Microsoft.Coyote.Specifications;
using Xunit.Abstractions;

namespace FenceCore.Coyote.Fences;

/// <summary>
/// The callback list (Fence.AddCallback / RemoveCallback / SignalCore): every callback runs exactly
/// once or is removed, never both; none is lost; a remove that returns true means it never runs; an add
/// that returns false means it never runs and the fence had signalled.
/// </summary>
public sealed class FenceCallbackTests(ITestOutputHelper output)
{
    private static FenceSource NewFence() => new(FenceContext.Allocate(), 1);

    /// <summary>Checks one node's fate against what add and remove returned.</summary>
    private static void AssertFate(string name, CountingCallback node, bool added, bool removed)
    {
        int runs = node.Runs;
        Specification.Assert(runs <= 1, "{0} ran {1} times", name, runs);
        Specification.Assert(!(removed && runs != 0), "{0}: RemoveCallback returned true but it ran", name);
        Specification.Assert(added || runs == 0, "{0}: AddCallback returned false but it ran", name);
        Specification.Assert(!added || removed || runs == 1, "{0}: queued, not removed, but never ran (lost)", name);
        Specification.Assert(!node.IsQueued, "{0} still queued after the fence signalled", name);
        Specification.Assert(runs == 0 || node.StatusSeen == 1, "{0} ran before the fence was signalled (status {1})", name, node.StatusSeen);
    }

    [Fact]
    public void SignalAgainstAddAndRemove_EachCallbackRunsOnceOrIsRemoved() => CoyoteHarness.Check(output, async () =>
    {
        FenceSource fence = NewFence();
        var early = new CountingCallback();
        var late = new CountingCallback();
        Specification.Assert(fence.AddCallback(early), "add on a pending fence failed");

        Task signaller = Task.Run(() => fence.Signal());
        Task<bool> removeEarly = Task.Run(() => fence.RemoveCallback(early));
        Task<(bool Added, bool SignaledWhenRefused)> addLate = Task.Run(() =>
        {
            bool added = fence.AddCallback(late);
            return (added, added || fence.IsSignaled);
        });

        await signaller;
        bool earlyRemoved = await removeEarly;
        (bool lateAdded, bool signaledWhenRefused) = await addLate;

        Specification.Assert(signaledWhenRefused, "AddCallback returned false on a fence that was not signalled");
        AssertFate("early", early, added: true, earlyRemoved);
        AssertFate("late", late, lateAdded, removed: false);
    });

    [Fact]
    public void AddThenRemoveAgainstSignal_RemovedCallbackNeverRuns() => CoyoteHarness.Check(output, async () =>
    {
        FenceSource fence = NewFence();
        var node = new CountingCallback();
        var other = new CountingCallback();

        Task<(bool Added, bool Removed)> addRemove = Task.Run(() =>
        {
            bool added = fence.AddCallback(node);
            bool removed = added && fence.RemoveCallback(node);
            return (added, removed);
        });
        Task<bool> addOther = Task.Run(() => fence.AddCallback(other));
        Task signaller = Task.Run(() => fence.Signal());

        (bool added, bool removed) = await addRemove;
        bool otherAdded = await addOther;
        await signaller;

        AssertFate("node", node, added, removed);
        AssertFate("other", other, otherAdded, removed: false);
    });

    [Fact]
    public void ReAddOfRemovedNodeAgainstSignal_ReusesItsOwnCellAndRunsOnce() => CoyoteHarness.Check(output, async () =>
    {
        // The removed node was unlinked, so its re-add needs no other cell and allocates nothing.
        FenceSource fence = NewFence();
        var node = new CountingCallback();
        var below = new CountingCallback();
        Specification.Assert(fence.AddCallback(below), "add failed");
        Specification.Assert(fence.AddCallback(node), "add failed");
        Specification.Assert(fence.RemoveCallback(node), "remove of a queued node failed");
        Specification.Assert(fence.LinkedCallbackCellsForTesting() == 1, "the removed node is still linked");

        Task<(bool Added, bool Removed)> reAdd = Task.Run(() =>
        {
            bool added = fence.AddCallback(node);
            bool removed = added && fence.RemoveCallback(node);
            return (added, removed);
        });
        Task<bool> removeBelow = Task.Run(() => fence.RemoveCallback(below));
        Task signaller = Task.Run(() => fence.Signal());

        (bool added, bool removed) = await reAdd;
        bool belowRemoved = await removeBelow;
        await signaller;

        AssertFate("node", node, added, removed);
        AssertFate("below", below, added: true, belowRemoved);
    });

    [Fact]
    public void RemoveRacesSignalThenReAddElsewhere_RunsOnlyForTheNewFence() => CoyoteHarness.Check(output, async () =>
    {
        // The node sits below another, so its unlink is a CAS on the cell above, which the signaller may
        // already have read. A remove that returned true must not leave the node reachable by that walk.
        FenceSource first = NewFence();
        FenceSource second = NewFence();
        var node = new FenceSeenCallback();
        var above = new CountingCallback();
        Specification.Assert(first.AddCallback(node) && first.AddCallback(above), "add failed");

        Task signaller = Task.Run(() => first.Signal());
        Task<(bool Removed, bool ReAdded)> mover = Task.Run(() =>
        {
            bool removed = first.RemoveCallback(node);
            return (removed, removed && second.AddCallback(node));
        });

        await signaller;
        (bool removed, bool reAdded) = await mover;
        Specification.Assert(!removed || reAdded, "a removed node could not be queued on a pending fence");
        second.Signal();

        Specification.Assert(node.Runs == 1, "node ran {0} times", node.Runs);
        Specification.Assert(ReferenceEquals(node.LastFence, removed ? second : first),
            "node ran for the wrong fence (removed from the first: {0})", removed);
        AssertFate("above", above, added: true, removed: false);
    }, iterations: 10_000); // the canary's copy of this race is hit by under 1% of schedules

    [Fact]
    public void NeighbouringRemovesRaceSignal_NoneLostAndBothFreed() => CoyoteHarness.Check(output, async () =>
    {
        // Two removers unlink adjacent cells while the signal walks: neither unlink may be lost, and both
        // nodes must be free (re-addable) once their removes return.
        FenceSource fence = NewFence();
        var bottom = new CountingCallback();
        var b = new CountingCallback();
        var c = new CountingCallback();
        var top = new CountingCallback();
        Specification.Assert(fence.AddCallback(bottom) && fence.AddCallback(b) && fence.AddCallback(c) && fence.AddCallback(top), "add failed");

        Task<bool> removeB = Task.Run(() => fence.RemoveCallback(b));
        Task<bool> removeC = Task.Run(() => fence.RemoveCallback(c));
        Task<bool> signaller = Task.Run(() => fence.Signal());

        bool bRemoved = await removeB;
        bool cRemoved = await removeC;
        await signaller;

        AssertFate("bottom", bottom, added: true, removed: false);
        AssertFate("b", b, added: true, bRemoved);
        AssertFate("c", c, added: true, cRemoved);
        AssertFate("top", top, added: true, removed: false);
        FenceSource next = NewFence();
        Specification.Assert(next.AddCallback(b) && next.AddCallback(c), "a removed or run node could not be re-added");
    });

    [Fact]
    public void NeighbouringRemovesOnAPendingFence_UnlinkBoth() => CoyoteHarness.Check(output, async () =>
    {
        FenceSource fence = NewFence();
        var nodes = new CountingCallback[4];
        for (int i = 0; i < nodes.Length; i++)
        {
            nodes[i] = new CountingCallback();
            Specification.Assert(fence.AddCallback(nodes[i]), "add failed");
        }

        Task<bool> r1 = Task.Run(() => fence.RemoveCallback(nodes[1]));
        Task<bool> r2 = Task.Run(() => fence.RemoveCallback(nodes[2]));
        Task<bool> add = Task.Run(() => fence.AddCallback(new CountingCallback()));
        Specification.Assert(await r1 && await r2 && await add, "a remove or add on a pending fence failed");
        Specification.Assert(fence.LinkedCallbackCellsForTesting() == 3, "linked cells: {0}, expected 3", fence.LinkedCallbackCellsForTesting());
        fence.Signal();
        AssertFate("0", nodes[0], added: true, removed: false);
        AssertFate("3", nodes[3], added: true, removed: false);
    });

    [Fact]
    public void RemoveRacingTheAddOfTheSameNode_NeitherCrashesNorStrandsTheNode() => CoyoteHarness.Check(output, async () =>
    {
        // A caller race (the node is the caller's, as a dma_fence_cb is), but it must not throw from inside
        // the list, hang, or leave the node unusable: a remove that finds the node claimed but not yet
        // linked waits for the push.
        FenceSource fence = NewFence();
        var node = new CountingCallback();
        Task<bool> add = Task.Run(() => fence.AddCallback(node));
        Task<bool> remove = Task.Run(() => fence.RemoveCallback(node));
        bool added = await add;
        bool removed = await remove;
        fence.Signal();

        AssertFate("node", node, added, removed);
        FenceSource next = NewFence();
        Specification.Assert(next.AddCallback(node), "the node could not be added again");
        next.Signal();
    });

    [Fact]
    public void ConcurrentAddsOfOneNode_ExactlyOneIsQueued() => CoyoteHarness.Check(output, async () =>
    {
        // The node's claim is one CAS: two adds (to one fence or to two) cannot both succeed.
        FenceSource f1 = NewFence();
        FenceSource f2 = NewFence();
        var node = new CountingCallback();
        static bool TryAdd(Fence f, FenceCallback n)
        {
            try
            {
                return f.AddCallback(n);
            }
            catch (InvalidOperationException)
            {
                return false;
            }
        }

        Task<bool> a1 = Task.Run(() => TryAdd(f1, node));
        Task<bool> a2 = Task.Run(() => TryAdd(f1, node));
        Task<bool> a3 = Task.Run(() => TryAdd(f2, node));
        int added = (await a1 ? 1 : 0) + (await a2 ? 1 : 0) + (await a3 ? 1 : 0);
        f1.Signal();
        f2.Signal();

        Specification.Assert(added == 1, "{0} concurrent adds of one node succeeded", added);
        Specification.Assert(node.Runs == 1, "node ran {0} times", node.Runs);
    });

    [Fact]
    public void AddPopsRemovedHeadCellsAgainstSignal_NoCallbackLostOrDuplicated() => CoyoteHarness.Check(output, async () =>
    {
        // Two removed cells on top of a queued one: both adders may pop them while the signal takes the list.
        FenceSource fence = NewFence();
        var bottom = new CountingCallback();
        var removed1 = new CountingCallback();
        var removed2 = new CountingCallback();
        var a = new CountingCallback();
        var b = new CountingCallback();
        Specification.Assert(fence.AddCallback(bottom), "add failed");
        Specification.Assert(fence.AddCallback(removed1), "add failed");
        Specification.Assert(fence.AddCallback(removed2), "add failed");
        Specification.Assert(fence.RemoveCallback(removed2) && fence.RemoveCallback(removed1), "remove failed");

        Task<bool> addA = Task.Run(() => fence.AddCallback(a));
        Task<bool> addB = Task.Run(() => fence.AddCallback(b));
        Task signaller = Task.Run(() => fence.Signal());

        bool aAdded = await addA;
        bool bAdded = await addB;
        await signaller;

        AssertFate("bottom", bottom, added: true, removed: false);
        AssertFate("removed1", removed1, added: true, removed: true);
        AssertFate("removed2", removed2, added: true, removed: true);
        AssertFate("a", a, aAdded, removed: false);
        AssertFate("b", b, bAdded, removed: false);
    });

    [Fact]
    public void RemoveAfterSignalIsVisible_ReturnsFalseAndTheCallbackRuns() => CoyoteHarness.Check(output, async () =>
    {
        // dma_fence_remove_callback: false once the fence has signalled. A remover that has already
        // seen the fence signalled must not take the callback away from the signaller.
        FenceSource fence = NewFence();
        var node = new CountingCallback();
        Specification.Assert(fence.AddCallback(node), "add failed");

        Task signaller = Task.Run(() => fence.Signal());
        Task<(bool SawSignaled, bool Removed)> remover = Task.Run(() =>
        {
            bool sawSignaled = fence.IsSignaled;
            return (sawSignaled, fence.RemoveCallback(node));
        });

        await signaller;
        (bool sawSignaled, bool removed) = await remover;
        Specification.Assert(!(sawSignaled && removed), "RemoveCallback returned true after the fence was seen signalled");
        AssertFate("node", node, added: true, removed);
    });

    [Fact]
    public void CallbacksRunInRegistrationOrder_WhileAddsRace() => CoyoteHarness.Check(output, async () =>
    {
        FenceSource fence = NewFence();
        var order = new int[3];
        int next = 0;
        FenceCallback Node(int id) => FenceCallback.Create(_ => order[Interlocked.Increment(ref next) - 1] = id);

        Specification.Assert(fence.AddCallback(Node(1)), "add failed");
        Task<bool> add2 = Task.Run(() => fence.AddCallback(Node(2)) && fence.AddCallback(Node(3)));
        Task signaller = Task.Run(() => fence.Signal());
        bool added = await add2;
        await signaller;

        int ran = Volatile.Read(ref next);
        Specification.Assert(order[0] == 1, "the first registered callback did not run first");
        for (int i = 1; i < ran; i++)
        {
            Specification.Assert(order[i] == order[i - 1] + 1, "callbacks ran out of registration order: {0}", string.Join(",", order));
        }

        Specification.Assert(!added || ran == 3, "queued callbacks were lost");
    });

    [Fact]
    public void AsynchronousWalk_AgainstRemoveThenReAddElsewhere_TheNodeRunsOnlyForTheFenceItIsOn() => CoyoteHarness.Check(output, async () =>
    {
        // The twin of CanaryTests.BrokenDeferredWalkEndingEarly_IsCaughtByCoyote on the real fence: a remove
        // that races a deferred walk returns only once the walk is past its node, so the node can move.
        var first = new FenceSource(FenceContext.Allocate(), 1, FenceOptions.RunCallbacksAsynchronously);
        var second = new FenceSource(FenceContext.Allocate(), 1, FenceOptions.RunCallbacksAsynchronously);
        Fence? ranFor = null;
        int runs = 0;
        FenceCallback node = FenceCallback.Create(f =>
        {
            Volatile.Write(ref ranFor, f);
            Interlocked.Increment(ref runs);
        });
        first.AddCallback(node);

        Task signaller = Task.Run(() => first.Signal());
        Task<bool> mover = Task.Run(() => first.RemoveCallback(node) && second.AddCallback(node));
        await signaller;
        bool moved = await mover;
        second.Signal();
        while (Volatile.Read(ref runs) == 0)
        {
            await Task.Delay(1); // the deferred walks
        }

        Specification.Assert(Volatile.Read(ref runs) == 1, "node ran {0} times", Volatile.Read(ref runs));
        Specification.Assert(ReferenceEquals(Volatile.Read(ref ranFor), moved ? second : first), "node ran for the fence it was removed from");
    });

    [Fact]
    public void AsynchronousWalk_AgainstRemoveAndAdd_EachCallbackRunsOnceOrIsRemoved() => CoyoteHarness.Check(output, async () =>
    {
        // FenceOptions.RunCallbacksAsynchronously: the signal is published on the signaller's thread and
        // the walk (with the end-of-walk bit a racing remover waits for) runs later on the thread pool.
        var fence = new FenceSource(FenceContext.Allocate(), 1, FenceOptions.RunCallbacksAsynchronously);
        var early = new CountingCallback();
        var marker = new CountingCallback();
        var late = new CountingCallback();
        Specification.Assert(fence.AddCallback(early), "add on a pending fence failed");
        Specification.Assert(fence.AddCallback(marker), "add on a pending fence failed");

        Task signaller = Task.Run(() =>
        {
            fence.Signal();
            Specification.Assert(fence.IsSignaled, "Signal returned before the signal was published");
        });
        Task<bool> removeEarly = Task.Run(() => fence.RemoveCallback(early));
        Task<bool> addLate = Task.Run(() => fence.AddCallback(late));

        await signaller;
        bool earlyRemoved = await removeEarly;
        bool lateAdded = await addLate;
        while (marker.Runs == 0 || (lateAdded && late.Runs == 0))
        {
            await Task.Delay(1); // the deferred walk
        }

        AssertFate("early", early, added: true, earlyRemoved);
        AssertFate("marker", marker, added: true, removed: false);
        AssertFate("late", late, lateAdded, removed: false);
    });
}
