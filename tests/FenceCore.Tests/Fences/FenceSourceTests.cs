using FenceCore.Tests.Fences;

namespace FenceCore.Tests.Fences;

/// <summary>The producer/consumer split, the timeline type and the fence options (issue 13).</summary>
public class FenceSourceTests
{
    [Fact]
    public void Consumers_CannotSignal_TheSourceCan_AndItsViewIsTheSameFence()
    {
        var source = new FenceSource(FenceContext.Allocate(), 7);
        Fence view = source.Fence;

        // The consumer's type has no public way to signal (the members are protected; issue 13).
        string[] publicSignallers = [.. typeof(Fence).GetMethods()
            .Where(m => m.IsPublic && m.Name is "Signal" or "SignalWithTimestamp" or "SetError")
            .Select(m => m.Name)];
        bool signalled = source.Signal();

        Assert.Empty(publicSignallers);
        Assert.Same(source, view);
        Assert.True(signalled);
        Assert.True(view.IsSignaled);
        Assert.False(source.Signal());
    }

    [Fact]
    public void FencesFromTheLibrary_AreNotSources()
    {
        var member = new FenceSource(FenceContext.Allocate(), 1);
        using var sw = new SwSyncTimeline();

        Assert.IsNotType<FenceSource>(sw.CreateFence(1), exactMatch: false);
        Assert.IsNotType<FenceSource>(new FenceArray([member]), exactMatch: false);
        Assert.IsNotType<FenceSource>(new FenceChain(null, member, 1), exactMatch: false);
    }

    [Fact]
    public void Timeline_HandsOutIncreasingSeqnos_OnItsOwnContext_WithItsName()
    {
        var a = new FenceTimeline("present");
        var b = new FenceTimeline("vblank");

        FenceSource f1 = a.CreateFence();
        (ulong context, ulong seqno) = a.NextPoint();
        FenceSource f3 = a.CreateFence();

        Assert.NotEqual(a.Context, b.Context);
        Assert.Equal((a.Context, 1UL), (f1.Context, f1.Seqno));
        Assert.Equal((a.Context, 2UL), (context, seqno));
        Assert.Equal(3UL, f3.Seqno);
        Assert.Equal(3UL, a.LastSeqno);
        Assert.Equal("present", f3.TimelineName);
        Assert.True(Fence.IsLater(f3, f1));
        Assert.Equal(0UL, b.LastSeqno);
    }

    [Fact]
    public void Timeline_SharedByThreads_NeverHandsOutASeqnoTwice()
    {
        var timeline = new FenceTimeline();
        var seen = new ulong[4][];
        Parallel.For(0, 4, t => seen[t] = [.. Enumerable.Range(0, 10_000).Select(_ => timeline.NextPoint().Seqno)]);

        ulong[] all = [.. seen.SelectMany(s => s).Order()];
        Assert.Equal(Enumerable.Range(1, 40_000).Select(i => (ulong)i), all);
    }

    [Fact]
    public void Timeline_Exhausted_ThrowsAndLeavesItsCounterAlone()
    {
        var timeline = new FenceTimeline("full", FenceOptions.Seqno64);
        timeline.SetLastSeqnoForTesting(ulong.MaxValue - 1);
        FenceSource last = timeline.CreateFence();

        var ex = Assert.Throws<InvalidOperationException>(() => timeline.CreateFence());

        Assert.Equal(ulong.MaxValue, last.Seqno);
        Assert.Contains("never reused", ex.Message, StringComparison.Ordinal);
        Assert.Equal(ulong.MaxValue, timeline.LastSeqno);
    }

    [Fact]
    public void UnknownOptionBits_AreRejected_ByName()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new FenceSource(1, 1, (FenceOptions)8));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FenceTimeline(options: (FenceOptions)0x100));
        Assert.Equal("options", ex.ParamName);
        Assert.Contains("RunCallbacksAsynchronously", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Seqno64_ComparesOnAllBits()
    {
        ulong ctx = FenceContext.Allocate();
        var low = new FenceSource(ctx, 1, FenceOptions.Seqno64);
        var high = new FenceSource(ctx, 1UL << 33, FenceOptions.Seqno64);
        var wrapped = new FenceSource(ctx, 1UL << 33);

        Assert.True(high.UsesSeqno64);
        Assert.True(Fence.IsLater(high, low));
        Assert.False(Fence.IsLater(wrapped, low)); // 32-bit: the same low word
    }

    [Fact]
    public void RunCallbacksAsynchronously_SignalIsPublishedAtOnce_CallbacksRunInOrderOnAnotherThread()
    {
        var f = new FenceSource(FenceContext.Allocate(), 1, FenceOptions.RunCallbacksAsynchronously);
        var order = new List<int>();
        var threads = new List<int>();
        using var gate = new ManualResetEventSlim();
        using var done = new CountdownEvent(3);
        for (int i = 0; i < 3; i++)
        {
            int k = i;
            f.AddCallback(_ =>
            {
                gate.Wait(TimeSpan.FromSeconds(10)); // held until Signal has returned
                lock (order)
                {
                    order.Add(k);
                    threads.Add(Environment.CurrentManagedThreadId);
                }

                done.Signal();
            });
        }

        int me = Environment.CurrentManagedThreadId;
        bool signalled = f.Signal(); // would deadlock here if the callbacks ran on this thread
        bool visible = f.IsSignaled;
        gate.Set();

        Assert.True(done.Wait(TimeSpan.FromSeconds(10)));
        Assert.True(signalled);
        Assert.True(visible);
        Assert.Equal([0, 1, 2], order);
        Assert.DoesNotContain(me, threads);
        Assert.Single(threads.Distinct());
    }

    [Fact]
    public void RunCallbacksAsynchronously_RemovedBeforeTheSignal_NeverRuns_TheOthersDo()
    {
        var f = new FenceSource(FenceContext.Allocate(), 1, FenceOptions.RunCallbacksAsynchronously);
        var removed = new TestFences.Recorder();
        using var ran = new ManualResetEventSlim();
        f.AddCallback(removed);
        f.AddCallback(_ => ran.Set());

        bool wasRemoved = f.RemoveCallback(removed);
        f.Signal();

        Assert.True(ran.Wait(TimeSpan.FromSeconds(10)));
        Assert.True(wasRemoved);
        Assert.Equal(0, removed.Count);
        Assert.False(f.RemoveCallback(removed));
    }

    [Fact]
    public async Task RunCallbacksAsynchronously_WaitAsyncCompletes()
    {
        var f = new FenceSource(FenceContext.Allocate(), 1, FenceOptions.RunCallbacksAsynchronously);
        ValueTask wait = f.WaitAsync();
        f.Signal();
        await wait.AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(f.IsSignaled);
    }
}
