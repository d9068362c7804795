using static FenceCore.Tests.Fences.TestFences;

namespace FenceCore.Tests.Fences;

/// <summary>Fence behaviour beyond the kernel self-tests: ordering, hooks, callbacks, stubs, size.</summary>
public class FenceBehaviourTests
{
    [Fact]
    public void Callbacks_RunInRegistrationOrder()
    {
        var f = Pending();
        var log = new List<int>();
        for (int i = 0; i < 10; i++)
        {
            int n = i;
            f.AddCallback(_ => log.Add(n));
        }

        f.Signal();
        Assert.Equal(Enumerable.Range(0, 10), log);
    }

    [Fact]
    public void Callback_SeesFinalStatusAndTimestamp()
    {
        var f = Pending();
        int status = 0;
        TimeSpan ts = TimeSpan.Zero;
        f.AddCallback(x =>
        {
            status = x.Status;
            ts = x.Timestamp;
        });

        f.SignalWithTimestamp(-Errno.ECANCELED, TimeSpan.FromTicks(12345));
        Assert.Equal(-Errno.ECANCELED, status);
        Assert.Equal(TimeSpan.FromTicks(12345), ts);
    }

    [Fact]
    public void ThrowingCallback_DoesNotStopOthers_NeverReachesSignal_AndGoesToTheTimelinesHandler()
    {
        var failures = new List<(Fence Fence, Exception Exception)>();
        var timeline = new FenceTimeline("owned", callbackFailed: (fence, ex) => failures.Add((fence, ex)));
        FenceSource f = timeline.CreateFence();
        var before = new Recorder();
        var after = new Recorder();
        f.AddCallback(before);
        f.AddCallback(_ => throw new InvalidOperationException("boom"));
        f.AddCallback(after);

        Assert.True(f.Signal()); // threw FenceCallbackException before issue 13
        (Fence failed, Exception ex) = Assert.Single(failures);
        Assert.Same(f, failed);
        Assert.Equal("boom", Assert.IsType<InvalidOperationException>(ex).Message);
        Assert.Equal(1, before.Count);
        Assert.Equal(1, after.Count);
        Assert.True(f.IsSignaled);
        Assert.Equal(1, f.Status);
    }

    /// <summary>One callback, nothing removed: the signal takes its shortest path (no walk); what the callback
    /// throws still goes to the owner's policy once, the signaller sees nothing, and the node is free again.</summary>
    [Fact]
    public void SoleThrowingCallback_GoesToThePolicyOnce_AndItsNodeIsFreeAgain()
    {
        var failures = new List<(Fence Fence, Exception Exception)>();
        var timeline = new FenceTimeline("sole", callbackFailed: (fence, ex) => failures.Add((fence, ex)));
        FenceSource f = timeline.CreateFence();
        FenceCallback node = FenceCallback.Create(_ => throw new InvalidOperationException("sole"));
        Assert.True(f.AddCallback(node));

        Assert.True(f.SignalWithTimestamp(TimeSpan.FromTicks(7)));
        (Fence failed, Exception ex) = Assert.Single(failures);
        Assert.Same(f, failed);
        Assert.Equal("sole", Assert.IsType<InvalidOperationException>(ex).Message);
        Assert.True(f.IsSignaled);
        Assert.False(node.IsQueued);
        Assert.False(f.RemoveCallback(node));
        FenceSource g = timeline.CreateFence();
        Assert.True(g.AddCallback(node)); // free: it may be queued again
        Assert.True(g.RemoveCallback(node));
    }

    [Fact]
    public void Callback_MayReAddItselfToAnotherFence()
    {
        var a = Pending();
        var b = Pending();
        int runs = 0;
        FenceCallback? node = null;
        node = FenceCallback.Create(x =>
        {
            runs++;
            if (ReferenceEquals(x, a))
            {
                Assert.True(b.AddCallback(node!));
            }
        });
        a.AddCallback(node);

        a.Signal();
        Assert.True(node.IsQueued);
        b.Signal();
        Assert.Equal(2, runs);
        Assert.False(node.IsQueued);
    }

    [Fact]
    public void RemovedNode_CanBeReAddedAtOnce_AndRunsOnlyForItsNewFence()
    {
        var a = Pending();
        var b = Pending();
        var node = new Recorder();
        a.AddCallback(node);
        Assert.True(a.RemoveCallback(node));

        Assert.True(b.AddCallback(node));
        a.Signal();
        Assert.Equal(0, node.Count);
        b.Signal();
        Assert.Equal(1, node.Count);
    }

    [Fact]
    public void RemovedNode_ReAddedToSameFence_RunsOnce()
    {
        var a = Pending();
        var node = new Recorder();
        a.AddCallback(node);
        a.AddCallback(new Recorder());
        Assert.True(a.RemoveCallback(node));
        Assert.True(a.AddCallback(node));

        a.Signal();
        Assert.Equal(1, node.Count);
    }

