using System.Runtime.CompilerServices;

namespace FenceCore.Tests.Fences;

/// <summary>Issue 12: a wait with neither timeout nor token is the fence's own value task, so starting it
/// allocates nothing; an <c>await</c> that suspends registers a node pooled per thread, so an awaiting loop
/// allocates nothing once warm; the continuation runs where the awaiter asked, never on the signaller.</summary>
public sealed class AsyncWaiterPoolTests
{
    private static readonly ulong s_context = FenceContext.Allocate();
    private static ulong s_seqno;

    private static FenceSource Pending() => new(s_context, Interlocked.Increment(ref s_seqno));

    /// <summary>A context that keeps what is posted to it, so a test runs the continuation itself, on its own
    /// thread, with no thread pool in between.</summary>
    private sealed class CapturingContext : SynchronizationContext
    {
        public SendOrPostCallback? Posted;
        public object? PostedState;
        public int Posts;

        public override void Post(SendOrPostCallback d, object? state)
        {
            Posted = d;
            PostedState = state;
            Posts++;
        }

        public void RunPosted()
        {
            SendOrPostCallback d = Posted ?? throw new InvalidOperationException("nothing was posted");
            Posted = null;
            d(PostedState);
        }
    }

    private static void WaitSignalConsume(FenceSource fence)
    {
        ValueTaskAwaiter awaiter = fence.WaitAsync().GetAwaiter();
        Assert.False(awaiter.IsCompleted);
        fence.Signal();
        awaiter.GetResult();
    }

    [Fact]
    public void WaitAsyncWithoutTokenOrTimeout_AllocatesNothingBeyondTheFence()
    {
        var fences = new FenceSource[1000];
        for (int i = 0; i < fences.Length; i++)
        {
            fences[i] = Pending();
        }

        WaitSignalConsume(Pending()); // JIT
        long before = GC.GetAllocatedBytesForCurrentThread();
        foreach (FenceSource f in fences)
        {
            WaitSignalConsume(f);
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated); // before pooling: 120 B per wait; with a pooled waiter: 0 B once warm
    }

