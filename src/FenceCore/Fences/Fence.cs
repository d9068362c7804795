using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using FenceCore.Internal;

namespace FenceCore;

/// <summary>
/// A point on a timeline that signals exactly once. Mirrors <c>struct dma_fence</c> and the core of
/// <c>dma-fence.c</c>.
/// </summary>
/// <remarks>
/// <para>
/// A fence has a context (its timeline, see <see cref="FenceContext"/>) and a 64-bit seqno. It goes
/// from pending to signalled once, carrying an optional error and a monotonic timestamp, and then runs
/// its callbacks in registration order.
/// </para>
/// <para>
/// Lock-free: no lock is taken on <see cref="Signal()"/>, <see cref="AddCallback(FenceCallback)"/>,
/// <see cref="RemoveCallback"/> or <see cref="IsSignaled"/>. The callback list is a Treiber stack whose
/// head is swapped to a sentinel by the one signaller that wins; callbacks always run outside any lock.
/// </para>
/// <para>
/// Size: 64 bytes on 64-bit (16 bytes of object header plus 48 of fields: context, seqno, callback-list
/// head, timestamp, deadline, state word and error), the same as the kernel's struct. A unit test pins
/// the figure.
/// </para>
/// <para>
/// Differences from the kernel, on purpose: there is no reference count (the .NET GC is the RCU grace
/// period, and a fence cannot be freed while anything can reach it), so "released with pending
/// signals" cannot happen; the signalled state is published only after the error and timestamp are
/// written, so <see cref="TimestampNs"/> never has to spin as <c>dma_fence_timestamp()</c> does.
/// </para>
/// </remarks>
[DebuggerDisplay("{ToString(),nq}")]
public partial class Fence
{
    private const int ClaimedBit = 1;
    private const int Seqno64Bit = 2;
    private const int EnableSignalBit = 4;

    /// <summary>The sentinel that replaces the callback-list head once the fence has signalled.</summary>
    private static readonly FenceCallback s_signaledSentinel = new SentinelCell();

    private readonly ulong _context;
    private readonly ulong _seqno;

    /// <summary>
    /// Head of the callback stack (newest first), or <see cref="s_signaledSentinel"/> once signalled.
    /// Written only by compare-and-swap (adders) and by one <see cref="Interlocked.Exchange{T}(ref T, T)"/>
    /// (the signaller, which is the linearization point of signalling); read with Volatile.Read.
    /// </summary>
    private FenceCallback? _callbacks;

    /// <summary>Signal time in ns. Written once by the winning signaller before it publishes; immutable after.</summary>
    private long _timestampNs;

    /// <summary>Earliest deadline hint in ns, <see cref="long.MaxValue"/> when none. Lowered only by CAS.</summary>
    private long _deadlineNs = long.MaxValue;

    /// <summary>
    /// Flag word: <see cref="ClaimedBit"/> (a signaller has won), <see cref="Seqno64Bit"/> (immutable),
    /// <see cref="EnableSignalBit"/> (enable-signalling has been requested). Bits are set only by CAS.
    /// </summary>
    private int _state;

    /// <summary>Negative errno or 0. Written before the signal is published; read after seeing it.</summary>
    private int _error;

    /// <summary>Creates a pending fence. Mirrors <c>dma_fence_init</c>, or <c>dma_fence_init64</c> when
    /// <paramref name="seqno64"/> is true.</summary>
    /// <param name="context">The timeline, from <see cref="FenceContext.Allocate"/>.</param>
    /// <param name="seqno">The position on the timeline.</param>
    /// <param name="seqno64">Compare seqnos on all 64 bits; otherwise the low 32 bits with wrap-around.</param>
    public Fence(ulong context, ulong seqno, bool seqno64 = false)
    {
        _context = context;
        _seqno = seqno;
        _state = seqno64 ? Seqno64Bit : 0;
    }

    /// <summary>The fence context (timeline id).</summary>
    public ulong Context => _context;

    /// <summary>The sequence number on <see cref="Context"/>.</summary>
    public ulong Seqno => _seqno;

    /// <summary>True when seqnos of this fence compare on 64 bits (<c>DMA_FENCE_FLAG_SEQNO64_BIT</c>).</summary>
    public bool UsesSeqno64 => (_state & Seqno64Bit) != 0;

    /// <summary>
    /// Raised for each exception a callback throws while the fence signals. With no handler attached,
    /// <see cref="Signal()"/> instead throws a <see cref="FenceCallbackException"/> once every callback
    /// has run. Either way the fence is signalled and the remaining callbacks still run.
    /// </summary>
    public static event EventHandler<FenceCallbackFailedEventArgs>? CallbackFailed;