    [Fact]
    public void AddingAQueuedNode_Throws_AndLeavesItQueuedOnce()
    {
        var a = Pending();
        var b = Pending();
        var node = new Recorder();
        a.AddCallback(node);

        var ex = Assert.Throws<InvalidOperationException>(() => b.AddCallback(node));
        Assert.Contains("already queued", ex.Message, StringComparison.Ordinal);
        b.Signal();
        Assert.Equal(0, node.Count);
        a.Signal();
        Assert.Equal(1, node.Count);
    }

    [Fact]
    public void RemoveCallback_OfANodeNeverAdded_ReturnsFalse()
    {
        var a = Pending();
        Assert.False(a.RemoveCallback(new Recorder()));
    }

    [Fact]
    public void TimedOutWaits_DoNotGrowTheCallbackList()
    {
        var f = Pending();
        for (int i = 0; i < 200; i++)
        {
            Assert.False(f.Wait(TimeSpan.FromTicks(1)));
        }

        Assert.True(f.LinkedCallbackCellsForTesting() <= 1, $"linked cells: {f.LinkedCallbackCellsForTesting()}");
        f.Signal();
    }

    [Fact]
    public void EnableSignaling_HookRunsOnceOnFirstCallback()
    {
        var f = new HookedFence(FenceContext.Allocate(), 1);
        Assert.False(f.IsSignalingEnabled);
        f.AddCallback(new Recorder());
        f.AddCallback(new Recorder());
        f.EnableSignaling();

        Assert.Equal(1, f.EnableCalls);
        Assert.True(f.IsSignalingEnabled);
        Assert.False(f.IsSignaled);
    }

    [Fact]
    public void EnableSignaling_ReturningFalse_SignalsAtOnce()
    {
        var f = new HookedFence(FenceContext.Allocate(), 1, enableResult: false);
        var cb = new Recorder();

        Assert.False(f.AddCallback(cb));
        Assert.True(f.IsSignaled);
        Assert.Equal(0, cb.Count);
    }

    [Fact]
    public void IsSignaled_IsAPlainRead_AndPollSignalsAsSideEffect()
    {
        var f = new HookedFence(FenceContext.Allocate(), 1) { PollError = -Errno.EIO };
        var cb = new Recorder();
        f.AddCallback(cb);
        Assert.False(f.Poll());

        f.HardwareDone = true;
        bool read = f.IsSignaled;
        int statusBeforePoll = f.Status;
        int callbacksBeforePoll = cb.Count;
        bool polled = f.Poll();

        Assert.False(read); // before issue 13 the property polled: true here, with the callback run
        Assert.Equal(0, statusBeforePoll);
        Assert.Equal(0, callbacksBeforePoll);
        Assert.True(polled);
        Assert.True(f.IsSignaled);
        Assert.True(f.Poll());
        Assert.Equal(1, cb.Count);
        Assert.Equal(-Errno.EIO, f.Status);
    }

    [Fact]
    public void Deadline_KeepsEarliest_AndForwardsOnlyEarlierHints()
    {
        var f = new HookedFence(FenceContext.Allocate(), 1);
        Assert.Null(f.Deadline);
        f.SetDeadline(TimeSpan.FromTicks(500));
        f.SetDeadline(TimeSpan.FromTicks(700));
        f.SetDeadline(TimeSpan.FromTicks(300));

        Assert.Equal(TimeSpan.FromTicks(300), f.Deadline);
        Assert.Equal(new[] { TimeSpan.FromTicks(500), TimeSpan.FromTicks(300) }, f.DeadlinesSeen);
    }

    [Fact]
    public void Deadline_SharesItsWordWithTheTimestamp_TheSignalTimeReplacesTheHint()
    {
        var f = new HookedFence(FenceContext.Allocate(), 1);
        f.SetDeadline(TimeSpan.FromTicks(1_000));
        Assert.Equal(TimeSpan.FromTicks(1_000), f.Deadline);

        f.SignalWithTimestamp(TimeSpan.FromTicks(5_000));
        Assert.Equal(TimeSpan.FromTicks(5_000), f.Timestamp); // not the deadline
        Assert.Null(f.Deadline);
        f.SetDeadline(TimeSpan.FromTicks(10)); // earlier than the word's content, but the fence has signalled: no effect
        Assert.Equal(TimeSpan.FromTicks(5_000), f.Timestamp);
        Assert.Equal(new[] { TimeSpan.FromTicks(1_000) }, f.DeadlinesSeen);
    }