    [Fact]
    public void AwaitThatSuspends_OnASynchronizationContext_AllocatesNothingOnceWarm_AndRunsThroughThePost()
    {
        var context = new CapturingContext();
        SynchronizationContext? previous = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(context);
        try
        {
            int ran = 0;
            Action continuation = () => ran++;
            void Cycle()
            {
                FenceSource fence = Pending();
                ValueTaskAwaiter awaiter = fence.WaitAsync().GetAwaiter();
                awaiter.UnsafeOnCompleted(continuation);
                Assert.Null(context.Posted); // registered, not run
                fence.Signal();
                Assert.NotNull(context.Posted); // dispatched through the captured context, not inline
                context.RunPosted();
                awaiter.GetResult();
            }

            Cycle(); // warm: the first suspension on a thread creates its node
            var fences = new FenceSource[1000];
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < fences.Length; i++)
            {
                Cycle();
            }

            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.Equal(1001, ran);
            Assert.Equal(1001, context.Posts);
            Assert.Equal(1000 * 56, allocated); // the fences alone, 56 B each
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(previous);
        }
    }

    [Fact]
    public void AwaitNode_WhoseContinuationRanOnAnotherThread_IsBackInTheAwaitingThreadsPool()
    {
        // The awaiting thread has no context, so the continuation runs on the thread pool. Its node goes back to
        // the pool of the thread that awaited (the one that allocated it), so that thread's next suspension
        // allocates nothing. Before: the node went to the pool of the thread that ran the continuation, and
        // the awaiting thread allocated a new node for each await.
        long allocatedBySecondSuspension = -1;
        int ranOn = -1;
        int awaitingThread = RunOnANewThread(AwaitTwice);
        Assert.NotEqual(awaitingThread, ranOn); // it ran elsewhere, so the node had to come home
        Assert.Equal(0, allocatedBySecondSuspension);

        void AwaitTwice()
        {
            var ran = new ManualResetEventSlim(); // not disposed: the last Set may still be returning on the pool thread
            Action continuation = () =>
            {
                ranOn = Environment.CurrentManagedThreadId;
                ran.Set();
            };

            FenceSource first = Pending();
            ValueTaskAwaiter awaiter = first.WaitAsync().GetAwaiter();
            awaiter.UnsafeOnCompleted(continuation); // the first suspension on this thread creates its node
            first.Signal();
            Assert.True(ran.Wait(TimeSpan.FromSeconds(30)), "the continuation did not run");
            awaiter.GetResult();
            ran.Reset();

            FenceSource second = Pending();
            ValueTaskAwaiter next = second.WaitAsync().GetAwaiter();
            long before = GC.GetAllocatedBytesForCurrentThread();
            next.UnsafeOnCompleted(continuation);
            allocatedBySecondSuspension = GC.GetAllocatedBytesForCurrentThread() - before;
            second.Signal();
            Assert.True(ran.Wait(TimeSpan.FromSeconds(30)), "the second continuation did not run");
        }
    }

    [Fact]
    public void ConsumingTheSameValueTaskTwice_Succeeds_ButConsumingItBeforeTheSignalThrows()
    {
        FenceSource fence = Pending();
        ValueTask wait = fence.WaitAsync();
        var early = Assert.Throws<InvalidOperationException>(() => wait.GetAwaiter().GetResult());
        Assert.Contains("consumed before the fence signalled", early.Message, StringComparison.Ordinal);

        fence.Signal();
        wait.GetAwaiter().GetResult();
        wait.GetAwaiter().GetResult(); // a fence stays signalled: no version to go stale
        Assert.True(wait.IsCompletedSuccessfully);
    }

    [Fact]
    public void AwaitOnALazilyEnabledFence_EnablesSignallingWhenItSuspends_NotWhenTheWaitIsCreated()
    {
        var fence = new TestFences.HookedFence(FenceContext.Allocate(), 1);
        ValueTask wait = fence.WaitAsync();
        Assert.Equal(0, fence.EnableCalls); // a value task not yet awaited is a poll

        fence.HardwareDone = true;
        Assert.True(wait.IsCompleted); // the poll reaches the implementation's PollSignaled
        Assert.True(fence.IsSignaled);

        var pending = new TestFences.HookedFence(FenceContext.Allocate(), 1);
        Task t = pending.WaitAsync().AsTask(); // AsTask registers a continuation
        Assert.Equal(1, pending.EnableCalls);
        Assert.False(t.IsCompleted);
        pending.Signal();
        Assert.True(t.Wait(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task OnCompleted_FlowsTheExecutionContext_ToTheContinuation()
    {
        var local = new AsyncLocal<string>();
        FenceSource fence = Pending();
        var seen = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        local.Value = "awaiter's";
        fence.WaitAsync().GetAwaiter().OnCompleted(() => seen.SetResult(local.Value));
        local.Value = "changed after the registration";

        Thread signaller = new(() =>
        {
            local.Value = "signaller's";
            fence.Signal();
        });
        signaller.Start();
        signaller.Join();

        // Neither the signaller's value nor the later change: the context captured at the registration.
        Assert.Equal("awaiter's", await seen.Task.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Await_UnderACustomTaskScheduler_ResumesOnThatScheduler()
    {
        var scheduler = new ConcurrentExclusiveSchedulerPair().ExclusiveScheduler;
        FenceSource fence = Pending();
        Task<TaskScheduler> resumed = Task.Factory.StartNew(async () =>
        {
            await fence;
            return TaskScheduler.Current;
        }, CancellationToken.None, TaskCreationOptions.None, scheduler).Unwrap();

        while (!fence.IsSignalingEnabled)
        {
            await Task.Yield(); // until the await has suspended and registered
        }

        fence.Signal();
        Assert.Same(scheduler, await resumed.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Await_NeverRunsTheContinuationOnTheSignallingThread()
    {
        FenceSource fence = Pending();
        int signallerThread = -1;
        Task<int> resumedOn = Task.Run(async () =>
        {
            await fence;
            return Environment.CurrentManagedThreadId;
        });
        while (!fence.IsSignalingEnabled)
        {
            await Task.Yield();
        }

        var signaller = new Thread(() =>
        {
            signallerThread = Environment.CurrentManagedThreadId;
            fence.Signal();
            Thread.Sleep(200); // a continuation run inline would finish on this thread within this time
        });
        signaller.Start();
        int resumed = await resumedOn.WaitAsync(TimeSpan.FromSeconds(10));
        signaller.Join();
        Assert.NotEqual(signallerThread, resumed);
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
    public async Task WaitAsyncOnASignalledFence_CompletesSynchronously()
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

    [Fact]
    public void AwaitNode_BackInItsPool_DoesNotKeepTheContextOfTheAwaitThatUsedIt()
    {
        // The thread's spare node outlives the await that used it. A context captured by that await (a test's or
        // a short-lived AsyncContext-style one) must not stay reachable from it once the await is over. Before:
        // Release kept the context for the next await, and the context lived as long as the thread.
        bool collected = false;
        RunOnANewThread(() =>
        {
            WeakReference context = AwaitOnceUnderAContext();
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            collected = !context.IsAlive; // checked on this thread, whose pool still holds the node
        });
        Assert.True(collected, "the awaiting thread's spare node kept the finished await's context alive");
    }

    /// <summary>Runs <paramref name="body"/> on a thread of its own (so its thread-static pool is fresh), rethrows
    /// what it threw here, and returns that thread's managed id.</summary>
    private static int RunOnANewThread(Action body)
    {
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                body();
            }
#pragma warning disable CA1031 // reported on the test thread below
            catch (Exception ex)
#pragma warning restore CA1031
            {
                failure = ex;
            }
        });
        thread.Start();
        thread.Join();
        Assert.Null(failure);
        return thread.ManagedThreadId;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference AwaitOnceUnderAContext()
    {
        var context = new CapturingContext();
        SynchronizationContext.SetSynchronizationContext(context);
        try
        {
            FenceSource fence = Pending();
            ValueTaskAwaiter awaiter = fence.WaitAsync().GetAwaiter();
            bool ran = false;
            awaiter.UnsafeOnCompleted(() => ran = true);
            fence.Signal();
            Assert.Equal(1, context.Posts); // the continuation went to the captured context
            context.RunPosted(); // runs it here; the node goes back to this thread's pool
            Assert.True(ran);
            awaiter.GetResult();
            return new WeakReference(context);
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(null);
        }
    }
}
