using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;
using FenceCore.Internal;

namespace FenceCore;

/// <summary>Waiting on fences.</summary>
/// <remarks>
/// How the results map to the kernel's return values (<c>dma_fence_wait_timeout</c>,
/// <c>dma_fence_default_wait</c>, <c>dma_fence_wait_any_timeout</c>):
/// <list type="table">
/// <listheader><term>kernel</term><description>FenceCore</description></listheader>
/// <item><term>&gt; 0 (remaining jiffies; 1 for a zero timeout on a signalled fence)</term><description><c>true</c>, or the index for wait-any</description></item>
/// <item><term>0 (timed out)</term><description><c>false</c>, or -1 for wait-any</description></item>
/// <item><term>-ERESTARTSYS (interrupted)</term><description><see cref="OperationCanceledException"/> from the token</description></item>
/// <item><term>-EINVAL (negative timeout, empty set)</term><description><see cref="ArgumentOutOfRangeException"/> / <see cref="ArgumentException"/></description></item>
/// </list>
/// A zero timeout never blocks. A wait enables signalling first, as the kernel's does.
/// </remarks>
public partial class Fence : IValueTaskSource
{
    [ThreadStatic]
    private static BlockingWaiter? t_waiter;

    /// <summary>Blocks until the fence signals.</summary>
    /// <exception cref="OperationCanceledException">The token was cancelled first.</exception>
    public void Wait(CancellationToken cancellationToken = default) =>
        Wait(Timeout.InfiniteTimeSpan, cancellationToken);

