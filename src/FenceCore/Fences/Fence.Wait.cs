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
public partial class Fence
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

        EnableSignaling();
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
    /// <see cref="WaitAny"/>, with the same result (the lowest index among those signalled when the wait
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
    /// asynchronous <see cref="WaitAll"/>.</summary>
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

    /// <summary>Waits asynchronously until the fence signals. Completes synchronously, without allocating,
    /// when it already has.</summary>
    /// <exception cref="OperationCanceledException">The token was cancelled first.</exception>
    public ValueTask WaitAsync(CancellationToken cancellationToken = default)
    {
        if (Poll())
        {
            return default;
        }

        ThrowIfCancelledAndPending(cancellationToken);
        AsyncWaiter waiter = cancellationToken.CanBeCanceled ? new AsyncWaiter(this) : AsyncWaiter.Rent(this);
        return waiter.Start(Timeout.InfiniteTimeSpan, cancellationToken) ? default : new ValueTask(waiter, waiter.Version);
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

        EnableSignaling();
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
    /// A wait with neither timeout nor cancellation (<c>await fence</c>, <see cref="WaitAsync(CancellationToken)"/>
    /// without a token) is pooled: one waiter per thread is kept, and its <see cref="GetResult(short)"/>
    /// returns it, so such waits allocate nothing once warm. Only those: a timer or token callback can
    /// still be running after the wait completed, and must never find the waiter reused for another fence.
    /// A second <c>await</c> of the same <see cref="ValueTask"/> fails on the version check, as for any
    /// pooled value-task source.
    /// </remarks>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The timer is disposed when the wait completes, by whichever path completes it.")]
    private sealed class AsyncWaiter : FenceCallback, IValueTaskSource<bool>, IValueTaskSource
    {
        [ThreadStatic]
        private static AsyncWaiter? t_spare;

        private Fence _fence;
        private ManualResetValueTaskSourceCore<bool> _core;
        private bool _pooled;
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

        /// <summary>A waiter for a wait with no timeout and no token, from this thread's spare if it has one.</summary>
        public static AsyncWaiter Rent(Fence fence)
        {
            AsyncWaiter? waiter = t_spare;
            if (waiter is null)
            {
                return new AsyncWaiter(fence) { _pooled = true };
            }

            t_spare = null;
            waiter._fence = fence;
            return waiter;
        }

        /// <summary>Registers; returns true if the fence had already signalled (nothing to await).</summary>
        /// <param name="timeout">How long to wait.</param>
        /// <param name="token">Cancels the wait.</param>
        /// <param name="time">The clock the timeout runs on; null for the system's.</param>
        public bool Start(TimeSpan timeout, CancellationToken token, TimeProvider? time = null)
        {
            if (!_fence.AddCallback(this))
            {
                if (_pooled)
                {
                    Recycle(); // never handed out
                }

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
            if (_pooled)
            {
                _core.SetResult(result); // no timer, no token: the signal is the only way to complete
                return;
            }

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

        public bool GetResult(short token)
        {
            bool result = _core.GetResult(token); // throws for a stale token before anything is reset
            if (_pooled)
            {
                Recycle();
            }

            return result;
        }

        void IValueTaskSource.GetResult(short token) => GetResult(token);

        /// <summary>Makes a completed, consumed pooled waiter this thread's spare. Its node is free (it ran),
        /// and with no timer and no token nothing else can still reach it.</summary>
        private void Recycle()
        {
            _fence = null!;
            _completed = 0;
            _core.Reset();
            t_spare ??= this;
        }

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }
}
