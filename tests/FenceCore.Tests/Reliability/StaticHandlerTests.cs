namespace FenceCore.Tests.Reliability;

/// <summary>Tests that attach a handler to the process-wide <see cref="Fence.CallbackFailed"/> event run alone.</summary>
[CollectionDefinition(nameof(ProcessWideCallbackHandler), DisableParallelization = true)]
public sealed class ProcessWideCallbackHandler;

/// <summary>A throwing <see cref="Fence.CallbackFailed"/> handler inside the sw_sync drain (issue 11).</summary>
[Collection(nameof(ProcessWideCallbackHandler))]
public class StaticHandlerTests
{
    [Fact]
    public void ThrowingCallbackFailedHandler_InsideTheSwSyncDrain_DoesNotStopTheTimeline()
    {
        static void Rethrow(object? sender, FenceCallbackFailedEventArgs e) => throw new InvalidOperationException("handler bug", e.Exception);
        using var timeline = new SwSyncTimeline("handler");
        Fence p1 = timeline.CreateFence(1);
        Fence p2 = timeline.CreateFence(2);
        p1.AddCallback(_ => throw new InvalidOperationException("consumer bug"));
        Fence.CallbackFailed += Rethrow;
        try
        {
            Assert.Throws<AggregateException>(() => timeline.Increment(2));
        }
        finally
        {
            Fence.CallbackFailed -= Rethrow;
        }

        Assert.True(p2.IsSignaledFlag);
        Fence p3 = timeline.CreateFence(3);
        timeline.Increment(); // before the fix the drain flag stayed set and this never signalled
        Assert.True(p3.IsSignaledFlag);
    }
}