    // ----------------------------------------------------------------------------------------------
    // Names (dma_fence_ops.get_driver_name / get_timeline_name)

    /// <summary>The name of the driver that owns the fence. Mirrors <c>get_driver_name</c>.</summary>
    public virtual string DriverName => "fencecore";

    /// <summary>The name of the fence's timeline. Mirrors <c>get_timeline_name</c>.</summary>
    public virtual string TimelineName => _context == FenceContext.Stub ? "stub" : "unbound";

    // ----------------------------------------------------------------------------------------------
    // Hooks for fence implementations (dma_fence_ops)

    /// <summary>
    /// Called at most once, the first time a waiter or callback needs this fence to signal (lazy
    /// enable-signalling). Return false if the fence has already passed or failed: it is then signalled
    /// at once (an implementation may call <see cref="SetError"/> first). Mirrors <c>enable_signaling</c>.
    /// </summary>
    protected virtual bool OnEnableSignaling() => true;

    /// <summary>
    /// An optional "has it signalled?" poll. Once it returns true it must keep returning true. It may
    /// call <see cref="SetError"/>. When it returns true, <see cref="IsSignaled"/> signals the fence as a
    /// side effect, running callbacks on the caller's thread, as <c>dma_fence_is_signaled</c> does.
    /// Mirrors <c>dma_fence_ops.signaled</c>.
    /// </summary>
    protected virtual bool PollSignaled() => false;

    /// <summary>
    /// Called when a deadline hint earlier than every previous one is set on a pending fence. The base
    /// class has already recorded it in <see cref="Deadline"/>. Mirrors <c>set_deadline</c>; may run on
    /// any thread, many times.
    /// </summary>
    protected virtual void OnDeadlineSet(long deadlineNs)
    {
    }

    // ----------------------------------------------------------------------------------------------
    // State

    /// <summary>
    /// True when the fence has signalled. If not, and the implementation's <see cref="PollSignaled"/>
    /// says it has, the fence is signalled now as a side effect (callbacks run on this thread).
    /// Mirrors <c>dma_fence_is_signaled</c>.
    /// </summary>
    public bool IsSignaled
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            if (IsSignaledFlag)
            {
                return true;
            }

