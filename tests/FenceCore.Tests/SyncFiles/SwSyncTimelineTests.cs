namespace FenceCore.Tests.SyncFiles;

public class SwSyncTimelineTests
{
    [Fact]
    public void CreateFence_AtReachedValue_IsBornSignalled()
    {
        using var tl = new SwSyncTimeline();
        Fence f0 = tl.CreateFence(0);
        Assert.True(f0.IsSignaled);
        tl.Increment(5);
        Fence f3 = tl.CreateFence(3);
        Assert.True(f3.IsSignaled);
        Assert.Equal(1, f3.Status);
        Assert.Equal(0, tl.PendingCount);
    }

    [Fact]
    public void CreateFence_AtUnreachedValue_IsPending_AndReusedForTheSameValue()
    {
        using var tl = new SwSyncTimeline();
        Fence a = tl.CreateFence(4);
        Fence b = tl.CreateFence(4);
        Assert.False(a.IsSignaled);
        Assert.Same(a, b);
        Assert.Equal(tl.Context, a.Context);
        Assert.Equal(4ul, a.Seqno);
        Assert.Equal("sw_sync", a.DriverName);
        Assert.Equal(1, tl.PendingCount);
    }

    [Fact]
    public void Increment_ByPrimes_SignalsEachPointExactlyWhenReached()
    {
        using var tl = new SwSyncTimeline();
        var fences = Enumerable.Range(1, 100).Select(v => tl.CreateFence((uint)v)).ToArray();
        uint value = 0;
        foreach (uint p in new uint[] { 2, 3, 5, 7, 11, 13, 17, 19, 23 })
        {
            tl.Increment(p);
            value += p;
            for (int i = 0; i < fences.Length; i++)
            {
                Assert.Equal(i + 1 <= value, fences[i].IsSignaled);
            }
        }

        Assert.Equal(100u, tl.Value);
        Assert.All(fences, f => Assert.True(f.IsSignaled));
    }

    [Fact]
    public void Increment_SignalsInSeqnoOrder_EvenWhenCreatedOutOfOrder()
    {
        using var tl = new SwSyncTimeline();
        var order = new List<ulong>();
        foreach (uint v in new uint[] { 9, 2, 7, 4, 1, 8 })
        {
            tl.CreateFence(v).AddCallback(f => order.Add(f.Seqno));
        }

        tl.Increment(10);
        Assert.Equal(new ulong[] { 1, 2, 4, 7, 8, 9 }, order);
    }

    [Fact]
    public void Increment_FromACallback_KeepsSeqnoOrder()
    {
        using var tl = new SwSyncTimeline();
        var order = new List<ulong>();
        Fence one = tl.CreateFence(1);
        tl.CreateFence(2).AddCallback(f => order.Add(f.Seqno));
        tl.CreateFence(3).AddCallback(f => order.Add(f.Seqno));
        one.AddCallback(f =>
        {
            order.Add(f.Seqno);
            tl.Increment(2); // re-entrant: reaches 3 while 2 is still queued
        });

        tl.Increment(1);
        Assert.Equal(new ulong[] { 1, 2, 3 }, order);
    }

    [Fact]
    public void Points_CompareWithWrapAround()
    {
        using var tl = new SwSyncTimeline();
        tl.Increment(uint.MaxValue - 1);
        Fence beforeWrap = tl.CreateFence(uint.MaxValue);
        Fence afterWrap = tl.CreateFence(2);
        Assert.False(afterWrap.IsSignaled);

        tl.Increment(1);
        Assert.True(beforeWrap.IsSignaled);
        Assert.False(afterWrap.IsSignaled);
        tl.Increment(3);
        Assert.True(afterWrap.IsSignaled);
        Assert.Equal(2u, tl.Value);
    }

    [Fact]
    public void Close_SignalsPendingPointsWithENOENT_AndLeavesSignalledOnesAlone()
    {
        var tl = new SwSyncTimeline();
        Fence done = tl.CreateFence(1);
        Fence p2 = tl.CreateFence(2);
        Fence p3 = tl.CreateFence(3);
        tl.Increment(1);

        tl.Close();
        Assert.Equal(1, done.Status);
        Assert.Equal(-Errno.ENOENT, p2.Status);
        Assert.Equal(-Errno.ENOENT, p3.Status);
        Assert.True(tl.IsClosed);
        tl.Close(); // idempotent
    }