    [Fact]
    public void DeadlinesRacingTheSignal_NeverReplaceTheTimestamp()
    {
        // Hints lower than the timestamp race the signal: a CAS that lands after the signaller's write of
        // the time would change the published timestamp.
        for (int round = 0; round < 2_000; round++)
        {
            var f = new FenceSource(FenceContext.Allocate(), 1);
            using var go = new Barrier(2);
            var setter = new Thread(() =>
            {
                go.SignalAndWait();
                for (long d = 1_000; d > 0; d -= 10)
                {
                    f.SetDeadline(TimeSpan.FromTicks(d));
                }
            });
            setter.Start();
            go.SignalAndWait();
            f.SignalWithTimestamp(TimeSpan.FromTicks(1_000_000));
            setter.Join();
            Assert.Equal(TimeSpan.FromTicks(1_000_000), f.Timestamp);
            Assert.Null(f.Deadline);
        }
    }

    [Fact]
    public void Deadline_IgnoredAfterSignal()
    {
        var f = new HookedFence(FenceContext.Allocate(), 1);
        f.Signal();
        f.SetDeadline(TimeSpan.FromTicks(10));
        Assert.Null(f.Deadline);
        Assert.Empty(f.DeadlinesSeen);
    }

    [Fact]
    public void PrivateStub_IsSignalledOnContextZeroWithItsTimestamp()
    {
        Fence stub = Fence.CreateSignaledStub(TimeSpan.FromTicks(987654321));
        Assert.True(stub.IsSignaled);
        Assert.Equal(FenceContext.Stub, stub.Context);
        Assert.Equal(TimeSpan.FromTicks(987654321), stub.Timestamp);
        Assert.NotSame(Fence.Stub, stub);
    }

    [Fact]
    public void Signal_UsesMonotonicClock()
    {
        TimeSpan before = FenceClock.Now;
        var f = Pending();
        f.Signal();
        TimeSpan after = FenceClock.Now;
        Assert.InRange(f.Timestamp, before, after);
        Assert.True(f.TryGetTimestamp(out TimeSpan ts));
        Assert.Equal(f.Timestamp, ts);
    }

    [Fact]
    public void ConcurrentSignals_ExactlyOneWins_WithItsErrorAndTimestamp()
    {
        for (int round = 0; round < 200; round++)
        {
            var f = Pending();
            int winner = -1;
            using var go = new ManualResetEventSlim();
            var threads = Enumerable.Range(1, 4).Select(i => new Thread(() =>
            {
                go.Wait();
                if (f.SignalWithTimestamp(-i, TimeSpan.FromTicks(i * 1000)))
                {
                    Interlocked.Exchange(ref winner, i);
                }
            })).ToList();
            threads.ForEach(t => t.Start());
            go.Set();
            threads.ForEach(t => t.Join());

            Assert.InRange(winner, 1, 4);
            Assert.Equal(-winner, f.Error);
            Assert.Equal(TimeSpan.FromTicks(winner * 1000), f.Timestamp);
        }
    }

    [Fact]
    public void Describe_PrintsContextSeqnoTimelineDriverAndState()
    {
        var f = new FenceSource(FenceContext.Allocate(), 7);
        Assert.Equal($"{f.Context}:7 unbound fencecore unsignalled", f.Describe());
        f.Signal();
        Assert.EndsWith(" signalled", f.Describe(), StringComparison.Ordinal);
    }

    /// <summary>The fence object is 56 bytes, 8 less than the kernel's struct dma_fence on 64-bit: the
    /// deadline hint and the timestamp share one word (before: 64 bytes, a word each).</summary>
    [Fact]
    public void FenceObject_Is56Bytes()
    {
        const int n = 10_000;
        var keep = new Fence[n];
        ulong ctx = FenceContext.Allocate();
        keep[0] = new FenceSource(ctx, 0);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < n; i++)
        {
            keep[i] = new FenceSource(ctx, (ulong)i);
        }

