using static FenceCore.Tests.Fences.TestFences;

namespace FenceCore.Tests.Fences;

/// <summary>The cases of the kernel's st-dma-fence.c (suite dma_fence), adapted to C#.</summary>
public class StDmaFenceTests
{
    [Fact]
    public void Sanitycheck_CreateEnableSignal()
    {
        var f = Pending();
        f.EnableSignaling();
        Assert.True(f.Signal());
        Assert.True(f.IsSignaled);
    }

    [Fact]
    public void TestSignaling_SignalsOnceAndReportsSecondSignal()
    {
        var f = Pending();
        f.EnableSignaling();
        Assert.False(f.IsSignaled);

        Assert.True(f.Signal());
        Assert.True(f.IsSignaled);
        Assert.True(f.IsSignaled);

        TimeSpan ts = f.Timestamp;
        Assert.False(f.Signal());
        Assert.Equal(ts, f.Timestamp);
    }

    [Fact]
    public void TestAddCallback_RunsBeforeSignalReturns()
    {
        var f = Pending();
        var cb = new Recorder();
        Assert.True(f.AddCallback(cb));
        Assert.Equal(0, cb.Count);

        f.Signal();
        Assert.Equal(1, cb.Count);
    }

    [Fact]
    public void TestLateAddCallback_ReturnsFalseAndNeverRuns()
    {
        var f = Pending();
        f.EnableSignaling();
        f.Signal();
        var cb = new Recorder();

        Assert.False(f.AddCallback(cb));
        f.Signal();
        Assert.Equal(0, cb.Count);
    }

    [Fact]
    public void TestRmCallback_RemovedCallbackNeverRuns()
    {
        var f = Pending();
        var cb = new Recorder();
        Assert.True(f.AddCallback(cb));

        Assert.True(f.RemoveCallback(cb));
        f.Signal();
        Assert.Equal(0, cb.Count);
    }

    [Fact]
    public void TestLateRmCallback_RemoveAfterRunReturnsFalse()
    {
        var f = Pending();
        var cb = new Recorder();
        f.AddCallback(cb);
        f.Signal();
        Assert.Equal(1, cb.Count);

        Assert.False(f.RemoveCallback(cb));
    }

    [Fact]
    public void TestStatus_ZeroBeforeOneAfter()
    {
        var f = Pending();
        f.EnableSignaling();
        Assert.Equal(0, f.Status);

        f.Signal();
        Assert.Equal(1, f.Status);
    }

    [Fact]
    public void TestError_ReportedOnlyOnceSignalled()
    {
        var f = Pending();
        f.SetError(-Errno.EIO);
        Assert.Equal(0, f.Status);
        Assert.Equal(0, f.Error);

        f.Signal();
        Assert.Equal(-Errno.EIO, f.Status);
        Assert.Equal(-Errno.EIO, f.Error);
        Assert.True(f.IsFaulted);
    }

    [Fact]
    public void TestWait_ZeroTimeoutIsFalseBeforeTrueAfter()
    {
        var f = Pending();
        Assert.False(f.Wait(TimeSpan.Zero));

        f.Signal();
        Assert.True(f.Wait(TimeSpan.Zero));
    }

    [Fact]
    public void TestWaitTimeout_TimesOutThenSeesTimerSignal()
    {
        var f = Pending();
        Assert.False(f.Wait(TimeSpan.FromMilliseconds(1)));

        using var timer = new Timer(_ => f.Signal(), null, TimeSpan.FromMilliseconds(1), Timeout.InfiniteTimeSpan);
        Assert.True(f.Wait(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public void TestStub_IsAlwaysSignalled()
    {
        for (int i = 0; i < 64; i++)
        {
            Fence stub = Fence.Stub;
            Assert.True(stub.IsSignaled);
            Assert.Equal(FenceContext.Stub, stub.Context);
            Assert.Equal(0ul, stub.Seqno);
            Assert.Equal(1, stub.Status);
        }
    }

    /// <summary>
    /// race_signal_callback: two threads, two passes (signal before / after adding the callback to the
    /// peer's fence), 50 ms each. Every successfully added callback must have run once the peer fence
    /// is waited on: no lost callback.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void RaceSignalCallback_NoLostCallback(bool signalBefore)
    {
        var slots = new FenceSource?[2];
        long passes = 0, misses = 0, lost = 0;

        // 50 ms as in the kernel, but at least 200 rounds so a loaded machine still races (10 s cap).
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        void CheckStop()
        {
            if (clock.ElapsedMilliseconds >= 50 && Interlocked.Read(ref passes) + Interlocked.Read(ref misses) >= 200)
            {
                stop.Cancel();
            }
        }

        var barrier = new Barrier(2);

        void Worker(int me)
        {
            int peer = 1 - me;
            Fence? lastPeer = null;
            barrier.SignalAndWait();
            while (!stop.IsCancellationRequested)
            {
                var f1 = new FenceSource(FenceContext.Allocate(), 1);
                f1.EnableSignaling();
                Volatile.Write(ref slots[me], f1);

                Fence? f2;
                var spin = new SpinWait();
                while (((f2 = Volatile.Read(ref slots[peer])) is null || ReferenceEquals(f2, lastPeer)) && !stop.IsCancellationRequested)
                {
                    spin.SpinOnce();
                }

                if (f2 is null || ReferenceEquals(f2, lastPeer))
                {
                    f1.Signal();
                    break;
                }

                lastPeer = f2;
                if (signalBefore)
                {
                    f1.Signal();
                }

                var cb = new Recorder();
                bool added = f2.AddCallback(cb);
                if (!signalBefore)
                {
                    f1.Signal();
                }

                if (added)
                {
                    f2.Wait(TimeSpan.FromSeconds(5));

                    // The kernel flushes callbacks in flight by taking the fence lock; FenceCore has no
                    // lock, so give the peer's signalling thread time to reach our callback.
                    SpinWait.SpinUntil(() => cb.Count != 0, TimeSpan.FromSeconds(5));
                    if (cb.Count != 1)
                    {
                        Interlocked.Increment(ref lost);
                    }

                    Interlocked.Increment(ref passes);
                }
                else
                {
                    Interlocked.Increment(ref misses);
                }

                CheckStop();
            }

            // Let the peer finish: it may be spinning for one more fence of ours.
            Volatile.Read(ref slots[me])?.Signal();
        }

        var t0 = new Thread(() => Worker(0));
        var t1 = new Thread(() => Worker(1));
        t0.Start();
        t1.Start();
        Assert.True(t0.Join(TimeSpan.FromSeconds(30)));
        Assert.True(t1.Join(TimeSpan.FromSeconds(30)));

        Assert.Equal(0, lost);
        Assert.True(passes + misses > 0, "the race must have run at least one round");
    }
}