    [Fact]
    public void ClosedTimeline_RejectsUse_AndValueIsUnchanged()
    {
        var tl = new SwSyncTimeline("gfx");
        tl.Increment(3);
        tl.Dispose();
        var ex = Assert.Throws<ObjectDisposedException>(() => tl.CreateFence(9));
        Assert.Contains("'gfx' is closed", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ObjectDisposedException>(() => tl.Increment());
        Assert.Equal(3u, tl.Value);
    }

    [Fact]
    public void Deadline_IsReportedForItsOwnPoints()
    {
        using var tl = new SwSyncTimeline();
        Fence f = tl.CreateFence(5);
        Assert.False(tl.TryGetDeadline(f, out _));
        f.SetDeadline(TimeSpan.FromTicks(1000));
        f.SetDeadline(TimeSpan.FromTicks(2000));
        Assert.True(tl.TryGetDeadline(f, out TimeSpan d));
        Assert.Equal(TimeSpan.FromTicks(1000), d);
        var ex = Assert.Throws<ArgumentException>(() => tl.TryGetDeadline(new FenceSource(FenceContext.Allocate(), 1), out _));
        Assert.Contains("-EINVAL", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Several consumer threads each wait, in order, on their own points of one timeline while a
    /// producer advances it one step at a time. Every thread is woken for every point, in order, and
    /// never before the timeline reached it.
    /// </summary>
    [Fact]
    public void ConsumersAndProducer_EachThreadWokenInOrder()
    {
        const int consumers = 4;
        const int pointsPerConsumer = 1000;
        const int total = consumers * pointsPerConsumer;
        using var tl = new SwSyncTimeline();
        var woken = new List<uint>[consumers];
        int early = 0;
        using var ready = new CountdownEvent(consumers);

        var threads = Enumerable.Range(0, consumers).Select(k => new Thread(() =>
        {
            var mine = new List<Fence>();
            for (int i = 0; i < pointsPerConsumer; i++)
            {
                mine.Add(tl.CreateFence((uint)((i * consumers) + k + 1)));
            }

            woken[k] = [];
            ready.Signal();
            foreach (Fence f in mine)
            {
                Assert.True(f.Wait(TimeSpan.FromSeconds(30)));
                if (tl.Value < f.Seqno)
                {
                    Interlocked.Increment(ref early);
                }

                woken[k].Add((uint)f.Seqno);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        ready.Wait();

        for (int i = 0; i < total; i++)
        {
            tl.Increment(1);
        }

        threads.ForEach(t => Assert.True(t.Join(TimeSpan.FromSeconds(60))));
        Assert.Equal(0, early);
        for (int k = 0; k < consumers; k++)
        {
            var expected = Enumerable.Range(0, pointsPerConsumer).Select(i => (uint)((i * consumers) + k + 1));
            Assert.Equal(expected, woken[k]);
        }
    }

    [Fact]
    public void ThrowingCallback_DoesNotStopLaterPoints_OrTheTimeline_AndGoesToItsHandler()
    {
        var failures = new List<(Fence Fence, Exception Exception)>();
        using var tl = new SwSyncTimeline("owned", (f, ex) => failures.Add((f, ex)));
        Fence p1 = tl.CreateFence(1);
        Fence p2 = tl.CreateFence(2);
        p1.AddCallback(_ => throw new InvalidOperationException("boom"));

        tl.Increment(2); // threw AggregateException before issue 13: the consumer's bug reached the producer
        (Fence failed, Exception ex) = Assert.Single(failures);
        Assert.Same(p1, failed);
        Assert.Equal("boom", ex.Message);
        Assert.True(p2.IsSignaled);
        Fence p3 = tl.CreateFence(3);
        tl.Increment();
        Assert.True(p3.IsSignaled);
    }
}
