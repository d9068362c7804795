namespace FenceCore.Tests.Fences;

/// <summary>Issue 14: one re-armable callback (<see cref="RearmingCallback"/>) serves the fence chain, the
/// virtual GPU's dependency waiter and its CPU access. These pin its own contract.</summary>
public sealed class RearmingCallbackTests
{
    /// <summary>Waits for every fence of a list, one node for all of them.</summary>
    private sealed class WaitAll(IReadOnlyList<Fence> fences) : RearmingCallback
    {
        private int _next;

        public int Invocations { get; private set; }

        public bool Done { get; private set; }

        public Fence? WaitingOn => ArmedOn;

        public void Start() => Done = !ArmOnNext();

        public void Abandon() => Unlink();

        protected override Fence? NextInWalk() => _next < fences.Count ? fences[_next++] : null;

        protected internal override void Invoke(Fence fence)
        {
            Invocations++;
            Done = !ArmOnNext();
        }
    }

    [Fact]
    public void OneNode_WaitsForEachPendingFenceInTurn_SkippingSignalledOnes()
    {
        var a = new FenceSource(FenceContext.Allocate(), 1);
        var b = new FenceSource(FenceContext.Allocate(), 1);
        var c = new FenceSource(FenceContext.Allocate(), 1);
        b.Signal(); // already signalled: the walk passes it without registering
        var wait = new WaitAll([a, b, c]);

        wait.Start();
        Assert.False(wait.Done);
        Assert.Same(a, wait.WaitingOn);

        c.Signal(); // not registered on c yet: nothing runs
        Assert.Equal(0, wait.Invocations);

        a.Signal(); // a runs the node; b and c have signalled, so the walk ends
        Assert.Equal(1, wait.Invocations);
        Assert.True(wait.Done);
        Assert.Null(wait.WaitingOn);
    }

    [Fact]
    public void Unlink_TakesTheNodeOffItsFence_SoItNeverRuns()
    {
        var a = new FenceSource(FenceContext.Allocate(), 1);
        var wait = new WaitAll([a]);
        wait.Start();
        Assert.True(wait.IsQueued);

        wait.Abandon();
        Assert.False(wait.IsQueued);
        Assert.Null(wait.WaitingOn);
        a.Signal();
        Assert.Equal(0, wait.Invocations);
    }

    [Fact]
    public void AWalkOfSignalledFences_EndsAtOnce_WithoutRegistering()
    {
        var a = new FenceSource(FenceContext.Allocate(), 1);
        a.Signal();
        var wait = new WaitAll([a, Fence.CreateSignaledStub(TimeSpan.FromTicks(0))]);
        wait.Start();
        Assert.True(wait.Done);
        Assert.False(wait.IsQueued);
    }
}
