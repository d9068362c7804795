using System.Runtime.CompilerServices;

namespace FenceCore.Tests.Fences;

/// <summary>Issue 12: an <c>await</c> of a pending fence allocates nothing once warm (the waiter is pooled
/// per thread), and pooling never lets one wait see another's result.</summary>
public sealed class AsyncWaiterPoolTests
{
    private static readonly ulong s_context = FenceContext.Allocate();
    private static ulong s_seqno;

    private static FenceSource Pending() => new(s_context, Interlocked.Increment(ref s_seqno));

    private static void WaitSignalConsume(FenceSource fence)
    {
        ValueTaskAwaiter awaiter = fence.WaitAsync().GetAwaiter();
        Assert.False(awaiter.IsCompleted);
        fence.Signal();
        awaiter.GetResult();
    }

    [Fact]
    public void WaitAsyncWithoutTokenOrTimeout_AllocatesNothingBeyondTheFence_OnceWarm()
    {
        var fences = new FenceSource[1000];
        for (int i = 0; i < fences.Length; i++)
        {
            fences[i] = Pending();
        }

        WaitSignalConsume(Pending()); // warm: the first wait on a thread creates its spare waiter
        long before = GC.GetAllocatedBytesForCurrentThread();
        foreach (FenceSource f in fences)
        {
            WaitSignalConsume(f);
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated); // before pooling: 120 B per wait
    }

    [Fact]
    public void AwaitingTheSameValueTaskTwice_FailsOnTheVersionCheck_AndTheNextWaitIsUnaffected()
    {
        FenceSource first = Pending();
        ValueTask wait = first.WaitAsync();
        first.Signal();
        wait.GetAwaiter().GetResult();

        // The waiter now serves the next wait: the stale ValueTask must not see it.
        FenceSource second = Pending();
        ValueTask next = second.WaitAsync();
        Assert.Throws<InvalidOperationException>(() => wait.GetAwaiter().GetResult());
        Assert.False(next.IsCompleted);
        second.Signal();
        Assert.True(next.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task ManyConcurrentAwaits_EachCompletesForItsOwnFence()
    {
        const int N = 2000;
        var fences = Enumerable.Range(0, N).Select(_ => Pending()).ToArray();
        var completed = new int[N];
        Task[] waits = [.. Enumerable.Range(0, N).Select(i => Task.Run(async () =>
        {
            await fences[i];
            Assert.True(fences[i].IsSignaled, $"wait {i} completed before its fence signalled");
            Interlocked.Increment(ref completed[i]);
        }))];

        // Signal in a scrambled order from two threads while the awaits are still being started.
        var order = Enumerable.Range(0, N).OrderBy(i => (i * 7919) % N).ToArray();
        Task s1 = Task.Run(() => { for (int k = 0; k < N; k += 2) { fences[order[k]].Signal(); } });
        Task s2 = Task.Run(() => { for (int k = 1; k < N; k += 2) { fences[order[k]].Signal(); } });
        await Task.WhenAll(s1, s2);
        await Task.WhenAll(waits).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(completed, c => Assert.Equal(1, c));
    }

    [Fact]
    public async Task WaitAsyncOnASignalledFence_CompletesSynchronously_AndKeepsTheSpare()
    {
        FenceSource done = Pending();
        done.Signal();
        ValueTask wait = done.WaitAsync();
        Assert.True(wait.IsCompletedSuccessfully);
        await wait;

        FenceSource pending = Pending();
        Task t = pending.WaitAsync().AsTask();
        pending.Signal();
        await t.WaitAsync(TimeSpan.FromSeconds(10));
    }
}
