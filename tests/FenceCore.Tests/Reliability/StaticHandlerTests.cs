namespace FenceCore.Tests.Reliability;

/// <summary>Tests that observe the default callback-failure policy through its process-wide test seam run alone.</summary>
[CollectionDefinition(nameof(DefaultCallbackFailurePolicy), DisableParallelization = true)]
public sealed class DefaultCallbackFailurePolicy;

/// <summary>
/// The default policy for a callback that throws (issue 13): never the producer's <c>Signal</c>, never a
/// caller of <c>Poll</c>; an unhandled exception on the thread pool, observed here through the seam.
/// </summary>
[Collection(nameof(DefaultCallbackFailurePolicy))]
public class StaticHandlerTests
{
    private static List<FenceCallbackException> Observe(Action body)
    {
        var seen = new List<FenceCallbackException>();
        Fence.EscalateForTesting = e =>
        {
            lock (seen)
            {
                seen.Add(e);
            }
        };
        try
        {
            body();
        }
        finally
        {
            Fence.EscalateForTesting = null;
        }

        return seen;
    }

    [Fact]
    public void ThrowingCallback_OfAPlainSource_IsEscalated_NotThrownFromSignal()
    {
        var f = new FenceSource(FenceContext.Allocate(), 1);
        var boom = new InvalidOperationException("consumer bug");
        f.AddCallback(_ => throw boom);
        bool signalled = false;

        List<FenceCallbackException> seen = Observe(() => signalled = f.Signal()); // threw before issue 13

        Assert.True(signalled);
        FenceCallbackException e = Assert.Single(seen);
        Assert.Same(f, e.Fence);
        Assert.Same(boom, e.InnerException);
        Assert.Contains($"{f.Context}:1", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ThrowingTimelineHandler_IsEscalated_WithBothExceptions_AndTheDrainGoesOn()
    {
        var timeline = new SwSyncTimeline("handler", (_, ex) => throw new InvalidOperationException("handler bug", ex));
        Fence p1 = timeline.CreateFence(1);
        Fence p2 = timeline.CreateFence(2);
        p1.AddCallback(_ => throw new InvalidOperationException("consumer bug"));

        List<FenceCallbackException> seen = Observe(() => timeline.Increment(2));

        var both = Assert.IsType<AggregateException>(Assert.Single(seen).InnerException);
        Assert.Equal(["consumer bug", "handler bug"], both.InnerExceptions.Select(x => x.Message));
        Assert.True(p2.IsSignaled);
        Fence p3 = timeline.CreateFence(3);
        timeline.Increment();
        Assert.True(p3.IsSignaled);
        timeline.Dispose();
    }

    [Fact]
    public void Poll_ThatSignals_NeverThrowsTheConsumersException_ToItsCaller()
    {
        var f = new Fences.TestFences.HookedFence(FenceContext.Allocate(), 1);
        f.AddCallback(_ => throw new InvalidOperationException("consumer bug"));
        f.HardwareDone = true;
        bool polled = false;

        List<FenceCallbackException> seen = Observe(() => polled = f.Poll()); // IsSignaled threw before issue 13

        Assert.True(polled);
        Assert.Equal("consumer bug", Assert.Single(seen).InnerException!.Message);
    }
}
