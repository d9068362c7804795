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
/// Lock-free: no lock is taken on <see cref="Signal()"/>, <see cref="IsSignaled"/> or
/// <see cref="AddCallback(FenceCallback)"/> (an add that races a fast signal, below, waits only for that
/// signaller's next few stores). The callback list is a Treiber stack; the one signaller
/// that wins the claim (a compare-and-swap on the flag word) writes the error and the timestamp, then
/// swaps the list's head for the signalled sentinel, which publishes the signal and takes the list.
/// Callbacks always run outside any lock. An adder announces itself on the flag word before it links its
/// first cell; a fence without an <see cref="OnSignaled"/> hook (a <see cref="FenceSource"/>, or one of the
/// library's own types: a <see cref="FenceTimeline"/>'s fences, sw_sync points, arrays and chains) that no
/// adder has announced on (most fences: nobody waits) is claimed and its list closed by the one
/// compare-and-swap on that int, and publishes with a store. An adder that finds such a claim waits the
/// few stores until the signal is published (there is no hook or callback to wait behind, only the
/// timestamp's clock read), so a false from <see cref="AddCallback(FenceCallback)"/> always means the
/// signal, its error and timestamp are visible.
/// The kernel's signal takes the fence's spinlock and sets the signalled bit, two locked operations;
/// this one costs one for a fence with no callback (Coyote: <c>FastSignalTests</c>, with a canary that
/// links without announcing). One owned callback, added and run, costs five in all: the node's claim, the
/// enable-and-announce and the link when it is added, the claim and the exchange when the fence signals
/// (the signaller frees the cell with a store unless a remover has come to the fence); six when the fence
/// was already enabled without an announce (a public <see cref="EnableSignaling"/>), whose add announces
/// with a CAS of its own.
/// </para>
/// <para>
/// <see cref="RemoveCallback"/> unlinks the node, so a pending fence holds memory only for its live
/// callbacks however often nodes are added and removed (the kernel unlinks under its spinlock). Removers
/// take a per-fence bit lock among themselves, because two unlinks of neighbouring cells would otherwise
/// lose one; adders and the signaller never take it. Each unlink is a compare-and-swap that expects the
/// removed cell, so it fails harmlessly when the cell above was meanwhile claimed by the signaller and
/// reused. A remover announces itself on the flag word before it looks at the signal; a signaller that
/// finds no announcement after taking the list knows that no cell can be contended, and frees each cell
/// with a store rather than a compare-and-swap. A remove that races the signal waits until the signaller
/// has walked past the node before it returns (the kernel's remove spins on the lock the signaller holds
/// while callbacks run).
/// Removal walks the cells added after the node, so it costs O(live callbacks), where the kernel's
/// doubly-linked list costs O(1): a back link would have to be written into a neighbour that the
/// signaller may already have claimed.
/// </para>
/// <para>
/// Size: 56 bytes on 64-bit (16 bytes of object header plus 40 of fields: context, seqno, callback-list
/// head, the time word, state word and error), 8 less than the kernel's struct. The time word holds the
/// earliest deadline hint while the fence is pending and the signal time once it has signalled, as the
/// kernel's struct shares one union between the callback list and the timestamp: a deadline is a hint
/// for a pending fence only. A unit test pins the figure.
/// </para>
/// <para>
/// Differences from the kernel, on purpose: there is no reference count (the .NET GC is the RCU grace
/// period, and a fence cannot be freed while anything can reach it), so "released with pending
/// signals" cannot happen; the signalled state is published only after the error and timestamp are
/// written, so <see cref="Timestamp"/> never has to spin as <c>dma_fence_timestamp()</c> does.
/// </para>
/// </remarks>
[DebuggerDisplay("{ToString(),nq}")]
public partial class Fence
{
    private const int ClaimedBit = 1;
    private const int Seqno64Bit = (int)FenceOptions.Seqno64 << OptionsShift;
    private const int AsyncCallbacksBit = (int)FenceOptions.RunCallbacksAsynchronously << OptionsShift;
    private const int EnableSignalBit = 64;
    private const int CustomClockBit = (int)FenceTraits.CustomClock;
    private const int RemoveLockBit = 8;
    private const int RemoverSeenBit = 16;
    private const int WalkDoneBit = 32;
    private const int HasCallbacksBit = 256;
    private const int FastClaimBit = 512;
    private const int NoSignaledHookBit = (int)FenceTraits.NoSignaledHook;
    private const int NoPollHookBit = (int)FenceTraits.NoPollHook;

    /// <summary>The options' bits sit in the flag word shifted by this much, so the constructor stores them
    /// with one shift (PERF: <c>CreateSignalBenchmarks.Fence_CreateOnly</c>).</summary>
    private const int OptionsShift = 1;
    private const uint AllOptions = (uint)(FenceOptions.Seqno64 | FenceOptions.RunCallbacksAsynchronously);

    /// <summary>The sentinel that replaces the callback-list head once the fence has signalled.</summary>
    private static readonly FenceCallback s_signaled = new SignaledSentinel();

    private readonly ulong _context;
    private readonly ulong _seqno;

    /// <summary>
    /// Head of the callback stack (newest first), then <see cref="s_signaled"/>.
    /// Written by compare-and-swap (adders, a remover unlinking the top cell, and the winning signaller of
    /// a fence with no callback), and by the winning signaller's <see cref="Interlocked.Exchange{T}(ref T, T)"/>
    /// of a list to walk; read with Volatile.Read. The CAS or the exchange is the
    /// linearization point of signalling.
    /// </summary>
    private FenceCallback? _callbacks;

    /// <summary>
    /// The time word. Pending: the complement of the earliest deadline hint in ns (a negative value;
    /// <c>~long.MaxValue</c> when none), lowered only by CAS (<see cref="SetDeadline"/>, which stops once it
    /// sees the claim). Claimed: the signal time in ns (never negative), written once by the winning
    /// signaller before it publishes; immutable after. A deadline CAS that races the claim either lands
    /// before the signaller's write (which replaces it) or fails, because it expects a complemented hint
    /// and finds a timestamp: the two ranges are disjoint, so a timestamp equal to the hint it replaced
    /// cannot pass for it (it did when both were stored as they are; Coyote found the lost timestamp,
    /// <c>FenceSignalTests.ADeadlineLoweredWhileTheFenceSignalsAtTheOldDeadline_LeavesTheTimestamp</c>).
    /// </summary>
    private long _timeNs = ~long.MaxValue;

