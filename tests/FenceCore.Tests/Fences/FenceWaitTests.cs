namespace FenceCore.Tests.Fences;

public class FenceWaitTests
{
    private static FenceSource NewFence() => new(FenceContext.Allocate(), 1);

    [Fact]
    public void Wait_ReturnsWhenSignalledFromAnotherThread()
    {
        var f = NewFence();
        var t = new Thread(() =>
        {
            Thread.Sleep(20);
            f.Signal();
        });
        t.Start();
        Assert.True(f.Wait(TimeSpan.FromSeconds(10)));
        t.Join();
    }

    [Fact]
    public void Wait_Infinite_ReturnsWhenSignalled()
    {
        var f = NewFence();
        using var timer = new Timer(_ => f.Signal(), null, 10, Timeout.Infinite);
        f.Wait();
        Assert.True(f.IsSignaled);
    }

    [Fact]
    public void Wait_ZeroTimeout_NeverBlocks()
    {
        var f = NewFence();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < 1000; i++)
        {
            Assert.False(f.Wait(TimeSpan.Zero));
        }

        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(2));
        Assert.True(f.IsSignalingEnabled);
    }

    [Fact]
    public void Wait_Cancelled_ThrowsAndLeavesNoCallbackQueued()
    {
        var f = NewFence();
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(20));
        Assert.ThrowsAny<OperationCanceledException>(() => f.Wait(Timeout.InfiniteTimeSpan, cts.Token));
        Assert.False(f.IsSignaled);

        // The waiter's cell is removed: the next add pops it, leaving only the new cell linked.
        var next = new TestFences.Recorder();
        f.AddCallback(next);
        Assert.Equal(1, f.LinkedCallbackCellsForTesting());
        f.Signal();
        Assert.Equal(1, next.Count);
    }

    [Fact]
    public void Wait_AlreadyCancelledToken_ThrowsBeforeBlocking()
    {
        var f = NewFence();
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => f.Wait(TimeSpan.FromSeconds(5), cts.Token));
    }

    [Fact]
    public void Wait_SignalledFence_IgnoresCancelledToken()
    {
        var f = NewFence();
        f.Signal();
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.True(f.Wait(TimeSpan.FromSeconds(1), cts.Token));
    }

    [Fact]
    public void WaitAny_ReturnsIndexOfTheSignalledFence()
    {
        var fences = new[] { NewFence(), NewFence(), NewFence() };
        using var timer = new Timer(_ => fences[2].Signal(), null, 10, Timeout.Infinite);
        Assert.Equal(2, Fence.WaitAny(fences, TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public void WaitAny_ReturnsFirstSignalledIndex_WhenSeveralAlreadySignalled()
    {
        var fences = new[] { NewFence(), NewFence(), NewFence() };
        fences[2].Signal();
        fences[1].Signal();
        Assert.Equal(1, Fence.WaitAny(fences, TimeSpan.FromSeconds(1)));
        Assert.Equal(1, Fence.WaitAny(fences, TimeSpan.Zero));
    }

    [Fact]
    public void WaitAny_TimesOutWithMinusOne_AndRemovesItsCallbacks()
    {
        var fences = new[] { NewFence(), NewFence() };
        Assert.Equal(-1, Fence.WaitAny(fences, TimeSpan.FromMilliseconds(5)));
        Assert.Equal(-1, Fence.WaitAny(fences, TimeSpan.Zero));
        var late = new TestFences.Recorder();
        fences[0].AddCallback(late);
        fences[0].Signal();
        Assert.Equal(1, late.Count);
    }

    [Fact]
    public void WaitAny_EmptySet_IsInvalid()
    {
        var ex = Assert.Throws<ArgumentException>(() => Fence.WaitAny([], TimeSpan.Zero));
        Assert.Contains("-EINVAL", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WaitAny_NullElement_IsNamed()
    {
        var ex = Assert.Throws<ArgumentNullException>(() => Fence.WaitAny(new Fence[] { NewFence(), null! }, TimeSpan.Zero));
        Assert.Contains("index 1", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WaitAll_WaitsForEveryFence_OrTimesOut()
    {
        var fences = new[] { NewFence(), NewFence() };
        fences[0].Signal();
        Assert.False(Fence.WaitAll(fences, TimeSpan.FromMilliseconds(5)));
        using var timer = new Timer(_ => fences[1].Signal(), null, 10, Timeout.Infinite);
        Assert.True(Fence.WaitAll(fences, TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task WaitAsync_CompletesWhenSignalled()
    {
        var f = NewFence();
        ValueTask wait = f.WaitAsync();
        Assert.False(wait.IsCompleted);
        f.Signal();
        await wait;
        Assert.True(f.IsSignaled);
    }

    [Fact]
    public void WaitAsync_OnSignalledFence_CompletesSynchronouslyWithoutAllocating()
    {
        var f = NewFence();
        f.Signal();
        _ = f.WaitAsync();
        long before = GC.GetAllocatedBytesForCurrentThread();
        ValueTask wait = f.WaitAsync();
        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.True(wait.IsCompletedSuccessfully);
        Assert.Equal(0, after - before);
    }

    [Fact]
    public async Task WaitAsync_WithTimeout_ReturnsFalseOnTimeoutAndTrueOnSignal()
    {
        var f = NewFence();
        Assert.False(await f.WaitAsync(TimeSpan.FromMilliseconds(10)));
        Assert.False(await f.WaitAsync(TimeSpan.Zero));
        ValueTask<bool> wait = f.WaitAsync(TimeSpan.FromSeconds(10));
        f.Signal();
        Assert.True(await wait);
    }

    [Fact]
    public async Task WaitAsync_Cancelled_Throws()
    {
        var f = NewFence();
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(10));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await f.WaitAsync(cts.Token));
        Assert.False(f.IsSignaled);
    }

    [Fact]
    public async Task AwaitFence_Works()
    {
        var f = NewFence();
        _ = Task.Run(async () =>
        {
            await Task.Delay(5);
            f.Signal();
        });
        await f;
        Assert.True(f.IsSignaled);
    }

    [Fact]
    public async Task WaitAsync_ContinuationDoesNotRunOnTheSignallingThread()
    {
        var f = NewFence();
        int signallerThread = -1;
        var task = Task.Run(async () =>
        {
            await f.WaitAsync();
            return Environment.CurrentManagedThreadId;
        });
        await Task.Delay(20);
        var t = new Thread(() =>
        {
            signallerThread = Environment.CurrentManagedThreadId;
            f.Signal();
        });
        t.Start();
        t.Join();
        int continuationThread = await task;
        Assert.NotEqual(signallerThread, continuationThread);
    }

    [Fact]
    public void BlockingWait_AfterATimedOutWait_StillAllocatesNothing()
    {
        var pending = NewFence();
        Assert.False(pending.Wait(TimeSpan.FromMilliseconds(1)));
        Assert.False(pending.Wait(TimeSpan.FromMilliseconds(1)));

        // The first blocking wait of a fresh waiter may create its event's lock once; take the best of
        // three rounds, which must allocate nothing (a waiter stuck on proxy cells allocates every time).
        long best = long.MaxValue;
        for (int round = 0; round < 3; round++)
        {
            var f = NewFence();
            using var timer = new Timer(_ => f.Signal(), null, 20, Timeout.Infinite);
            long before = GC.GetAllocatedBytesForCurrentThread();
            Assert.True(f.Wait(TimeSpan.FromSeconds(10)));
            best = Math.Min(best, GC.GetAllocatedBytesForCurrentThread() - before);
        }

        Assert.Equal(0, best);
    }
}