    /// <summary>Blocks until the fence signals or the timeout expires.</summary>
    /// <param name="timeout">Zero to poll without blocking; <see cref="Timeout.InfiniteTimeSpan"/> for no limit.</param>
    /// <param name="cancellationToken">Interrupts the wait (the kernel's interruptible wait).</param>
    /// <returns>True if signalled; false on timeout.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is negative (other than infinite).</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled before the fence signalled.</exception>
    public bool Wait(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ValidateTimeout(timeout, nameof(timeout));
        if (Poll())
        {
            return true;
        }

        EnableSignalingCore(announce: timeout != TimeSpan.Zero); // a waiter is added next, unless this is a poll
        if (Poll())
        {
            return true;
        }

        if (timeout == TimeSpan.Zero)
        {
            return false;
        }

        ThrowIfCancelledAndPending(cancellationToken);
        BlockingWaiter waiter = t_waiter ?? new BlockingWaiter();
        t_waiter = null;
        if (!AddCallback(waiter))
        {
            t_waiter = waiter;
            return true;
        }

        bool set;
        try
        {
            set = waiter.Event.Wait(timeout, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            if (RemoveCallback(waiter))
            {
                // Not reused: its cell stays linked (removed) until this fence drops it, and a reused
                // node would need a fresh cell on every later add. Dropping it keeps the common path
                // allocation-free.
                throw;
            }

            // The signal won the race: report it. The waiter will still be set, so it is not reused.
            return true;
        }

        if (set)
        {
            waiter.Event.Reset();
            t_waiter = waiter;
            return true;
        }

        if (RemoveCallback(waiter))
        {
            return false; // timed out: the waiter is dropped, as after a cancellation
        }

        return true; // signalled between the timeout and the removal
    }

    /// <summary>
    /// Blocks until the fence signals or <paramref name="timeout"/> passes on <paramref name="timeProvider"/>'s
    /// clock: with the virtual GPU's provider (<c>Gpu.TimeProvider</c>) the timeout follows virtual time, with
    /// a <c>FakeTimeProvider</c> it expires when the test advances the clock. Another thread must move that
    /// clock (or signal the fence): this one is blocked.
    /// </summary>
    /// <returns>True if signalled; false on timeout.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="timeProvider"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is negative (other than infinite) or too long.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled before the fence signalled.</exception>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026", Justification = "The shape of Task.Wait plus a clock, beside the existing Wait pair.")]
    public bool Wait(TimeSpan timeout, TimeProvider timeProvider, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        if (timeProvider == TimeProvider.System || timeout == Timeout.InfiniteTimeSpan)
        {
            return Wait(timeout, cancellationToken); // the system's clock, or no clock at all
        }

        ValidateTimeout(timeout, nameof(timeout));
        if (Poll())
        {
            return true;
        }

        EnableSignalingCore(announce: timeout != TimeSpan.Zero); // a waiter is added next, unless this is a poll
        if (Poll() || timeout == TimeSpan.Zero)
        {
            return IsSignaled;
        }

        ThrowIfCancelledAndPending(cancellationToken);

        // Not the pooled waiter, and not disposed: the timer's callback may still run after this wait
        // returned, and setting a disposed event would throw on the clock's thread. Without a blocked
        // WaitHandle the event holds no kernel object, so the GC reclaims it.
#pragma warning disable CA2000
        var gate = new ManualResetEventSlim(false);
#pragma warning restore CA2000
        var node = new WaitAnyNode(gate);
        if (!AddCallback(node))
        {
            return true;
        }

        using (ITimer timer = timeProvider.CreateTimer(static g => ((ManualResetEventSlim)g!).Set(), gate, timeout, Timeout.InfiniteTimeSpan))
        {
            try
            {
                gate.Wait(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                if (RemoveCallback(node))
                {
                    throw;
                }

                return true; // the signal won the race
            }
        }

        // Woken by the signal, or by the timer: a timeout counts only if the callback was still queued.
        return IsSignaled || !RemoveCallback(node);
    }

    /// <summary>
    /// Waits until any of <paramref name="fences"/> signals and returns the index of the first signalled
    /// one (the lowest index among those signalled when the wait ends), or -1 on timeout. Mirrors
    /// <c>dma_fence_wait_any_timeout</c>.
    /// </summary>
    /// <exception cref="ArgumentException">The set is empty.</exception>
    /// <exception cref="ArgumentNullException">An element is null.</exception>
    public static int WaitAny(ReadOnlySpan<Fence> fences, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ValidateSet(fences, nameof(fences));
        ValidateTimeout(timeout, nameof(timeout));
        int first = FirstSignaled(fences);
        if (first >= 0 || timeout == TimeSpan.Zero)
        {
            return first;
        }

        cancellationToken.ThrowIfCancellationRequested(); // nothing was signalled just above
        using var gate = new ManualResetEventSlim(false);
        var nodes = new WaitAnyNode[fences.Length];
        try
        {
            for (int i = 0; i < fences.Length; i++)
            {
                var node = new WaitAnyNode(gate);
                if (!fences[i].AddCallback(node))
                {
                    return i;
                }

                nodes[i] = node;
            }

            try
            {
                gate.Wait(timeout, cancellationToken);
            }
            catch (OperationCanceledException) when (FirstSignaled(fences) >= 0)
            {
                // A signal that was already visible wins over the cancellation.
            }

            return FirstSignaled(fences);
        }
        finally
        {
            for (int i = 0; i < nodes.Length; i++)
            {
                if (nodes[i] is { } node)
                {
                    fences[i].RemoveCallback(node);
                }
            }
        }
    }

    /// <summary>As <see cref="WaitAny(ReadOnlySpan{Fence}, TimeSpan, CancellationToken)"/>, with the timeout
    /// measured on <paramref name="timeProvider"/>'s clock.</summary>
    /// <returns>The index of the first signalled fence, or -1 on timeout.</returns>
    /// <param name="timeProvider">The clock the timeout runs on: with the virtual GPU's <c>Gpu.TimeProvider</c>
    /// the timeout follows virtual time, with a <c>FakeTimeProvider</c> it expires when the test advances the
    /// clock. Another thread must move that clock (or satisfy the wait): this one is blocked.</param>
    /// <param name="fences">The fences (not empty, no null element).</param>
    /// <param name="timeout">How long to wait on that clock.</param>
    /// <param name="cancellationToken">Interrupts the wait.</param>
    /// <exception cref="ArgumentException">The set is empty.</exception>
    /// <exception cref="ArgumentNullException">An element or <paramref name="timeProvider"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is negative (other than infinite) or too long.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled before a fence signalled.</exception>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026", Justification = "The blocking wait's shape plus a clock, as Task.WaitAsync(TimeSpan, TimeProvider, CancellationToken).")]
    public static int WaitAny(ReadOnlySpan<Fence> fences, TimeSpan timeout, TimeProvider timeProvider, CancellationToken cancellationToken = default)
    {
        ValidateSet(fences, nameof(fences));
        return ClockTimeout.Run(timeout, timeProvider, fences.ToArray(), static (set, t, token) => WaitAny(set, t, token), cancellationToken);
    }

    /// <summary>As <see cref="WaitAll(ReadOnlySpan{Fence}, TimeSpan, CancellationToken)"/>, with the timeout
    /// measured on <paramref name="timeProvider"/>'s clock.</summary>
    /// <returns>True when all signalled; false on timeout.</returns>
    /// <param name="timeProvider">The clock the timeout runs on: with the virtual GPU's <c>Gpu.TimeProvider</c>
    /// the timeout follows virtual time, with a <c>FakeTimeProvider</c> it expires when the test advances the
    /// clock. Another thread must move that clock (or satisfy the wait): this one is blocked.</param>
    /// <param name="fences">The fences (not empty, no null element).</param>
    /// <param name="timeout">How long to wait on that clock.</param>
    /// <param name="cancellationToken">Interrupts the wait.</param>
    /// <exception cref="ArgumentException">The set is empty.</exception>
    /// <exception cref="ArgumentNullException">An element or <paramref name="timeProvider"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is negative (other than infinite) or too long.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled before every fence signalled.</exception>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026", Justification = "The blocking wait's shape plus a clock, as Task.WaitAsync(TimeSpan, TimeProvider, CancellationToken).")]
    public static bool WaitAll(ReadOnlySpan<Fence> fences, TimeSpan timeout, TimeProvider timeProvider, CancellationToken cancellationToken = default)
    {
        ValidateSet(fences, nameof(fences));
        return ClockTimeout.Run(timeout, timeProvider, fences.ToArray(), static (set, t, token) => WaitAll(set, t, token), cancellationToken);
    }

    /// <summary>Waits until every fence has signalled, sharing one timeout across them.</summary>
    /// <returns>True when all signalled; false on timeout.</returns>
    public static bool WaitAll(ReadOnlySpan<Fence> fences, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ValidateSet(fences, nameof(fences));
        ValidateTimeout(timeout, nameof(timeout));
        long start = FenceClock.NowNs;
        foreach (Fence fence in fences)
        {
            if (!fence.Wait(Remaining(timeout, start), cancellationToken))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Waits asynchronously until any of <paramref name="fences"/> signals: the asynchronous
    /// <see cref="WaitAny(ReadOnlySpan{Fence}, TimeSpan, CancellationToken)"/>, with the same result (the lowest index among those signalled when the wait
    /// ends, or -1 on timeout), the same checks and no thread blocked.
    /// </summary>
    /// <param name="fences">The fences; copied when the call starts.</param>
    /// <param name="timeout">Zero to poll without waiting; <see cref="Timeout.InfiniteTimeSpan"/> for no limit.</param>
    /// <param name="cancellationToken">Interrupts the wait.</param>
    /// <exception cref="ArgumentException">The set is empty.</exception>
    /// <exception cref="ArgumentNullException">The list or an element is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is negative (other than infinite) or too long.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled before any fence signalled.</exception>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026", Justification = "The same pair of shapes as Fence.Wait and Fence.WaitAsync: with and without a timeout, each with an optional token.")]
    public static ValueTask<int> WaitAnyAsync(IReadOnlyList<Fence> fences, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        WaitAnyOn(fences, timeout, null, cancellationToken);

    /// <summary>As <see cref="WaitAnyAsync(IReadOnlyList{Fence}, TimeSpan, CancellationToken)"/>, with the
    /// timeout measured on <paramref name="timeProvider"/>'s clock and timers.</summary>
    /// <param name="fences">The fences; copied when the call starts.</param>
    /// <param name="timeout">How long to wait on that clock.</param>
    /// <param name="timeProvider">The clock (the virtual GPU's <c>Gpu.TimeProvider</c>, a test's <c>FakeTimeProvider</c>).</param>
    /// <param name="cancellationToken">Interrupts the wait.</param>
    /// <returns>The lowest index among those signalled when the wait ends, or -1 on timeout.</returns>
    /// <exception cref="ArgumentNullException">The list, an element or <paramref name="timeProvider"/> is null.</exception>
    /// <exception cref="ArgumentException">The set is empty.</exception>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026", Justification = "The shape of Task.WaitAsync(TimeSpan, TimeProvider, CancellationToken).")]
    public static ValueTask<int> WaitAnyAsync(IReadOnlyList<Fence> fences, TimeSpan timeout, TimeProvider timeProvider, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        return WaitAnyOn(fences, timeout, timeProvider, cancellationToken);
    }

    /// <summary>The checks and the fast path of both wait-any forms; <paramref name="time"/> null: the system clock.</summary>
    private static ValueTask<int> WaitAnyOn(IReadOnlyList<Fence> fences, TimeSpan timeout, TimeProvider? time, CancellationToken cancellationToken)
    {
        Fence[] set = CopySet(fences, nameof(fences));
        ValidateTimeout(timeout, nameof(timeout));
        int first = FirstSignaled(set);
        if (first >= 0 || timeout == TimeSpan.Zero)
        {
            return new ValueTask<int>(first);
        }

        return cancellationToken.IsCancellationRequested
            ? ValueTask.FromCanceled<int>(cancellationToken)
            : WaitAnySlowAsync(set, timeout, time, cancellationToken);
    }

    /// <summary>Waits asynchronously, without a timeout, until any of <paramref name="fences"/> signals.</summary>
    /// <returns>The lowest index among those signalled when the wait ends.</returns>
    /// <inheritdoc cref="WaitAnyAsync(IReadOnlyList{Fence}, TimeSpan, CancellationToken)"/>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026", Justification = "The same pair of shapes as Fence.Wait and Fence.WaitAsync: with and without a timeout, each with an optional token.")]
    public static ValueTask<int> WaitAnyAsync(IReadOnlyList<Fence> fences, CancellationToken cancellationToken = default) =>
        WaitAnyAsync(fences, Timeout.InfiniteTimeSpan, cancellationToken);

    /// <summary>Waits asynchronously until every fence has signalled, sharing one timeout across them: the
    /// asynchronous <see cref="WaitAll(ReadOnlySpan{Fence}, TimeSpan, TimeProvider, CancellationToken)"/>.</summary>
    /// <returns>True when all signalled; false on timeout.</returns>
    /// <inheritdoc cref="WaitAnyAsync(IReadOnlyList{Fence}, TimeSpan, CancellationToken)"/>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026", Justification = "The same pair of shapes as Fence.Wait and Fence.WaitAsync: with and without a timeout, each with an optional token.")]
    public static ValueTask<bool> WaitAllAsync(IReadOnlyList<Fence> fences, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        Fence[] set = CopySet(fences, nameof(fences));
        ValidateTimeout(timeout, nameof(timeout));
        for (int i = 0; i < set.Length; i++)
        {
            if (!set[i].Poll())
            {
                return timeout == TimeSpan.Zero ? new ValueTask<bool>(false) : WaitAllSlowAsync(set, i, timeout, cancellationToken);
            }
        }

        return new ValueTask<bool>(true);
    }

    /// <summary>Waits asynchronously, without a timeout, until every fence has signalled.</summary>
    /// <inheritdoc cref="WaitAnyAsync(IReadOnlyList{Fence}, TimeSpan, CancellationToken)"/>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026", Justification = "The same pair of shapes as Fence.Wait and Fence.WaitAsync: with and without a timeout, each with an optional token.")]
    public static async ValueTask WaitAllAsync(IReadOnlyList<Fence> fences, CancellationToken cancellationToken = default) =>
        await WaitAllAsync(fences, Timeout.InfiniteTimeSpan, cancellationToken).ConfigureAwait(false);

    private static async ValueTask<int> WaitAnySlowAsync(Fence[] fences, TimeSpan timeout, TimeProvider? time, CancellationToken cancellationToken)
    {
        var gate = new WaitGate(blocking: false);
        var nodes = new WaitGateCallback?[fences.Length];
        try
        {
            for (int i = 0; i < fences.Length; i++)
            {
                var node = new WaitGateCallback(gate);
                if (!fences[i].AddCallback(node))
                {
                    return i;
                }

                nodes[i] = node;
            }

            WaitDeadline deadline = time is null ? WaitDeadline.AtNs(AbsoluteNs(timeout)) : WaitDeadline.After(timeout, time);
            while (true)
            {
                gate.Reset(); // before the check: a signal after it leaves the gate set
                int first = FirstSignaled(fences);
                if (first >= 0)
                {
                    return first;
                }

                TimeSpan remaining = deadline.Remaining();
                if (remaining == TimeSpan.Zero)
                {
                    return -1;
                }

                try
                {
                    await gate.WaitAsync(remaining, cancellationToken, time).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (FirstSignaled(fences) >= 0)
                {
                    // A signal that was already visible wins over the cancellation; the loop reports it.
                }
            }
        }
        finally
        {
            for (int i = 0; i < nodes.Length; i++)
            {
                if (nodes[i] is { } node)
                {
                    fences[i].RemoveCallback(node);
                }
            }
        }
    }

    /// <summary>As <see cref="WaitAllAsync(IReadOnlyList{Fence}, TimeSpan, CancellationToken)"/>, with the
    /// timeout measured on <paramref name="timeProvider"/>'s clock and timers.</summary>
    /// <param name="fences">The fences; copied when the call starts.</param>
    /// <param name="timeout">How long to wait on that clock, shared across the fences.</param>
    /// <param name="timeProvider">The clock.</param>
    /// <param name="cancellationToken">Interrupts the wait.</param>
    /// <returns>True when all signalled; false on timeout.</returns>
    /// <exception cref="ArgumentNullException">The list, an element or <paramref name="timeProvider"/> is null.</exception>
    /// <exception cref="ArgumentException">The set is empty.</exception>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026", Justification = "The shape of Task.WaitAsync(TimeSpan, TimeProvider, CancellationToken).")]
    public static ValueTask<bool> WaitAllAsync(IReadOnlyList<Fence> fences, TimeSpan timeout, TimeProvider timeProvider, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        Fence[] set = CopySet(fences, nameof(fences));
        ValidateTimeout(timeout, nameof(timeout));
        return WaitAllOnClockAsync(set, WaitDeadline.After(timeout, timeProvider), timeProvider, cancellationToken);
    }

    private static async ValueTask<bool> WaitAllOnClockAsync(Fence[] set, WaitDeadline deadline, TimeProvider timeProvider, CancellationToken cancellationToken)
    {
        foreach (Fence fence in set)
        {
            if (!fence.Poll() && !await fence.WaitAsync(deadline.Remaining(), timeProvider, cancellationToken).ConfigureAwait(false))
            {
                return false;
            }
        }

        return true;
    }

    private static async ValueTask<bool> WaitAllSlowAsync(Fence[] fences, int from, TimeSpan timeout, CancellationToken cancellationToken)
    {
        long start = FenceClock.NowNs;
        for (int i = from; i < fences.Length; i++)
        {
            if (!fences[i].Poll() && !await fences[i].WaitAsync(Remaining(timeout, start), cancellationToken).ConfigureAwait(false))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The absolute <see cref="FenceClock"/> time <paramref name="timeout"/> from now; <see cref="long.MaxValue"/> for none.</summary>
    internal static long AbsoluteNs(TimeSpan timeout)
    {
        long now = FenceClock.NowNs;
        return timeout == Timeout.InfiniteTimeSpan || timeout.Ticks > (long.MaxValue - now) / 100
            ? long.MaxValue
            : now + (timeout.Ticks * 100);
    }

    private static Fence[] CopySet(IReadOnlyList<Fence> fences, string paramName)
    {
        ArgumentNullException.ThrowIfNull(fences, paramName);
        var set = new Fence[fences.Count];
        for (int i = 0; i < set.Length; i++)
        {
            set[i] = fences[i];
        }

        ValidateSet(set, paramName);
        return set;
    }

    /// <summary>Waits asynchronously until the fence signals. Completes synchronously when it already has.</summary>
    /// <remarks>Without a token nothing is allocated: the value task's source is the fence itself, so it may
    /// be awaited more than once, and an <c>await</c> that suspends registers a callback node pooled per
    /// thread. The continuation never runs on the signalling thread. With a token, each wait allocates its
    /// waiter.</remarks>
    /// <exception cref="OperationCanceledException">The token was cancelled first.</exception>
    public ValueTask WaitAsync(CancellationToken cancellationToken = default)
    {
        // PERF: without a token the fence is its own value-task source (see AwaitContinuation): nothing is
        // allocated, registered or enabled until an awaiter asks to be called back (AsyncWaiterBenchmarks).
        // Until then the value task is a poll, as dma_fence_is_signaled is; the awaiter's registration is an
        // add-callback, which enables signalling as dma_fence_add_callback does. The token's path is a
        // method of its own, so that this one inlines and zeroes no frame.
        if (cancellationToken.CanBeCanceled)
        {
            return WaitCancellableAsync(cancellationToken);
        }

        return IsSignaled ? default : new ValueTask(this, 0);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private ValueTask WaitCancellableAsync(CancellationToken cancellationToken)
    {
        if (Poll())
        {
            return default;
        }

        ThrowIfCancelledAndPending(cancellationToken);
        var waiter = new AsyncWaiter(this);
        return waiter.Start(Timeout.InfiniteTimeSpan, cancellationToken) ? default : new ValueTask(waiter, waiter.Version);
    }

    // ----------------------------------------------------------------------------------------------
    // The fence as the source of its own ValueTask (a wait with neither timeout nor token)

    /// <summary>Succeeded once the fence has signalled (with or without an error: a wait reports the signal,
    /// not its outcome, which <see cref="Status"/> holds), pending before. Polls as <see cref="Poll"/> does.</summary>
    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) =>
        Poll() ? ValueTaskSourceStatus.Succeeded : ValueTaskSourceStatus.Pending;

    /// <summary>Ends the wait. A fence signals once and stays signalled, so the same <see cref="ValueTask"/>
    /// may be consumed any number of times, unlike a pooled source's.</summary>
    /// <exception cref="InvalidOperationException">The fence has not signalled: the value task was consumed
    /// before it completed (block with <see cref="Wait(CancellationToken)"/> instead).</exception>
    void IValueTaskSource.GetResult(short token)
    {
        if (!IsSignaled)
        {
            ThrowHelper.ThrowAwaitedBeforeSignal(this);
        }
    }

    /// <summary>Runs <paramref name="continuation"/> once the fence has signalled, never on the signalling
    /// thread nor inline here: on the captured <see cref="SynchronizationContext"/> or <see cref="TaskScheduler"/>
    /// when the awaiter asks for its scheduling context, otherwise on the thread pool, with the captured
    /// <see cref="ExecutionContext"/> when asked to flow it.</summary>
    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        AwaitContinuation cell = AwaitContinuation.Rent(continuation, state, flags);
        if (!AddPrivateCallback(cell, removable: false)) // the cell is this thread's until the fence signals; never removed
        {
            cell.Dispatch(); // signalled meanwhile: still asynchronously, as a completed source's OnCompleted does
        }
    }

    /// <summary>
    /// The callback node of one awaiter of a fence, pooled one per thread. Its continuation is dispatched when
    /// the fence signals. A node belongs to the pool of the thread that allocated it, and returns there just
    /// before its continuation runs, on whatever thread that is (just after it, when an execution context flows:
    /// the node is the state of that run), so an awaiting loop allocates nothing once warm: on one thread (a
    /// single-threaded context) it reuses the one node, and across the thread pool each thread's node is home
    /// again by the time that thread awaits next. Nothing else holds the node by
    /// then: it has no timer and no token to race with, and the signaller does not read a cell after invoking it.
    /// </summary>
    /// <remarks>PERF: going home through the node's own reference is a store; the pool of the thread that runs the
    /// continuation would be a thread-local lookup, which is a call on Linux (AwaitContinuationBenchmarks).</remarks>
    private sealed class AwaitContinuation : FenceCallback, IThreadPoolWorkItem
    {
        [ThreadStatic]
        private static SparePool? t_pool;

        private static readonly SendOrPostCallback s_post = static s => ((AwaitContinuation)s!).Run();
        private static readonly Action<object?> s_start = static s => ((AwaitContinuation)s!).Run();
        private static readonly ContextCallback s_runInContext = static s =>
        {
            var cell = (AwaitContinuation)s!;
            cell._continuation!(cell._state);
        };

        /// <summary>The pool of the thread that allocated this node, where it returns.</summary>
        private readonly SparePool _home;

        private Action<object?>? _continuation;
        private object? _state;
        private ExecutionContext? _executionContext;

        /// <summary>The captured <see cref="SynchronizationContext"/>, or null. PERF: the context and the scheduler have a
        /// field each, so the dispatch tests for null instead of a type (SynchronizationContext is not sealed: a cast
        /// helper call per await; AwaitContinuationBenchmarks).</summary>
        private SynchronizationContext? _context;

        /// <summary>The captured <see cref="TaskScheduler"/> when no context was; null: the thread pool.</summary>
        private TaskScheduler? _taskScheduler;

        public static AwaitContinuation Rent(Action<object?> continuation, object? state, ValueTaskSourceOnCompletedFlags flags)
        {
            SparePool pool = t_pool ?? CreatePool();
            AwaitContinuation? cell = Volatile.Read(ref pool.Spare); // acquire: the returning thread's stores to it are seen
            if (cell is null)
            {
                cell = new AwaitContinuation(pool);
            }
            else
            {
                // Only this thread takes from its pool. A node another thread brings home meanwhile may be
                // overwritten with null here: it is dropped, never handed out twice.
                pool.Spare = null;
            }

            // PERF: the continuation is kept by Release, and stored only when it changes: an awaiting loop passes the
            // same one each time (the awaiter's static delegate), so one write barrier less per await
            // (AwaitContinuationBenchmarks).
            if (!ReferenceEquals(cell._continuation, continuation))
            {
                cell._continuation = continuation;
            }

            cell._state = state;
            if ((flags & ValueTaskSourceOnCompletedFlags.FlowExecutionContext) != 0)
            {
                cell._executionContext = ExecutionContext.Capture();
            }

            if ((flags & ValueTaskSourceOnCompletedFlags.UseSchedulingContext) != 0)
            {
                // Released as null, so only a captured one is written.
                SynchronizationContext? context = SynchronizationContext.Current;
                if (context is not null && context.GetType() != typeof(SynchronizationContext))
                {
                    cell._context = context;
                }
                else if (TaskScheduler.Current is { } scheduler && scheduler != TaskScheduler.Default)
                {
                    cell._taskScheduler = scheduler;
                }
            }

            return cell;
        }

        protected internal override void Invoke(Fence fence) => Dispatch();

        public void Dispatch()
        {
            if (_context is { } context)
            {
                context.Post(s_post, this);
            }
            else if (_taskScheduler is { } scheduler)
            {
                _ = Task.Factory.StartNew(s_start, this, CancellationToken.None, TaskCreationOptions.DenyChildAttach, scheduler);
            }
            else
            {
                ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
            }
        }

        void IThreadPoolWorkItem.Execute() => Run();

        private void Run()
        {
            ExecutionContext? executionContext = _executionContext;
            if (executionContext is not null)
            {
                // The cell is the state of the run, so it returns to the pool only afterwards.
                ExecutionContext.Run(executionContext, s_runInContext, this);
                Release();
                return;
            }

            Action<object?> continuation = _continuation!;
            object? state = _state;
            Release();
            continuation(state);
        }

        /// <summary>Sends the node home, its state and captures cleared: a context or scheduler that has ended is
        /// not kept alive by the thread's spare node. The continuation stays (see <see cref="Rent"/>): for an
        /// <c>await</c> it is a static delegate of the BCL's awaiter, and the await's own state (the state machine
        /// or the caller's action) is the state, which is cleared. A delegate passed straight to
        /// <see cref="IValueTaskSource.OnCompleted"/> stays reachable from the spare node until the thread's next
        /// suspension on a fence replaces it: one delegate per thread at most.</summary>
        private void Release()
        {
            _state = null;
            _executionContext = null;
            _context = null;
            _taskScheduler = null;
            SparePool home = _home;
            if (Volatile.Read(ref home.Spare) is null)
            {
                // Release: the stores above, and the reads of the fields before them, come first. Two nodes coming
                // home at once may both see the pool empty; one is kept and the other dropped.
                Volatile.Write(ref home.Spare, this);
            }
        }

        private AwaitContinuation(SparePool home) => _home = home;

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static SparePool CreatePool() => t_pool = new SparePool();

        /// <summary>One thread's pool: at most one spare node.</summary>
        private sealed class SparePool
        {
            public AwaitContinuation? Spare;
        }
    }

    /// <summary>Waits asynchronously until the fence signals or the timeout expires.</summary>
    /// <returns>True if signalled; false on timeout.</returns>
    public ValueTask<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        WaitOnAsync(timeout, null, cancellationToken);

    /// <summary>The timed asynchronous wait of both forms; <paramref name="time"/> null: the system's timers.</summary>
    private ValueTask<bool> WaitOnAsync(TimeSpan timeout, TimeProvider? time, CancellationToken cancellationToken)
    {
        ValidateTimeout(timeout, nameof(timeout));
        if (Poll())
        {
            return new ValueTask<bool>(true);
        }

        EnableSignalingCore(announce: timeout != TimeSpan.Zero); // a waiter is added next, unless this is a poll
        if (Poll())
        {
            return new ValueTask<bool>(true);
        }

        if (timeout == TimeSpan.Zero)
        {
            return new ValueTask<bool>(false);
        }

        ThrowIfCancelledAndPending(cancellationToken);
        var waiter = new AsyncWaiter(this);
        return waiter.Start(timeout, cancellationToken, time) ? new ValueTask<bool>(true) : new ValueTask<bool>(waiter, waiter.Version);
    }

    /// <summary>
    /// Waits asynchronously until the fence signals or <paramref name="timeout"/> passes on
    /// <paramref name="timeProvider"/>'s clock, as <see cref="Task.WaitAsync(TimeSpan, TimeProvider, CancellationToken)"/>
    /// does: with the virtual GPU's provider (<c>Gpu.TimeProvider</c>) the timeout follows virtual time; with
    /// a <c>FakeTimeProvider</c> it fires when the test advances the clock.
    /// </summary>
    /// <returns>True if signalled; false on timeout.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="timeProvider"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is negative (other than infinite) or too long.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled first.</exception>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026", Justification = "The shape of Task.WaitAsync(TimeSpan, TimeProvider, CancellationToken), beside the existing WaitAsync pair.")]
    public ValueTask<bool> WaitAsync(TimeSpan timeout, TimeProvider timeProvider, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        return WaitOnAsync(timeout, timeProvider, cancellationToken);
    }

    /// <summary>Lets <c>await fence</c> wait for the fence.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA2012", Justification = "The awaiter is the single consumer of the ValueTask.")]
    public ValueTaskAwaiter GetAwaiter() => WaitAsync().GetAwaiter();

    /// <summary>
    /// Throws for a cancelled token only while the fence is still pending: a signal published before the
    /// cancellation wins, so a wait never reports cancellation for a fence already seen signalled (found
    /// by the Coyote wait tests).
    /// </summary>
    private void ThrowIfCancelledAndPending(CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested && !Poll())
        {
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    private static int FirstSignaled(ReadOnlySpan<Fence> fences)
    {
        for (int i = 0; i < fences.Length; i++)
        {
            if (fences[i].Poll())
            {
                return i;
            }
        }

        return -1;
    }

    private static void ValidateSet(ReadOnlySpan<Fence> fences, string paramName)
    {
        if (fences.IsEmpty)
        {
            ThrowHelper.ThrowEmptyFenceSet(paramName);
        }

        for (int i = 0; i < fences.Length; i++)
        {
            if (fences[i] is null)
            {
                ThrowHelper.ThrowNullFenceInSet(paramName, i);
            }
        }
    }

    /// <summary>What is left of <paramref name="timeout"/> since <paramref name="startNs"/> (infinite and zero
    /// stay as they are), for waits that share one timeout across several fences.</summary>
    internal static TimeSpan Remaining(TimeSpan timeout, long startNs)
    {
        if (timeout == Timeout.InfiniteTimeSpan || timeout == TimeSpan.Zero)
        {
            return timeout;
        }

        long left = timeout.Ticks - ((FenceClock.NowNs - startNs) / 100);
        return left > 0 ? TimeSpan.FromTicks(left) : TimeSpan.Zero;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void ValidateTimeout(TimeSpan timeout, string paramName)
    {
        if (timeout < TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
        {
            ThrowHelper.ThrowNegativeTimeout(paramName);
        }

        // Checked here, before any waiter is registered: the blocking primitives reject longer timeouts
        // only once the wait has begun, which left the waiter queued (a 30-day wait threw after its add).
        if (timeout.TotalMilliseconds > int.MaxValue)
        {
            ThrowHelper.ThrowTimeoutTooLong(timeout, paramName);
        }
    }

    /// <summary>A reusable per-thread blocking waiter (the kernel's on-stack wait callback).</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "Thread-static and reused for the thread's lifetime; the event holds no kernel handle unless a wait blocks.")]
    private sealed class BlockingWaiter : FenceCallback
    {
        public readonly ManualResetEventSlim Event = new(false, spinCount: 32);

        protected internal override void Invoke(Fence fence) => Event.Set();
    }

    private sealed class WaitAnyNode(ManualResetEventSlim gate) : FenceCallback
    {
        protected internal override void Invoke(Fence fence) => gate.Set();
    }

    /// <summary>
    /// One asynchronous wait. Completed exactly once, by whichever of signal, timeout or cancellation
    /// wins the <see cref="_completed"/> CAS; timeout and cancellation only complete it if they also
    /// removed the callback, so a signal that was already running is never reported as a timeout.
    /// Continuations run asynchronously, never on the signalling thread.
    /// </summary>
    /// <remarks>
    /// Only waits with a timeout or a token use it, one per wait and never pooled: a timer or token callback
    /// can still be running after the wait completed, and must never find the waiter reused for another
    /// fence. A wait with neither is the fence's own value task (<see cref="AwaitContinuation"/>).
    /// </remarks>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The timer is disposed when the wait completes, by whichever path completes it.")]
    private sealed class AsyncWaiter : FenceCallback, IValueTaskSource<bool>, IValueTaskSource
    {
        private readonly Fence _fence;
        private ManualResetValueTaskSourceCore<bool> _core;
        private CancellationTokenRegistration _registration;
        private ITimer? _timer;
        private CancellationToken _token;

        /// <summary>0 until completed; set once by CAS.</summary>
        private int _completed;

        public AsyncWaiter(Fence fence)
        {
            _fence = fence;
            _core.RunContinuationsAsynchronously = true;
        }

        public short Version => _core.Version;

        /// <summary>Registers; returns true if the fence had already signalled (nothing to await).</summary>
        /// <param name="timeout">How long to wait.</param>
        /// <param name="token">Cancels the wait.</param>
        /// <param name="time">The clock the timeout runs on; null for the system's.</param>
        public bool Start(TimeSpan timeout, CancellationToken token, TimeProvider? time = null)
        {
            if (!_fence.AddCallback(this))
            {
                return true;
            }

            _token = token;
            if (token.CanBeCanceled)
            {
                _registration = token.UnsafeRegister(static s => ((AsyncWaiter)s!).OnCancelled(), this);
            }

            if (timeout != Timeout.InfiniteTimeSpan)
            {
                _timer = time is null || time == TimeProvider.System
                    ? new Timer(static s => ((AsyncWaiter)s!).OnTimedOut(), this, timeout, Timeout.InfiniteTimeSpan)
                    : time.CreateTimer(static s => ((AsyncWaiter)s!).OnTimedOut(), this, timeout, Timeout.InfiniteTimeSpan);
            }

            if (Volatile.Read(ref _completed) != 0)
            {
                // Signalled before the registration and timer existed: release them now.
                _registration.Unregister();
                _timer?.Dispose();
            }

            return false;
        }

        protected internal override void Invoke(Fence fence) => Complete(true, null);

        private void OnCancelled()
        {
            if (_fence.RemoveCallback(this))
            {
                Complete(false, new OperationCanceledException(_token));
            }
        }

        private void OnTimedOut()
        {
            if (_fence.RemoveCallback(this))
            {
                Complete(false, null);
            }
        }

        private void Complete(bool result, Exception? error)
        {
            if (Interlocked.CompareExchange(ref _completed, 1, 0) != 0)
            {
                return;
            }

            _registration.Unregister();
            _timer?.Dispose();
            if (error is null)
            {
                _core.SetResult(result);
            }
            else
            {
                _core.SetException(error);
            }
        }

        public bool GetResult(short token) => _core.GetResult(token);

        void IValueTaskSource.GetResult(short token) => GetResult(token);

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }
}