            return PollAndSignal();
        }
    }

    /// <summary>True when the fence has signalled, without polling the implementation
    /// (<c>dma_fence_test_signaled_flag</c>).</summary>
    public bool IsSignaledFlag
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => ReferenceEquals(Volatile.Read(ref _callbacks), s_signaledSentinel); // acquire: pairs with the publishing exchange
    }

    /// <summary>
    /// The kernel's status: 0 while pending, 1 when signalled without error, the negative error when
    /// signalled with one. Mirrors <c>dma_fence_get_status</c>.
    /// </summary>
    public int Status
    {
        get
        {
            if (!IsSignaled)
            {
                return 0;
            }

            int error = Volatile.Read(ref _error);
            return error < 0 ? error : 1;
        }
    }

    /// <summary>The error the fence signalled with (a negative errno), or 0. Reported only once signalled,
    /// like the kernel's status.</summary>
    public int Error => IsSignaledFlag ? Volatile.Read(ref _error) : 0;

    /// <summary>True once signalled with an error.</summary>
    public bool IsFaulted => IsSignaledFlag && Volatile.Read(ref _error) < 0;

    /// <summary>
    /// The monotonic signal time in ns (see <see cref="FenceClock"/>). Mirrors <c>dma_fence_timestamp</c>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The fence has not signalled.</exception>
    public long TimestampNs
    {
        get
        {
            if (!IsSignaledFlag)
            {
                ThrowHelper.ThrowNotSignaled(this);
            }

            return Volatile.Read(ref _timestampNs);
        }
    }

    /// <summary>Gets the signal time when the fence has signalled.</summary>
    public bool TryGetTimestamp(out long timestampNs)
    {
        if (IsSignaledFlag)
        {
            timestampNs = Volatile.Read(ref _timestampNs);
            return true;
        }

        timestampNs = 0;
        return false;
    }

    /// <summary>The earliest deadline hint set on this fence, in ns, or null when none was set.</summary>
    public long? Deadline
    {
        get
        {
            long d = Volatile.Read(ref _deadlineNs);
            return d == long.MaxValue ? null : d;
        }
    }

    /// <summary>True once enable-signalling has been requested (<c>DMA_FENCE_FLAG_ENABLE_SIGNAL_BIT</c>).</summary>
    public bool IsSignalingEnabled => (Volatile.Read(ref _state) & EnableSignalBit) != 0;

    /// <summary>
    /// Records an error to report when the fence signals. Mirrors <c>dma_fence_set_error</c>.
    /// </summary>
    /// <param name="error">A negative errno in [-4095, -1], for example <c>-Errno.ECANCELED</c>.</param>
    /// <exception cref="ArgumentOutOfRangeException">The error is outside the errno range.</exception>
    /// <exception cref="InvalidOperationException">The fence has already signalled.</exception>
    public void SetError(int error)
    {
        if (!Errno.IsValidFenceError(error))
        {
            ThrowHelper.ThrowErrorOutOfRange(error, nameof(error));
        }

        if ((Volatile.Read(ref _state) & ClaimedBit) != 0)
        {
            ThrowHelper.ThrowErrorAfterSignal(this);
        }

        // Ordered write: the signaller's publishing exchange is a full fence, so a winner that claims
        // after this store publishes it. A SetError racing with Signal is a caller bug, as in the kernel.
        Volatile.Write(ref _error, error);
    }

    // ----------------------------------------------------------------------------------------------
    // Signalling

    /// <summary>
    /// Signals the fence now. Mirrors <c>dma_fence_signal</c>.
    /// </summary>
    /// <returns>True if this call signalled the fence; false if it had already signalled (the kernel's
    /// -EINVAL), in which case nothing changes.</returns>
    /// <exception cref="FenceCallbackException">A callback threw and no <see cref="CallbackFailed"/>
    /// handler is attached. The fence is signalled regardless.</exception>
    public bool Signal() => SignalCore(0, 0, useTimestamp: false);

    /// <summary>Signals the fence with an error, atomically: the error belongs to the winning signaller.</summary>
    /// <param name="error">A negative errno in [-4095, -1], or 0 for none.</param>
    public bool Signal(int error)
    {
        ValidateOptionalError(error);
        return SignalCore(error, 0, useTimestamp: false);
    }

    /// <summary>Signals with a caller-given timestamp. Mirrors <c>dma_fence_signal_timestamp</c>.</summary>
    public bool SignalWithTimestamp(long timestampNs) => SignalCore(0, timestampNs, useTimestamp: true);

    /// <summary>Signals with an error and a caller-given timestamp.</summary>
    public bool SignalWithTimestamp(int error, long timestampNs)
    {
        ValidateOptionalError(error);
        return SignalCore(error, timestampNs, useTimestamp: true);
    }

    private static void ValidateOptionalError(int error)
    {
        if (error != 0 && !Errno.IsValidFenceError(error))
        {
            ThrowHelper.ThrowErrorOutOfRange(error, nameof(error));
        }
    }

    private bool SignalCore(int error, long timestampNs, bool useTimestamp)
    {
        // Claim: exactly one signaller sets the bit. This decides who writes error and timestamp.
        int state = Volatile.Read(ref _state);
        while (true)
        {
            if ((state & ClaimedBit) != 0)
            {
                return false;
            }

            int seen = Interlocked.CompareExchange(ref _state, state | ClaimedBit, state);
            if (seen == state)
            {
                break;
            }

            state = seen;
        }

        if (error != 0)
        {
            _error = error;
        }

        _timestampNs = useTimestamp ? timestampNs : FenceClock.NowNs;
        Exception? hookFailure = null;
        try
        {
            OnSignaled();
        }
#pragma warning disable CA1031 // the signal must be published whatever the hook does
        catch (Exception ex)
#pragma warning restore CA1031
        {
            hookFailure = ex; // reported with the callbacks' failures, after the signal is published
        }

        // Publish: the exchange is a full fence, so error and timestamp are visible to anyone who sees
        // the sentinel. From here on no adder can link a cell, and the chain we took is ours alone.
        FenceCallback? head = Interlocked.Exchange(ref _callbacks, s_signaledSentinel);
        Debug.Assert(!ReferenceEquals(head, s_signaledSentinel), "a fence is published as signalled once");
        List<Exception>? failures = head is null ? null : RunCallbacks(head);
        if (hookFailure is not null)
        {
            (failures ??= []).Insert(0, hookFailure);
        }

        if (failures is not null)
        {
            ReportCallbackFailures(failures);
        }

        return true;
    }

    /// <summary>
    /// Called once on the winning signaller's thread when <see cref="Status"/>'s error and the timestamp
    /// are final, just before the signal is published (so before any callback runs and before
    /// <see cref="IsSignaledFlag"/> turns true). Anything that observes signals here sees them in the
    /// order they are published, which lets instrumentation check per-context ordering exactly.
    /// </summary>
    protected virtual void OnSignaled()
    {
    }

    private List<Exception>? RunCallbacks(FenceCallback newestFirst)
    {
        // Reverse the stack in place so callbacks run in registration order.
        FenceCallback? oldestFirst = null;
        FenceCallback? cell = newestFirst;
        while (cell is not null)
        {
            FenceCallback? next = cell.Next;
            cell.Next = oldestFirst;
            oldestFirst = cell;
            cell = next;
        }

        List<Exception>? failures = null;
        cell = oldestFirst;
        while (cell is not null)
        {
            // Read the link before the cell can become free: once claimed, the callback may re-add it.
            FenceCallback? next = cell.Next;
            cell.Next = null;

            // The CAS Queued → Free is the claim; it races only with RemoveCallback's Queued → Removed.
            if (Interlocked.CompareExchange(ref cell.State, FenceCallback.Free, FenceCallback.Queued) == FenceCallback.Queued)
            {
                FenceCallback node = cell.Target;
                node.Owner = null;
                Volatile.Write(ref node.ActiveCell, null); // ordered write: the node is idle before it runs
                try
                {
                    node.Invoke(this);
                }
#pragma warning disable CA1031 // A callback's exception must not stop the other callbacks.
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    (failures ??= []).Add(ex);
                }
            }
            else if (ReferenceEquals(cell, cell.Target))
            {
                // A removed embedded cell leaves the last list that can reach it here: free it for reuse.
                Volatile.Write(ref cell.State, FenceCallback.Free);
            }

            cell = next;
        }

        return failures;
    }

    /// <summary>
    /// Called for each exception a callback (or <see cref="OnSignaled"/>) threw while this fence
    /// signalled, on the signalling thread, after every callback has run. Return true when the fence's
    /// owner has dealt with it (counted, reported): it then never reaches <see cref="Signal()"/>'s caller
    /// nor <see cref="CallbackFailed"/>. A producer that consumers must not be able to wedge (the virtual
    /// GPU's fences) returns true. The base class returns false.
    /// </summary>
    protected virtual bool OnCallbackFailed(Exception exception) => false;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ReportCallbackFailures(List<Exception> failures)
    {
        failures.RemoveAll(OnCallbackFailed);
        if (failures.Count == 0)
        {
            return;
        }

        EventHandler<FenceCallbackFailedEventArgs>? handler = CallbackFailed;
        if (handler is null)
        {
            throw new FenceCallbackException(this, failures);
        }

        foreach (Exception ex in failures)
        {
            handler(null, new FenceCallbackFailedEventArgs(this, ex));
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool PollAndSignal()
    {
        if (!PollSignaled())
        {
            return false;
        }

        Signal();
        return IsSignaledFlag; // true only once published, even if another signaller won the claim
    }

    /// <summary>
    /// Requests that the fence signal, calling <see cref="OnEnableSignaling"/> the first time.
    /// Mirrors <c>dma_fence_enable_sw_signaling</c>.
    /// </summary>
    public void EnableSignaling()
    {
        int state = Volatile.Read(ref _state);
        while ((state & EnableSignalBit) == 0)
        {
            int seen = Interlocked.CompareExchange(ref _state, state | EnableSignalBit, state);
            if (seen == state)
            {
                // We set the bit: we alone call the hook, and only on a pending fence.
                bool keepPending;
                try
                {
                    keepPending = (seen & ClaimedBit) != 0 || OnEnableSignaling();
                }
                catch
                {
                    // No half-changed state: the hook did not complete, so the next waiter calls it again
                    // (a FenceArray whose member's AddCallback threw would otherwise stay pending forever).
                    ClearEnableSignalBit();
                    throw;
                }

                if (!keepPending)
                {
                    Signal();
                }

                return;
            }

            state = seen;
        }
    }

    private void ClearEnableSignalBit()
    {
        int state = Volatile.Read(ref _state);
        while (true)
        {
            int seen = Interlocked.CompareExchange(ref _state, state & ~EnableSignalBit, state);
            if (seen == state)
            {
                return;
            }

            state = seen;
        }
    }

    // ----------------------------------------------------------------------------------------------
    // Callbacks

    /// <summary>
    /// Queues <paramref name="callback"/> to run when the fence signals. Mirrors <c>dma_fence_add_callback</c>.
    /// </summary>
    /// <returns>True if queued. False if the fence has already signalled: the callback is then never run
    /// by this call (the kernel's -ENOENT).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="callback"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The node is already queued on a fence.</exception>
    public bool AddCallback(FenceCallback callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        if (IsSignaledFlag)
        {
            return false;
        }

        // Not a claim: two concurrent adds of the same node can both pass this check (a caller bug; making
        // it one CAS measured 1.14x on SignalOneCallbackBenchmarks.Fence_OwnedCallback, see issue 11/12).
        if (Volatile.Read(ref callback.ActiveCell) is not null)
        {
            ThrowHelper.ThrowCallbackAlreadyQueued();
        }

        EnableSignaling();

        // Use the node's own cell when free; a removed cell may still be linked in an old list.
        FenceCallback cell;
        if (Interlocked.CompareExchange(ref callback.State, FenceCallback.Queued, FenceCallback.Free) == FenceCallback.Free)
        {
            cell = callback;
        }
        else
        {
            cell = new FenceCallback.ProxyCell(callback) { State = FenceCallback.Queued };
        }

        callback.Owner = this;
        callback.ActiveCell = cell;

        FenceCallback? head = Volatile.Read(ref _callbacks);
        while (true)
        {
            if (ReferenceEquals(head, s_signaledSentinel))
            {
                // Signalled while we prepared: undo, the node was never visible to the signaller.
                callback.Owner = null;
                Volatile.Write(ref callback.ActiveCell, null);
                Volatile.Write(ref cell.State, FenceCallback.Free);
                return false;
            }

            if (head is not null && Volatile.Read(ref head.State) == FenceCallback.Removed)
            {
                // Pop a removed cell off the top so timed-out waiters do not pile up. A removed cell is
                // never linked again before this fence signals, so the head cannot repeat (no ABA).
                FenceCallback? popped = Interlocked.CompareExchange(ref _callbacks, head.Next, head);
                head = ReferenceEquals(popped, head) ? head.Next : popped;
                continue;
            }

            cell.Next = head;

            // The CAS is the linearization point of the add: the cell is published with its link.
            FenceCallback? seen = Interlocked.CompareExchange(ref _callbacks, cell, head);
            if (ReferenceEquals(seen, head))
            {
                return true;
            }

            head = seen;
        }
    }

    /// <summary>Queues a delegate; allocates a node. Prefer <see cref="AddCallback(FenceCallback)"/> on hot paths.</summary>
    /// <returns>The node (for <see cref="RemoveCallback"/>), or null if the fence had already signalled.</returns>
    public FenceCallback? AddCallback(Action<Fence> action)
    {
        FenceCallback node = FenceCallback.Create(action);
        return AddCallback(node) ? node : null;
    }

    /// <summary>
    /// Removes a queued callback. Mirrors <c>dma_fence_remove_callback</c>.
    /// </summary>
    /// <returns>True if it was still queued on a pending fence and now will never run; false if it has run,
    /// the fence has signalled (the callback runs or is running on the signalling thread), or it was never
    /// queued on this fence. After true, the node may be re-added at once.</returns>
    public bool RemoveCallback(FenceCallback callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        if (!ReferenceEquals(Volatile.Read(ref callback.Owner), this))
        {
            return false;
        }

        FenceCallback? cell = Volatile.Read(ref callback.ActiveCell);
        if (cell is null)
        {
            return false;
        }

        // Once the signal is published the cell belongs to the signaller, even before it reaches it:
        // the kernel's remove returns false on a signalled fence, and a timed-out or cancelled wait
        // must not report failure for a signal it could already see. Linearization point of a true
        // result: the fence is pending here, and the CAS below stops the later claim.
        if (IsSignaledFlag)
        {
            return false;
        }

        // Wins against the signaller's claim, or loses to it.
        if (Interlocked.CompareExchange(ref cell.State, FenceCallback.Removed, FenceCallback.Queued) != FenceCallback.Queued)
        {
            return false;
        }

        callback.Owner = null;
        Volatile.Write(ref callback.ActiveCell, null);
        return true;
    }

    // ----------------------------------------------------------------------------------------------
    // Deadlines

    /// <summary>
    /// Hints that the fence is needed by <paramref name="deadlineNs"/> (monotonic ns). Keeps the
    /// earliest hint and forwards it to <see cref="OnDeadlineSet"/>. Mirrors <c>dma_fence_set_deadline</c>;
    /// a hint only, ignored once the fence has signalled.
    /// </summary>
    public virtual void SetDeadline(long deadlineNs)
    {
        if (IsSignaledFlag)
        {
            return;
        }

        long current = Volatile.Read(ref _deadlineNs);
        while (deadlineNs < current)
        {
            long seen = Interlocked.CompareExchange(ref _deadlineNs, deadlineNs, current);
            if (seen == current)
            {
                OnDeadlineSet(deadlineNs);
                return;
            }

            current = seen;
        }
    }

    // ----------------------------------------------------------------------------------------------
    // Ordering

    /// <summary>
    /// True when <paramref name="f1"/> is later on the timeline than <paramref name="f2"/>. Mirrors
    /// <c>dma_fence_is_later</c>: 64-bit comparison when <paramref name="f1"/> was created 64-bit,
    /// otherwise the low 32 bits with wrap-around (a seqno more than 2^31 ahead compares as earlier).
    /// </summary>
    /// <exception cref="InvalidOperationException">The fences have different contexts (the kernel WARNs).</exception>
    public static bool IsLater(Fence f1, Fence f2)
    {
        ArgumentNullException.ThrowIfNull(f1);
        ArgumentNullException.ThrowIfNull(f2);
        if (f1._context != f2._context)
        {
            ThrowHelper.ThrowContextMismatch(f1, f2);
        }

        return IsSeqnoLater(f1._seqno, f2._seqno, f1.UsesSeqno64);
    }

    /// <summary>True when <paramref name="f1"/> is <paramref name="f2"/> or later. Mirrors <c>dma_fence_is_later_or_same</c>.</summary>
    public static bool IsLaterOrSame(Fence f1, Fence f2) => ReferenceEquals(f1, f2) || IsLater(f1, f2);

    /// <summary>
    /// Of two fences on one context, the one that signals last, or null when that one has already
    /// signalled. Mirrors <c>dma_fence_later</c>.
    /// </summary>
    public static Fence? Later(Fence f1, Fence f2)
    {
        Fence later = IsLater(f1, f2) ? f1 : f2;
        return later.IsSignaled ? null : later;
    }

    /// <summary>The seqno comparison of <c>__dma_fence_is_later</c>.</summary>
    public static bool IsSeqnoLater(ulong seqno1, ulong seqno2, bool seqno64) =>
        seqno64 ? seqno1 > seqno2 : (int)((uint)seqno1 - (uint)seqno2) > 0;

    // ----------------------------------------------------------------------------------------------
    // Stubs

    /// <summary>
    /// The global signalled stub (context 0, seqno 0), used to mean "nothing to wait for".
    /// Mirrors <c>dma_fence_get_stub</c>.
    /// </summary>
    public static Fence Stub { get; } = CreateSignaledStub(FenceClock.NowNs);

    /// <summary>
    /// A new signalled fence on context 0 carrying <paramref name="timestampNs"/>. Mirrors
    /// <c>dma_fence_allocate_private_stub</c>.
    /// </summary>
    public static Fence CreateSignaledStub(long timestampNs)
    {
        var stub = new Fence(FenceContext.Stub, 0);
        stub.SignalWithTimestamp(timestampNs);
        return stub;
    }

    // ----------------------------------------------------------------------------------------------
    // Description

    /// <summary>"context:seqno timeline driver signalled|unsignalled", as <c>dma_fence_describe</c> prints.</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"{_context}:{_seqno} {TimelineName} {DriverName} {(IsSignaledFlag ? "signalled" : "unsignalled")}");

    /// <inheritdoc/>
    public override string ToString()
    {
        string status = !IsSignaledFlag ? "pending" : Error < 0 ? Errno.Name(Error) : "signalled";
        return string.Create(CultureInfo.InvariantCulture, $"{GetType().Name} {_context}:{_seqno} ({status})");
    }

    /// <summary>Counts the cells linked in the callback list (queued and removed-but-linked). For tests
    /// only: not safe against concurrent adders.</summary>
    internal int LinkedCallbackCellsForTesting()
    {
        int n = 0;
        FenceCallback? cell = Volatile.Read(ref _callbacks);
        if (ReferenceEquals(cell, s_signaledSentinel))
        {
            return 0;
        }

        for (; cell is not null; cell = cell.Next)
        {
            n++;
        }

        return n;
    }

    private sealed class SentinelCell : FenceCallback
    {
        protected internal override void Invoke(Fence fence) => throw new UnreachableException();
    }
}