    /// <summary>
    /// Flag word: <see cref="ClaimedBit"/> (a signaller has won), <see cref="Seqno64Bit"/> (immutable),
    /// <see cref="EnableSignalBit"/> (enable-signalling has been requested), <see cref="RemoveLockBit"/>
    /// (a remover holds the removers' lock), <see cref="RemoverSeenBit"/> (a remover has come to this fence,
    /// announced before it looks at the signal; sticky), <see cref="WalkDoneBit"/> (the signaller has walked
    /// the list; set only when a remover was seen, or by a fast claim), <see cref="AsyncCallbacksBit"/> (immutable: callbacks run on the thread pool),
    /// <see cref="CustomClockBit"/> (immutable: the signal time comes from <see cref="ClockNowNs"/>),
    /// <see cref="HasCallbacksBit"/> (sticky: an adder announced a cell before linking it) and
    /// <see cref="NoSignaledHookBit"/> (immutable: one of the library's types that do not override <see cref="OnSignaled"/>),
    /// <see cref="NoPollHookBit"/> (immutable: one of the library's types that do not override <see cref="PollSignaled"/>),
    /// <see cref="FastClaimBit"/> (the signaller claimed a hookless fence that no adder had announced on, so it
    /// publishes with a store; set with <see cref="ClaimedBit"/> and <see cref="WalkDoneBit"/>, as there is no
    /// walk). Changed only by interlocked operations.
    /// </summary>
    private int _state;

    /// <summary>Negative errno or 0. Written before the signal is published; read after seeing it.</summary>
    private int _error;

    /// <summary>Creates a pending fence for a fence implementation (a subclass). Mirrors <c>dma_fence_init</c>,
    /// or <c>dma_fence_init64</c> with <see cref="FenceOptions.Seqno64"/>.</summary>
    /// <param name="context">The timeline, from <see cref="FenceContext.Allocate"/> or a <see cref="FenceTimeline"/>.</param>
    /// <param name="seqno">The position on the timeline.</param>
    /// <param name="options">How seqnos compare and where callbacks run.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="options"/> has a bit that is not a
    /// <see cref="FenceOptions"/> value.</exception>
    /// <remarks>Code that only needs a fence it signals itself creates a <see cref="FenceSource"/>.</remarks>
    protected Fence(ulong context, ulong seqno, FenceOptions options = FenceOptions.None)
        : this(context, seqno, options, FenceTraits.None)
    {
    }

    /// <summary>As the protected constructor, for the library's own fence types, which say what they are in
    /// <paramref name="traits"/> (see <see cref="FenceTraits"/>).</summary>
    /// <remarks>PERF: one flags parameter, not a bool each. A third bool made the constructor's arguments seven with
    /// <c>this</c>, one more than x64 passes in registers, and the gate measured <c>Fence_CreateOnly</c> at 1.25x.</remarks>
    private protected Fence(ulong context, ulong seqno, FenceOptions options, FenceTraits traits)
    {
        if ((uint)options > AllOptions)
        {
            ThrowHelper.ThrowUnknownFenceOptions(options);
        }

        _context = context;
        _seqno = seqno;
        // PERF: a plain FenceSource is recognized at the signal, not here: GetType() in the constructor measured
        // 1.27x on CreateSignalBenchmarks.Fence_CreateOnly.
        _state = ((int)options << OptionsShift) | (int)traits; // the traits' values are their bits of the flag word
    }

    /// <summary>The fence context (timeline id).</summary>
    public ulong Context => _context;

    /// <summary>True when the fence's type said it has no <see cref="PollSignaled"/> hook (<see cref="NoPollHookBit"/>). For tests.</summary>
    internal bool HasNoPollHookForTesting => (_state & NoPollHookBit) != 0;

    /// <summary>True once an adder has announced a callback (<see cref="HasCallbacksBit"/>): the signal then takes
    /// the list by exchange instead of its one-CAS fast path. For tests of who announces.</summary>
    internal bool HasAnnouncedCallbacks => (Volatile.Read(ref _state) & HasCallbacksBit) != 0;

    /// <summary>The sequence number on <see cref="Context"/>.</summary>
    public ulong Seqno => _seqno;

    /// <summary>True when seqnos of this fence compare on 64 bits (<c>DMA_FENCE_FLAG_SEQNO64_BIT</c>).</summary>
    public bool UsesSeqno64 => (_state & Seqno64Bit) != 0;

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
    /// call <see cref="SetError"/>. When it returns true, <see cref="Poll"/> signals the fence as a
    /// side effect, running callbacks on the caller's thread, as <c>dma_fence_is_signaled</c> does.
    /// Mirrors <c>dma_fence_ops.signaled</c>.
    /// </summary>
    protected virtual bool PollSignaled() => false;

    /// <summary>
    /// Called when a deadline hint earlier than every previous one is set on a pending fence. The base
    /// class has already recorded it in <see cref="Deadline"/>. Mirrors <c>set_deadline</c>; may run on
    /// any thread, many times.
    /// </summary>
    protected virtual void OnDeadlineSet(TimeSpan deadline)
    {
    }

    /// <summary>The library's exact form of <see cref="OnDeadlineSet"/>: the hint in ns, as the uAPI's
    /// <c>SYNC_IOC_SET_DEADLINE</c> gives it. The library's own fences override this one so that a hint
    /// finer than a <see cref="TimeSpan"/> tick reaches their members and sw_sync's report unrounded.</summary>
    private protected virtual void OnDeadlineSetNs(long deadlineNs) => OnDeadlineSet(TimeTicks.FromNs(deadlineNs));

    // ----------------------------------------------------------------------------------------------
    // State