        long perFence = (GC.GetAllocatedBytesForCurrentThread() - before) / n;
        Assert.Equal(56, perFence);
        GC.KeepAlive(keep);
    }

    [Fact]
    public void AddCallback_WithCallerOwnedNode_AllocatesNothing()
    {
        var f = Pending();
        var node = new Recorder();
        f.AddCallback(node);
        f.RemoveCallback(node);
        f.Signal(); // the old list lets go of the removed cell: the node's own cell is free again
        var h = Pending();

        long before = GC.GetAllocatedBytesForCurrentThread();
        h.AddCallback(node);
        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(0, after - before);
    }

    private sealed class ThrowingHookFence() : FenceSource(FenceContext.Allocate(), 1)
    {
        public List<Exception> Failures { get; } = [];

        protected override void OnSignaled() => throw new InvalidOperationException("hook");

        protected override void OnCallbackFailed(Exception exception) => Failures.Add(exception);
    }

    [Fact]
    public void ThrowingOnSignaledHook_StillPublishesTheSignal_AndRunsCallbacks()
    {
        var f = new ThrowingHookFence();
        var cb = new Recorder();
        f.AddCallback(cb);

        Assert.True(f.Signal());
        Assert.Equal("hook", Assert.Single(f.Failures).Message);
        Assert.True(f.IsSignaled);
        Assert.Equal(1, cb.Count);
    }

    /// <summary>A hook that adds a callback to its own fence: the add must not wait for a publish that comes
    /// only after the hook (a subclass signals down the exchange path, which walks the added cell).</summary>
    private sealed class SelfAddingHookFence() : FenceSource(FenceContext.Allocate(), 1)
    {
        public Recorder Added { get; } = new();

        public bool AddResult { get; private set; }

        protected override void OnSignaled() => AddResult = AddCallback(Added);
    }

    [Fact]
    public void AHookThatAddsToItsOwnFence_DoesNotWait_AndItsCallbackRuns()
    {
        var f = new SelfAddingHookFence();
        var signal = Task.Run(f.Signal);
        Assert.True(signal.Wait(TimeSpan.FromSeconds(10)), "the signal did not return: the hook's add waited for its own publish");
        Assert.True(f.AddResult);
        Assert.Equal(1, f.Added.Count);
    }

    [Fact]
    public void APlainSourceSignalledWithNobodyWaiting_RefusesLaterAdds_WithItsErrorAndTimestampVisible()
    {
        var f = new FenceSource(FenceContext.Allocate(), 1);
        Assert.True(f.SignalWithTimestamp(-Errno.EIO, TimeSpan.FromTicks(1234)));
        Assert.False(f.SignalWithTimestamp(0, TimeSpan.FromTicks(99)));

        var cb = new Recorder();
        Assert.False(f.AddCallback(cb));
        Assert.Equal(0, cb.Count);
        Assert.True(f.IsSignaled);
        Assert.Equal(-Errno.EIO, f.Status);
        Assert.Equal(TimeSpan.FromTicks(1234), f.Timestamp);

        // The refused node is free: it queues on another fence and runs there.
        var g = new FenceSource(FenceContext.Allocate(), 1);
        Assert.True(g.AddCallback(cb));
        g.Signal();
        Assert.Equal(1, cb.Count);
    }

    [Fact]
    public void APlainSourceWithACallbackOrAnEnabledSignal_StillRunsItsCallbacksOnce()
    {
        var withCallback = new FenceSource(FenceContext.Allocate(), 1);
        var cb = new Recorder();
        Assert.True(withCallback.AddCallback(cb));
        Assert.True(withCallback.RemoveCallback(cb));
        Assert.True(withCallback.AddCallback(cb)); // announced once; the second add links again
        withCallback.Signal();
        Assert.Equal(1, cb.Count);

        var enabled = new FenceSource(FenceContext.Allocate(), 1);
        enabled.EnableSignaling();
        Assert.True(enabled.Signal());
        Assert.True(enabled.IsSignaled);
        Assert.False(enabled.AddCallback(new Recorder()));
    }

    /// <summary>Records each signal the hook saw, to check that a subclass's hook still runs once.</summary>
    private sealed class CountingHookSource() : FenceSource(FenceContext.Allocate(), 1)
    {
        public int Hooks { get; private set; }

        protected override void OnSignaled() => Hooks++;
    }

    [Fact]
    public void HooklessLibraryFencesAndHookedSubclasses_SignalOnce_WithTheirHooksRun()
    {
        var timeline = new FenceTimeline("t");
        FenceSource point = timeline.CreateFence();
        Assert.True(point.SignalWithTimestamp(-Errno.EIO, TimeSpan.FromTicks(7)));
        Assert.False(point.Signal());
        Assert.Equal(-Errno.EIO, point.Status);
        Assert.Equal(TimeSpan.FromTicks(7), point.Timestamp);
        Assert.False(point.AddCallback(new Recorder()));

        var hooked = new CountingHookSource();
        Assert.True(hooked.Signal());
        Assert.False(hooked.Signal());
        Assert.Equal(1, hooked.Hooks);

        // An array and a chain over signalled members signal (through their poll) with nobody waiting.
        ulong ctx = FenceContext.Allocate(2);
        var a = new FenceSource(ctx, 1);
        var b = new FenceSource(ctx + 1, 1);
        var array = new FenceArray([a, b]);
        a.Signal();
        b.Signal(-Errno.EIO);
        Assert.True(array.Poll());
        Assert.Equal(-Errno.EIO, array.Status);
        Assert.False(array.AddCallback(new Recorder()));

        using var sw = new SwSyncTimeline();
        Fence swPoint = sw.CreateFence(1);
        sw.Increment();
        Assert.True(swPoint.IsSignaled);
        Assert.False(swPoint.AddCallback(new Recorder()));
    }
}
