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
    private static Fence NewFence() => new(FenceContext.Allocate(), 1);

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
        Fence fence = NewFence();
        var early = new CountingCallback();
        var late = new CountingCallback();
        Specification.Assert(fence.AddCallback(early), "add on a pending fence failed");

        Task signaller = Task.Run(() => fence.Signal());
        Task<bool> removeEarly = Task.Run(() => fence.RemoveCallback(early));
        Task<(bool Added, bool SignaledWhenRefused)> addLate = Task.Run(() =>
        {
            bool added = fence.AddCallback(late);
            return (added, added || fence.IsSignaledFlag);
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
        Fence fence = NewFence();
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
    public void ReAddOfRemovedNodeAgainstSignal_UsesProxyCellAndRunsOnce() => CoyoteHarness.Check(output, async () =>
    {
        // The node's own cell stays linked (Removed) in the list, so the re-add must go through a proxy.
        Fence fence = NewFence();
        var node = new CountingCallback();
        var below = new CountingCallback();
        Specification.Assert(fence.AddCallback(below), "add failed");
        Specification.Assert(fence.AddCallback(node), "add failed");
        Specification.Assert(fence.RemoveCallback(node), "remove of a queued node failed");

        Task<(bool Added, bool Removed)> reAdd = Task.Run(() =>
        {
            bool added = fence.AddCallback(node);
            FenceCallback? cell = Volatile.Read(ref node.ActiveCell);
            Specification.Assert(cell is null || !ReferenceEquals(cell, node), "re-add reused the node's own cell while it is still linked");
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
    public void AddPopsRemovedHeadCellsAgainstSignal_NoCallbackLostOrDuplicated() => CoyoteHarness.Check(output, async () =>
    {
        // Two removed cells on top of a queued one: both adders may pop them while the signal takes the list.
        Fence fence = NewFence();
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
        Fence fence = NewFence();
        var node = new CountingCallback();
        Specification.Assert(fence.AddCallback(node), "add failed");

        Task signaller = Task.Run(() => fence.Signal());
        Task<(bool SawSignaled, bool Removed)> remover = Task.Run(() =>
        {
            bool sawSignaled = fence.IsSignaledFlag;
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
        Fence fence = NewFence();
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
}