    /// <summary>
    /// True when the fence has signalled. A plain read of the flag, with no side effect: it never polls
    /// the implementation and never runs a callback (<c>dma_fence_test_signaled_flag</c>). To poll as
    /// <c>dma_fence_is_signaled</c> does, call <see cref="Poll"/>.
    /// </summary>
    public bool IsSignaled
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => IsSignaledHead(Volatile.Read(ref _callbacks)); // acquire: pairs with the publishing exchange
    }

    /// <summary>
    /// True when the fence has signalled. If it has not, and the implementation's
    /// <see cref="PollSignaled"/> says it has passed, the fence is signalled now, as a side effect: the
    /// callbacks run on this thread (unless the fence runs them asynchronously). Mirrors
    /// <c>dma_fence_is_signaled</c>; a callback's exception goes to the fence's owner, never to this caller.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Poll() => IsSignaled || (!IsPlainSource && PollAndSignal());

    /// <summary>
    /// <see cref="Poll"/> for the library's loops over fences that are mostly its own (a reservation's entries as a
    /// submission reads them, a job's dependencies): the same answer, and a pending fence whose type has no poll
    /// hook (<see cref="NoPollHookBit"/>) makes no call at all.
    /// </summary>
    /// <remarks>PERF: not in <see cref="Poll"/> itself: one more condition in its inlined test measured 1.10-1.13x on
    /// <c>ChainFindBenchmarks</c>, whose walk inlines it. Here, the virtual GPU's throughput command measured about
    /// 3 % faster than with the check inside <see cref="PollAndSignal"/> only.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool PollFast() => IsSignaled || (!IsPlainSource && (_state & NoPollHookBit) == 0 && PollAndSignal());

    /// <summary>
    /// True for the signalled sentinel. PERF: one reference compare with one sentinel, the shape of the
    /// hottest read in the library. A type test (which loads the method table of a pending fence's first
    /// callback cell) measured 1.17x on <c>ChainFindBenchmarks.FenceChain_FindSeqno_Middle</c>, and two
    /// sentinels compared in turn 1.27x on <c>ReservationTestBenchmarks.Reservation_TestSignaled</c>; so the
    /// end of the signaller's walk is a flag (<see cref="WalkDoneBit"/>), not a second sentinel.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsSignaledHead(FenceCallback? head) => ReferenceEquals(head, s_signaled);

    /// <summary>
    /// The kernel's status: 0 while pending, 1 when signalled without error, the negative error when
    /// signalled with one. A plain read, as <see cref="IsSignaled"/> is; <c>dma_fence_get_status</c>
    /// polls first, which is <see cref="Poll"/> followed by this.
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
    public int Error => IsSignaled ? Volatile.Read(ref _error) : 0;

    /// <summary>True once signalled with an error.</summary>
    public bool IsFaulted => IsSignaled && Volatile.Read(ref _error) < 0;

    /// <summary>
    /// The signal time: a point on the fence's clock (<see cref="FenceClock"/>, a
    /// <see cref="FenceTimeline"/>'s <see cref="TimeProvider"/>, or a simulator's virtual time), as the time
    /// since that clock's origin. Mirrors <c>dma_fence_timestamp</c>, at a <see cref="TimeSpan"/> tick's
    /// resolution (100 ns); the uAPI's <c>SYNC_IOC_FILE_INFO</c> reports the exact nanoseconds.
    /// </summary>
    /// <exception cref="InvalidOperationException">The fence has not signalled.</exception>
    public TimeSpan Timestamp => TimeTicks.FromNs(TimestampNs);

    /// <summary>The signal time in ns, exactly as recorded (the uAPI's and the library's own view).</summary>
    /// <exception cref="InvalidOperationException">The fence has not signalled.</exception>
    internal long TimestampNs
    {
        get
        {
            if (!IsSignaled)
            {
                ThrowHelper.ThrowNotSignaled(this);
            }

            return Volatile.Read(ref _timeNs);
        }
    }

    /// <summary>Gets the signal time (see <see cref="Timestamp"/>) when the fence has signalled.</summary>
    /// <returns>False, with <paramref name="timestamp"/> zero, while the fence is pending.</returns>
    public bool TryGetTimestamp(out TimeSpan timestamp)
    {
        bool signaled = TryGetTimestampNs(out long ns);
        timestamp = TimeTicks.FromNs(ns);
        return signaled;
    }

    /// <summary>The exact form of <see cref="TryGetTimestamp"/>.</summary>
    internal bool TryGetTimestampNs(out long timestampNs)
    {
        if (IsSignaled)
        {
            timestampNs = Volatile.Read(ref _timeNs);
            return true;
        }

        timestampNs = 0;
        return false;
    }

    /// <summary>The earliest deadline hint set on this pending fence, on the fence's clock (see
    /// <see cref="Timestamp"/>); null when none was set or once the fence is signalling (the hint's storage
    /// then holds the timestamp; a fence implementation that must report a deadline afterwards keeps it in
    /// <see cref="OnDeadlineSet"/>, as sw_sync does).</summary>
    public TimeSpan? Deadline => DeadlineNs is { } ns ? TimeTicks.FromNs(ns) : null;

    /// <summary>The exact form of <see cref="Deadline"/>, in ns.</summary>
    internal long? DeadlineNs
    {
        get
        {
            if ((Volatile.Read(ref _state) & ClaimedBit) != 0)
            {
                return null;
            }

            long d = ~Volatile.Read(ref _timeNs);

            // A claim after the first check may have replaced the hint with the timestamp: the claim is
            // ordered before that write, so the second check sees it.
            return d == long.MaxValue || (Volatile.Read(ref _state) & ClaimedBit) != 0 ? null : d;
        }
    }

    /// <summary>True once enable-signalling has been requested (<c>DMA_FENCE_FLAG_ENABLE_SIGNAL_BIT</c>).</summary>
    public bool IsSignalingEnabled => (Volatile.Read(ref _state) & EnableSignalBit) != 0;

    /// <summary>
    /// Records an error to report when the fence signals. Mirrors <c>dma_fence_set_error</c>. Only the
    /// fence's owner (the implementation, or the holder of its <see cref="FenceSource"/>) may call it.
    /// </summary>
    /// <param name="error">A negative errno in [-4095, -1], for example <c>-Errno.ECANCELED</c>.</param>
    /// <exception cref="ArgumentOutOfRangeException">The error is outside the errno range.</exception>
    /// <exception cref="InvalidOperationException">The fence has already signalled.</exception>
    protected void SetError(int error)
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
    /// Signals the fence now. Mirrors <c>dma_fence_signal</c>. Only the fence's owner may call it, so these
    /// methods are protected; <see cref="FenceSource"/> makes them public for its holder.
    /// </summary>
    /// <returns>True if this call signalled the fence; false if it had already signalled (the kernel's
    /// -EINVAL), in which case nothing changes.</returns>
    /// <remarks>Never throws because of a callback: what a callback throws goes to
    /// <see cref="OnCallbackFailed"/>, the owner's policy.</remarks>
    protected bool Signal() => SignalCore(0, 0, useTimestamp: false);

    /// <summary>Signals the fence with an error, atomically: the error belongs to the winning signaller.</summary>
    /// <param name="error">A negative errno in [-4095, -1], or 0 for none.</param>
    protected bool Signal(int error)
    {
        ValidateOptionalError(error);
        return SignalCore(error, 0, useTimestamp: false);
    }

    /// <summary>Signals with a caller-given timestamp, a point on the fence's clock (see <see cref="Timestamp"/>).
    /// Mirrors <c>dma_fence_signal_timestamp</c>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The timestamp is negative (before the clock's origin) or
    /// beyond the clock's range (292 years); nothing changed.</exception>
    protected bool SignalWithTimestamp(TimeSpan timestamp) => SignalCore(0, TimeTicks.ToNs(timestamp, nameof(timestamp)), useTimestamp: true);

    /// <summary>Signals with an error and a caller-given timestamp.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The error is outside the errno range, or the timestamp
    /// is negative or beyond the clock's range; nothing changed.</exception>
    protected bool SignalWithTimestamp(int error, TimeSpan timestamp)
    {
        ValidateOptionalError(error);
        return SignalCore(error, TimeTicks.ToNs(timestamp, nameof(timestamp)), useTimestamp: true);
    }

    /// <summary>The exact form of <see cref="SignalWithTimestamp(int, TimeSpan)"/>, in ns: the library's
    /// containers and the virtual GPU (whose virtual time counts ns) signal with it.</summary>
    private protected bool SignalWithTimestampNs(int error, long timestampNs)
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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool SignalCore(int error, long timestampNs, bool useTimestamp)
    {
        // Claim: exactly one signaller sets the bit. This decides who writes error and timestamp.
        // A fence with no OnSignaled hook (a plain source, or one of the library's own types) that no adder
        // has announced on takes the fast path: its claim also closes the list
        // (an adder announces with a CAS on this word before it links, so none links after this claim), and
        // with no hook to run it publishes with a store. PERF: a CAS on the list head, a reference, costs
        // about 8 ns more than one on this int on the AMD EPYC test machine (11.0 vs 3.0 ns in a loop of
        // each); CreateSignalBenchmarks.Fence_CreateSignalWithTimestamp 0.78x the two-CAS signal.
        int state = Volatile.Read(ref _state);
        int claimed;
        while (true)
        {
            if ((state & ClaimedBit) != 0)
            {
                return false;
            }

            claimed = state | ClaimedBit;
            if ((state & HasCallbacksBit) == 0 && HasNoSignaledHook(state))
            {
                claimed |= FastClaimBit | WalkDoneBit;
            }

            int seen = Interlocked.CompareExchange(ref _state, claimed, state);
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

        _timeNs = useTimestamp ? timestampNs : (state & CustomClockBit) == 0 ? FenceClock.NowNs : ClockNowNs();
        Debug.Assert(_timeNs >= 0, "a timestamp is never negative: the time word tells it from a complemented hint by its sign");

        if ((claimed & FastClaimBit) != 0)
        {
            // Publish: a release store orders the error and timestamp before the sentinel (store/store), and
            // nothing else writes the head now: no cell was ever linked, and the claim shut adders out.
            Debug.Assert(Volatile.Read(ref _callbacks) is null, "no cell is linked on a fence no adder announced on");
            Volatile.Write(ref _callbacks, s_signaled);
            return true;
        }

        return PublishAndRun(state);
    }

    /// <summary>The rest of <see cref="SignalCore"/> once the claim did not close the list (a callback was
    /// announced, or the type has an <see cref="OnSignaled"/> hook): run the hook, publish the sentinel by
    /// exchange, run the list. PERF: a method of its own, so that the fast signal (claim, stamp, store) saves
    /// no registers and inlines (CreateSignalBenchmarks).</summary>
    /// <param name="state">The flag word the claim replaced.</param>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool PublishAndRun(int state)
    {
        // PERF: a fence type without a hook skips it (a state bit, or one method-table compare); the hook's exception
        // handler lives in its own method, so that this one keeps its locals in registers.
        Exception? hookFailure = HasNoSignaledHook(state) ? null : RunSignaledHook();

        // Publish: the exchange (or the CAS) is a full fence, so error and timestamp are visible to anyone
        // who sees a sentinel. From here on no adder can link a cell; removers may still unlink (see
        // RunCallbacks). PERF: with no callback one CAS publishes the sentinel; a list to walk is taken by
        // exchanging it in.
        if (Volatile.Read(ref _callbacks) is not null || Interlocked.CompareExchange(ref _callbacks, s_signaled, null) is not null)
        {
            FenceCallback? head = Interlocked.Exchange(ref _callbacks, s_signaled);

            // Read after the exchange, a full fence: a remover announces itself (RemoverSeenBit, with a full
            // fence) before it last sees the fence pending, so either this read sees the bit or that remover
            // sees the sentinel and never contends for a cell. With no remover, each cell is freed with a
            // store instead of a compare-and-swap (PERF: one locked operation less per callback run).
            bool removersSeen = (Volatile.Read(ref _state) & RemoverSeenBit) != 0;
            if (head is not null && (state & AsyncCallbacksBit) != 0)
            {
                // The signal is published now; the walk (and the end-of-walk bit a racing remover waits
                // for) happens on the thread pool.
                _ = Task.Factory.StartNew(static w => ((CallbackWalk)w!).Execute(), new CallbackWalk(this, head, hookFailure, removersSeen),
                    CancellationToken.None, TaskCreationOptions.DenyChildAttach, TaskScheduler.Default);
                return true;
            }

            if (head is not null && hookFailure is null && !removersSeen && Volatile.Read(ref head.Next) is null)
            {
                RunSoleCell(head);
                return true;
            }

            FinishSignal(head, hookFailure, removersSeen);
            return true;
        }

        if ((Volatile.Read(ref _state) & RemoverSeenBit) != 0)
        {
            Interlocked.Or(ref _state, WalkDoneBit); // see FinishSignal
        }

        if (hookFailure is not null)
        {
            ReportCallbackFailure(hookFailure);
        }

        return true;
    }

    /// <summary>True for a fence whose type is exactly <see cref="FenceSource"/>, which overrides none of the
    /// hooks (<see cref="OnSignaled"/>, <see cref="PollSignaled"/>), so the signal and the poll skip them.</summary>
    private bool IsPlainSource
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => GetType() == typeof(FenceSource);
    }

    /// <summary>True when the fence's type has no <see cref="OnSignaled"/> hook: one of the library's types
    /// that say so (<see cref="NoSignaledHookBit"/> in <paramref name="state"/>), or a plain source.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool HasNoSignaledHook(int state) => (state & NoSignaledHookBit) != 0 || IsPlainSource;

    /// <summary>Runs <see cref="OnSignaled"/>; returns what it threw, to report with the callbacks'
    /// failures once the signal is published (the signal is published whatever the hook does).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private Exception? RunSignaledHook()
    {
        try
        {
            OnSignaled();
            return null;
        }
#pragma warning disable CA1031 // the signal must be published whatever the hook does
        catch (Exception ex)
#pragma warning restore CA1031
        {
            return ex;
        }
    }

    /// <summary>
    /// <see cref="FinishSignal"/> for the commonest list: one cell, no remover seen, no hook failure. The cell is
    /// claimed with a store (see <see cref="RunCell"/>), and there is no walk for a remover to wait for: one that
    /// comes now finds the fence signalled and leaves the cell alone. PERF: two frames and the failure list less
    /// per signal with one callback (FenceArrayAllBenchmarks, SignalOneCallbackBenchmarks).
    /// </summary>
    private void RunSoleCell(FenceCallback cell)
    {
        cell.Owner = null; // before the claim, as in RunCell
        Debug.Assert(Volatile.Read(ref cell.State) == FenceCallback.Queued, "no remover was seen, so the cell was not taken");
        Volatile.Write(ref cell.State, FenceCallback.Free);
        try
        {
            cell.Invoke(this);
        }
#pragma warning disable CA1031 // what a callback throws goes to the owner's policy, as FinishSignal's
        catch (Exception ex)
#pragma warning restore CA1031
        {
            ReportCallbackFailure(ex);
        }
    }

    /// <summary>Runs the published list's callbacks, ends the walk, and hands failures to the owner.</summary>
    /// <param name="head">The list taken by the publishing exchange, newest first, or null.</param>
    /// <param name="hookFailure">What <see cref="OnSignaled"/> threw, or null.</param>
    /// <param name="removersSeen">Whether <see cref="RemoverSeenBit"/> was set just after the exchange; when it
    /// was not, no remover can contend for a cell of this list (see <see cref="RunCell"/>).</param>
    private void FinishSignal(FenceCallback? head, Exception? hookFailure, bool removersSeen)
    {
        List<Exception>? failures = null;
        try
        {
            if (head is not null)
            {
                failures = RunCallbacks(head, removersSeen);
            }
        }
        finally
        {
            // A remover that raced the signal waits for this (or for its cell to be passed). It set
            // RemoverSeenBit, with a full fence, before it last saw the fence pending, so a signaller that
            // published after that sees the bit here; fences no remover ever touched pay nothing.
            if ((Volatile.Read(ref _state) & RemoverSeenBit) != 0)
            {
                Interlocked.Or(ref _state, WalkDoneBit);
            }
        }

        if (hookFailure is not null)
        {
            ReportCallbackFailure(hookFailure);
        }

        if (failures is not null)
        {
            foreach (Exception ex in failures)
            {
                ReportCallbackFailure(ex);
            }
        }
    }

    /// <summary>The deferred walk of a fence created with <see cref="FenceOptions.RunCallbacksAsynchronously"/>.</summary>
    /// <remarks>Queued as a task on the default scheduler (the thread pool), not as a raw work item: Coyote's
    /// rewriting controls tasks, and reports the thread pool's own queueing methods as uncontrolled, so the
    /// deferred walk can be explored (<c>FenceCallbackTests.AsynchronousWalk_*</c>). FenceCallbackException
    /// escalation never goes through this task: <see cref="FinishSignal"/> reports failures itself.</remarks>
    private sealed class CallbackWalk(Fence fence, FenceCallback head, Exception? hookFailure, bool removersSeen)
    {
        public void Execute() => fence.FinishSignal(head, hookFailure, removersSeen);
    }

    /// <summary>The signal time of a fence created with a custom clock, in ns.</summary>
    private protected virtual long ClockNowNs() => FenceClock.NowNs;

    /// <summary>
    /// Called once on the winning signaller's thread when <see cref="Status"/>'s error and the timestamp
    /// are final, just before the signal is published (so before any callback runs and before
    /// <see cref="IsSignaled"/> turns true). Anything that observes signals here sees them in the
    /// order they are published, which lets instrumentation check per-context ordering exactly.
    /// </summary>
    protected virtual void OnSignaled()
    {
    }

    private List<Exception>? RunCallbacks(FenceCallback newestFirst, bool removersSeen)
    {
        // The chain is only read here: a remover that raced the signal may still unlink a removed cell
        // from it, and a cell's link must be read before the cell is claimed (its callback may re-add it).
        List<Exception>? failures = null;
        if (Volatile.Read(ref newestFirst.Next) is null)
        {
            RunCell(newestFirst, removersSeen, ref failures);
            return failures;
        }

        // Callbacks run in registration order: collect the newest cells on the stack, the rest in a list.
        CellBuffer newest = default;
        int count = 0;
        List<FenceCallback>? older = null;
        for (FenceCallback? cell = newestFirst; cell is not null; cell = Volatile.Read(ref cell.Next))
        {
            if (count < CellBuffer.Length)
            {
                newest[count++] = cell;
            }
            else
            {
                (older ??= []).Add(cell);
            }
        }

        if (older is not null)
        {
            for (int i = older.Count - 1; i >= 0; i--)
            {
                RunCell(older[i], removersSeen, ref failures);
            }
        }

        for (int i = count - 1; i >= 0; i--)
        {
            RunCell(newest[i], removersSeen, ref failures);
        }

        return failures;
    }

    /// <summary>Claims one cell of the published list and runs its callback, or passes a cell a remover won.</summary>
    /// <param name="cell">The cell.</param>
    /// <param name="removersSeen">False when no remover had announced itself by the time the list was taken:
    /// none can then take a cell (each sees the sentinel first), so the claim is a release store.</param>
    /// <param name="failures">Collects what the callback threw.</param>
    private void RunCell(FenceCallback cell, bool removersSeen, ref List<Exception>? failures)
    {
        // Before the claim: once the cell is free its callback, or anyone, may queue it on another fence.
        cell.Owner = null;

        // The CAS Queued → Free is the claim; it races only with RemoveCallback's Queued → Removed, and only
        // when a remover was seen. Else the cell is Queued and nobody else writes it: the store claims it.
        bool claimed;
        if (removersSeen)
        {
            claimed = Interlocked.CompareExchange(ref cell.State, FenceCallback.Free, FenceCallback.Queued) == FenceCallback.Queued;
        }
        else
        {
            Debug.Assert(Volatile.Read(ref cell.State) == FenceCallback.Queued, "no remover was seen, so no cell of the list was taken");
            Volatile.Write(ref cell.State, FenceCallback.Free);
            claimed = true;
        }

        if (claimed)
        {
            try
            {
                cell.Invoke(this);
            }
#pragma warning disable CA1031 // A callback's exception must not stop the other callbacks.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                (failures ??= []).Add(ex);
            }
        }
        else
        {
            // A remover won: tell it that this walk will not read the cell again, so it may free it.
            Volatile.Write(ref cell.State, FenceCallback.Passed);
        }
    }

    /// <summary>The newest cells of a signalled list, held on the signaller's stack.</summary>
    [InlineArray(Length)]
    private struct CellBuffer
    {
        public const int Length = 8;
        private FenceCallback _element;
    }

    /// <summary>
    /// The owner's policy for an exception that a callback (or <see cref="OnSignaled"/>) threw while this
    /// fence signalled. Called once per exception, on the thread that ran the callbacks, after every
    /// callback has run; the fence is signalled and no other callback was skipped. A consumer's exception
    /// never reaches <see cref="Signal()"/>'s caller, nor a caller of <see cref="Poll"/>.
    /// </summary>
    /// <param name="exception">What the callback threw.</param>
    /// <remarks>
    /// The base class treats it as an unhandled exception, as .NET treats one that escapes a thread-pool
    /// work item or a timer callback: it is rethrown, wrapped in a <see cref="FenceCallbackException"/>, on
    /// a thread-pool thread, which ends the process with the callback's stack trace. An owner that must
    /// carry on (the virtual GPU counts and reports its consumers' failures) overrides this;
    /// <see cref="FenceTimeline"/> takes a handler for every fence on its context. An override must not
    /// throw: what it throws is treated as the base class treats the callback's exception.
    /// </remarks>
    protected virtual void OnCallbackFailed(Exception exception) => Escalate(this, exception);

    private void ReportCallbackFailure(Exception exception)
    {
        try
        {
            OnCallbackFailed(exception);
        }
#pragma warning disable CA1031 // a policy that throws must not reach the signaller either
        catch (Exception policyFailure)
#pragma warning restore CA1031
        {
            Escalate(this, new AggregateException(exception, policyFailure));
        }
    }

    /// <summary>Rethrows the exception on a thread-pool thread, where nothing catches it.</summary>
    private static void Escalate(Fence fence, Exception exception)
    {
        var unhandled = new FenceCallbackException(fence, exception);
        if (EscalateForTesting is { } seam)
        {
            seam(unhandled);
            return;
        }

        ThreadPool.UnsafeQueueUserWorkItem(static e => throw e, unhandled, preferLocal: false);
    }

    /// <summary>Tests only: receives what would be rethrown on the thread pool, so that the default policy
    /// can be observed without ending the test process. Process-wide; the tests that set it run alone.</summary>
    internal static Action<FenceCallbackException>? EscalateForTesting { get; set; }

    /// <remarks>PERF: a type without a poll hook (<see cref="NoPollHookBit"/>) is answered here, without the virtual
    /// call (see <see cref="PollFast"/> for the callers that test it before the call).</remarks>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool PollAndSignal()
    {
        if ((Volatile.Read(ref _state) & NoPollHookBit) != 0 || !PollSignaled())
        {
            return false;
        }

        Signal();
        return IsSignaled; // true only once published, even if another signaller won the claim
    }

    /// <summary>
    /// Requests that the fence signal, calling <see cref="OnEnableSignaling"/> the first time.
    /// Mirrors <c>dma_fence_enable_sw_signaling</c>.
    /// </summary>
    /// <remarks>PERF: enabling adds no callback, so it leaves the fence its fast signal (a store publishes it);
    /// the library's own waits, which enable and then add, announce their callback in the same
    /// compare-and-swap (see <see cref="EnableSignalingCore"/>).</remarks>
    public void EnableSignaling() => EnableSignalingCore(announce: false);

    /// <summary><see cref="EnableSignaling"/>; with <paramref name="announce"/>, the same compare-and-swap announces
    /// callbacks on a fence not yet claimed (see <see cref="Announce"/>), for a caller that adds one next, so its
    /// announce costs no operation of its own. PERF: announced without a callback, the signal would take the
    /// exchange instead of a store (FenceArrayAllBenchmarks enables its array and waits on nothing).</summary>
    private void EnableSignalingCore(bool announce)
    {
        int state = Volatile.Read(ref _state);
        while ((state & EnableSignalBit) == 0)
        {
            int enabled = state | EnableSignalBit | (announce && (state & ClaimedBit) == 0 ? HasCallbacksBit : 0);
            int seen = Interlocked.CompareExchange(ref _state, enabled, state);
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

    private void ClearEnableSignalBit() => Interlocked.And(ref _state, ~EnableSignalBit);

    // ----------------------------------------------------------------------------------------------
    // Callbacks

    /// <summary>
    /// Queues <paramref name="callback"/> to run when the fence signals. Mirrors <c>dma_fence_add_callback</c>.
    /// </summary>
    /// <returns>True if queued. False if the fence has already signalled: the callback is then never run
    /// by this call (the kernel's -ENOENT).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="callback"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The node is already queued on a fence, or is being
    /// removed from one.</exception>
    public bool AddCallback(FenceCallback callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        FenceCallback? head = Volatile.Read(ref _callbacks);
        if (IsSignaledHead(head))
        {
            return false;
        }

        // The claim of the node: one CAS, so of two concurrent adds of one node exactly one proceeds.
        if (Interlocked.CompareExchange(ref callback.State, FenceCallback.Queued, FenceCallback.Free) != FenceCallback.Free)
        {
            ThrowHelper.ThrowCallbackAlreadyQueued();
        }

        return AddClaimed(callback, head, removable: true);
    }

    /// <summary>
    /// <see cref="AddCallback(FenceCallback)"/> for a node that no other thread can add at the same time: one
    /// the library has just created, or owns and re-adds only from its own callback or before publishing it
    /// (a thread's pooled await node, a container's walker). Its claim is a store, published by the link's
    /// compare-and-swap (PERF: one locked operation less per add; <c>AwaitContinuationBenchmarks</c>,
    /// <c>FenceArrayAllBenchmarks</c>).
    /// </summary>
    /// <param name="callback">A free node; a queued one is a library bug, caught by an assertion.</param>
    /// <param name="removable">False for a node nobody ever removes (an await node, an array's walker and member
    /// nodes): it is not told its fence, which only <see cref="RemoveCallback"/> reads (PERF: a write barrier
    /// less per add), so a remove of it returns false.</param>
    /// <returns>As <see cref="AddCallback(FenceCallback)"/>.</returns>
    internal bool AddPrivateCallback(FenceCallback callback, bool removable = true)
    {
        FenceCallback? head = Volatile.Read(ref _callbacks);
        if (IsSignaledHead(head))
        {
            return false;
        }

        Debug.Assert(Volatile.Read(ref callback.State) == FenceCallback.Free, "a private node is free when it is added");
        callback.State = FenceCallback.Queued;
        return AddClaimed(callback, head, removable);
    }

    /// <summary>The add after the node's claim: enable signalling, announce, link. <paramref name="head"/> is the
    /// list head read before the claim; <paramref name="removable"/> as for <see cref="AddPrivateCallback"/>.</summary>
    private bool AddClaimed(FenceCallback callback, FenceCallback? head, bool removable)
    {
        int state = Volatile.Read(ref _state);
        if ((state & EnableSignalBit) == 0)
        {
            if (IsPlainSource)
            {
                // PERF: a plain source's enable hook is the base class's, which keeps the fence pending and cannot
                // throw, so EnableSignaling comes down to its compare-and-swap, done here without the call,
                // the hook's virtual call and the handler (FenceArrayAllBenchmarks, AwaitContinuationBenchmarks).
                while ((state & EnableSignalBit) == 0)
                {
                    int enabled = state | EnableSignalBit | ((state & ClaimedBit) == 0 ? HasCallbacksBit : 0);
                    int seen = Interlocked.CompareExchange(ref _state, enabled, state);
                    if (seen == state)
                    {
                        break;
                    }

                    state = seen;
                }
            }
            else
            {
                try
                {
                    EnableSignalingCore(announce: true);
                }
                catch
                {
                    Volatile.Write(ref callback.State, FenceCallback.Free); // no half-changed state
                    throw;
                }
            }

            head = Volatile.Read(ref _callbacks);
        }

        if ((Volatile.Read(ref _state) & HasCallbacksBit) == 0 && !Announce())
        {
            // A fast signal claimed the fence first; it has published now (Announce waited for it).
            Volatile.Write(ref callback.State, FenceCallback.Free);
            return false;
        }

        if (removable)
        {
            callback.Owner = this;
        }

        while (true)
        {
            if (IsSignaledHead(head))
            {
                // Signalled while we prepared: undo, the node was never visible to the signaller.
                callback.Owner = null;
                Volatile.Write(ref callback.State, FenceCallback.Free);
                return false;
            }

            // PERF: a store only when the link changes (a node re-added to an empty list keeps its null link):
            // a write barrier less. Nobody else writes the link of a node that is not linked yet.
            if (!ReferenceEquals(callback.Next, head))
            {
                callback.Next = head;
            }

            // The CAS is the linearization point of the add: the cell is published with its link.
            FenceCallback? seen = Interlocked.CompareExchange(ref _callbacks, callback, head);
            if (ReferenceEquals(seen, head))
            {
                return true;
            }

            head = seen;
        }
    }

    /// <summary>
    /// Announces, before the first cell is linked, that the fence has callbacks, so a signaller takes the
    /// list by exchange instead of publishing with a store. A CAS on the flag word orders the announce and
    /// a fast claim: whichever lands first, the other sees it. Usually the library's own enable before an add
    /// (<see cref="EnableSignalingCore"/> with announce) has announced already, and this is one read; after a bare
    /// public <see cref="EnableSignaling"/>, or a poll with a zero timeout, it is a CAS of its own. False when a fast signal
    /// claimed the fence first; this waits the few stores until it publishes, so the caller may report the
    /// fence as signalled.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool Announce()
    {
        int state = Volatile.Read(ref _state);
        while ((state & HasCallbacksBit) == 0)
        {
            if ((state & FastClaimBit) != 0)
            {
                WaitForFastPublish();
                return false;
            }

            int seen = Interlocked.CompareExchange(ref _state, state | HasCallbacksBit, state);
            if (seen == state)
            {
                return true;
            }

            state = seen;
        }

        return true;
    }

    /// <summary>Spins until a fast signaller's store publishes: it is between its claim and that store, with
    /// no hook and no callback in between, only the timestamp's clock read (a <see cref="FenceTimeline"/>'s
    /// <see cref="TimeProvider"/>, for a timeline that has one: a provider must not add callbacks to the
    /// fence it is stamping).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void WaitForFastPublish()
    {
        var spin = default(SpinWait);
        while (!IsSignaled)
        {
            spin.SpinOnce();
        }
    }

    /// <summary>Queues a delegate; allocates a node. Prefer <see cref="AddCallback(FenceCallback)"/> on hot paths.</summary>
    /// <returns>The node (for <see cref="RemoveCallback"/>), or null if the fence had already signalled.</returns>
    public FenceCallback? AddCallback(Action<Fence> action)
    {
        FenceCallback node = FenceCallback.Create(action);
        return AddPrivateCallback(node) ? node : null;
    }

    /// <summary>
    /// Registers <paramref name="callback"/> to run with <paramref name="state"/> when the fence signals,
    /// following the <see cref="CancellationToken.Register(Action{object?, CancellationToken}, object?)"/> idiom:
    /// dispose the returned registration (or call <see cref="FenceCallbackRegistration.Unregister"/>) to
    /// remove it. Allocates one node; a static lambda with the state avoids a closure.
    /// </summary>
    /// <remarks>Unlike <c>dma_fence_add_callback</c> (and <see cref="AddCallback(FenceCallback)"/>), a fence
    /// that has already signalled runs the callback at once, on the caller's thread, as a cancelled token
    /// does, and the registration returned is empty. A callback that throws there throws to the caller,
    /// who is the callback's own owner; on a signalling thread it goes to <see cref="OnCallbackFailed"/>.</remarks>
    /// <exception cref="ArgumentNullException"><paramref name="callback"/> is null.</exception>
    public FenceCallbackRegistration AddCallback(Action<Fence, object?> callback, object? state)
    {
        ArgumentNullException.ThrowIfNull(callback);
        var node = new StateCallback(callback, state);
        if (AddPrivateCallback(node))
        {
            return new FenceCallbackRegistration(this, node);
        }

        callback(this, state);
        return default;
    }

    /// <summary>A delegate with its state, for <see cref="AddCallback(Action{Fence, object?}, object?)"/>.</summary>
    private sealed class StateCallback(Action<Fence, object?> callback, object? state) : FenceCallback
    {
        protected internal override void Invoke(Fence fence) => callback(fence, state);
    }

    /// <summary>
    /// Removes a queued callback. Mirrors <c>dma_fence_remove_callback</c>.
    /// </summary>
    /// <returns>True if it was still queued on a pending fence and now will never run; false if it has run,
    /// the fence has signalled (the callback runs or is running on the signalling thread), or it was never
    /// queued on this fence. After true, the node is unlinked and may be re-added at once.</returns>
    /// <remarks>A remove that races the signal returns only once the signaller has walked past the node,
    /// so it can wait behind the callbacks registered before it. A node must not be removed by one thread
    /// while another adds it: the caller owns the node, as with the kernel's <c>dma_fence_cb</c>.</remarks>
    public bool RemoveCallback(FenceCallback callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        if (!ReferenceEquals(Volatile.Read(ref callback.Owner), this))
        {
            return false;
        }

        // Announce before looking at the signal: a signaller reads this bit after its publishing exchange and,
        // when it is clear, frees each cell with a store, not the compare-and-swap the one below races with.
        // Both sides are full fences, so either the signaller sees the bit or this thread sees the sentinel
        // below (Coyote: FenceCallbackTests; canary: BrokenRemoveCallbackList's late announce). Sticky, so a
        // fence that has seen a remover costs later removers one read.
        if ((Volatile.Read(ref _state) & RemoverSeenBit) == 0)
        {
            Interlocked.Or(ref _state, RemoverSeenBit);
        }

        // Once the signal is published the cell belongs to the signaller, even before it reaches it: the
        // kernel's remove returns false on a signalled fence, and a timed-out or cancelled wait must not
        // report failure for a signal it could already see. Linearization point of a true result: the
        // fence is pending here, and the CAS below stops the later claim.
        if (IsSignaled)
        {
            return false;
        }

        // Wins against the signaller's claim, or loses to it. From here the cell is ours until we free it.
        if (Interlocked.CompareExchange(ref callback.State, FenceCallback.Removed, FenceCallback.Queued) != FenceCallback.Queued)
        {
            return false;
        }

        if (!Unlink(callback))
        {
            WaitUntilWalkedPast(callback);
        }

        callback.Owner = null;
        Volatile.Write(ref callback.State, FenceCallback.Free);
        return true;
    }

    /// <summary>
    /// Unlinks a cell this thread has marked removed. Returns true when no signaller can reach it any more
    /// (the fence was still pending after the unlink), false when a signaller took the list meanwhile and
    /// may still read the cell.
    /// </summary>
    private bool Unlink(FenceCallback cell)
    {
        // The bit lock orders removers among themselves only (two unlinks of neighbouring cells would lose
        // one); the signaller and adders never take it, and it is held for the walk alone, never while
        // waiting on the signaller.
        var spin = default(SpinWait);
        while ((Interlocked.Or(ref _state, RemoveLockBit | RemoverSeenBit) & RemoveLockBit) != 0)
        {
            spin.SpinOnce();
        }

        try
        {
            FenceCallback? head = Volatile.Read(ref _callbacks);
            while (true)
            {
                if (IsSignaledHead(head))
                {
                    return false; // the signaller took the list with the cell in it, and will pass it
                }

                if (ReferenceEquals(head, cell))
                {
                    FenceCallback? seen = Interlocked.CompareExchange(ref _callbacks, cell.Next, cell);
                    if (ReferenceEquals(seen, cell))
                    {
                        break;
                    }

                    head = seen; // an adder pushed above it, or the signaller took the list
                    continue;
                }

                // Find the cell above ours. Cells below the head change only under this lock, or once the
                // signaller has taken the list: each step checks that it has not, before trusting a link.
                FenceCallback? above = head;
                while (above is not null)
                {
                    FenceCallback? next = Volatile.Read(ref above.Next);
                    if (IsSignaled)
                    {
                        return false;
                    }

                    if (ReferenceEquals(next, cell))
                    {
                        break;
                    }

                    above = next;
                }

                if (above is null)
                {
                    // Not linked yet: another thread's add of this node is between its claim and its push
                    // (a caller race). Wait for the push, or for the signal, rather than free a cell that is
                    // about to be linked.
                    spin.SpinOnce();
                    head = Volatile.Read(ref _callbacks);
                    continue;
                }

                // Expecting our cell makes this fail only if the cell above was claimed and reused: the
                // signaller read its link (our cell) before claiming it, so it will pass our cell.
                if (!ReferenceEquals(Interlocked.CompareExchange(ref above.Next, cell.Next, cell), cell))
                {
                    return false;
                }

                break;
            }
        }
        finally
        {
            Interlocked.And(ref _state, ~RemoveLockBit);
        }

        // The unlink (a full fence) is ordered before this read: a signaller that takes the list later cannot
        // reach the cell. One that took it earlier may have read the link to it before we cut it.
        return !IsSignaled;
    }

    /// <summary>Waits until the signaller that raced our remove has passed the cell or finished its walk.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void WaitUntilWalkedPast(FenceCallback cell)
    {
        var spin = default(SpinWait);
        while (Volatile.Read(ref cell.State) != FenceCallback.Passed && (Volatile.Read(ref _state) & WalkDoneBit) == 0)
        {
            spin.SpinOnce();
        }
    }

    // ----------------------------------------------------------------------------------------------
    // Deadlines

    /// <summary>
    /// Hints that the fence is needed by <paramref name="deadline"/>, a point on the fence's clock (see
    /// <see cref="Timestamp"/>). Keeps the earliest hint and forwards it to <see cref="OnDeadlineSet"/>.
    /// Mirrors <c>dma_fence_set_deadline</c>; a hint only, ignored once the fence has signalled.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The deadline is negative (before the clock's origin) or
    /// beyond the clock's range; nothing changed.</exception>
    public void SetDeadline(TimeSpan deadline) => SetDeadlineNs(TimeTicks.ToNs(deadline, nameof(deadline)));

    /// <summary>The exact form of <see cref="SetDeadline"/>, in ns (the uAPI's <c>SYNC_IOC_SET_DEADLINE</c>).</summary>
    internal void SetDeadlineNs(long deadlineNs)
    {
        // The uAPI's u64 deadline past 2^63 - 1 is the kernel's negative ktime: a time already passed. The
        // public surface has no time before the clock's origin, so such a hint is recorded as the origin,
        // still "needed now", and never reaches OnDeadlineSet as a negative TimeSpan.
        if (deadlineNs < 0)
        {
            deadlineNs = 0;
        }

        // The word holds ~hint while pending; a timestamp (never negative) complements to a negative value,
        // below any hint, so the loop ends once the signaller has written it.
        long current = Volatile.Read(ref _timeNs);
        while (deadlineNs < ~current)
        {
            // Re-checked after each read of the time word: once claimed, the word is the timestamp.
            if ((Volatile.Read(ref _state) & ClaimedBit) != 0)
            {
                return;
            }

            long seen = Interlocked.CompareExchange(ref _timeNs, ~deadlineNs, current);
            if (seen == current)
            {
                OnDeadlineSetNs(deadlineNs);
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
        return later.Poll() ? null : later;
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
    public static Fence Stub { get; } = CreateSignaledStubNs(FenceClock.NowNs);

    /// <summary>
    /// A new signalled fence on context 0 carrying <paramref name="timestamp"/> (see <see cref="Timestamp"/>).
    /// Mirrors <c>dma_fence_allocate_private_stub</c>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The timestamp is negative or beyond the clock's range.</exception>
    public static Fence CreateSignaledStub(TimeSpan timestamp) => CreateSignaledStubNs(TimeTicks.ToNs(timestamp, nameof(timestamp)));

    /// <summary>The exact form of <see cref="CreateSignaledStub"/>, in ns.</summary>
    internal static Fence CreateSignaledStubNs(long timestampNs)
    {
        var stub = new FenceSource(FenceContext.Stub, 0);
        stub.SignalWithTimestampNs(0, timestampNs);
        return stub;
    }

    // ----------------------------------------------------------------------------------------------
    // Description

    /// <summary>"context:seqno timeline driver signalled|unsignalled", as <c>dma_fence_describe</c> prints.</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"{_context}:{_seqno} {TimelineName} {DriverName} {(IsSignaled ? "signalled" : "unsignalled")}");

    /// <inheritdoc/>
    public override string ToString()
    {
        string status = !IsSignaled ? "pending" : Error < 0 ? Errno.Name(Error) : "signalled";
        return string.Create(CultureInfo.InvariantCulture, $"{GetType().Name} {_context}:{_seqno} ({status})");
    }

    /// <summary>Counts the cells linked in the callback list. For tests only: not safe against concurrent
    /// adders and removers.</summary>
    internal int LinkedCallbackCellsForTesting()
    {
        int n = 0;
        FenceCallback? cell = Volatile.Read(ref _callbacks);
        if (cell is { State: FenceCallback.Sentinel })
        {
            return 0;
        }

        for (; cell is not null; cell = cell.Next)
        {
            n++;
        }

        return n;
    }

    /// <summary>The list head of a signalled fence (<see cref="s_signaled"/>); never queued.</summary>
    private sealed class SignaledSentinel : FenceCallback
    {
        public SignaledSentinel()
            : base(Sentinel)
        {
        }

        protected internal override void Invoke(Fence fence) => throw new UnreachableException();
    }
}

/// <summary>What one of the library's own fence types says about itself at construction. Each value is its bit of
/// <see cref="Fence"/>'s flag word, so the constructor stores them with one or.</summary>
[Flags]
internal enum FenceTraits
{
    /// <summary>None of the below.</summary>
    None = 0,

    /// <summary>The fence stamps its signal with its own clock (<c>ClockNowNs</c>) instead of <see cref="FenceClock"/>:
    /// a <see cref="FenceTimeline"/> with a <see cref="TimeProvider"/>.</summary>
    CustomClock = 128,

    /// <summary>The type does not override <c>OnSignaled</c>, so it takes the fast signal (see <c>SignalCore</c>); a
    /// plain <see cref="FenceSource"/> is recognized by its type when it signals.</summary>
    NoSignaledHook = 1024,

    /// <summary>The type does not override <c>PollSignaled</c>, so <see cref="Fence.Poll"/> of a pending one makes no
    /// virtual call (a plain <see cref="FenceSource"/> is recognized by its type, and makes no call at all).</summary>
    NoPollHook = 2048,
}
