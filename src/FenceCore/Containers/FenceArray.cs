using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FenceCore.Internal;

namespace FenceCore;

/// <summary>
/// A fence that stands for a set of fences: it signals when all of them have signalled, or when any
/// has. Mirrors <c>dma_fence_array</c>.
/// </summary>
/// <remarks>
/// <para>
/// Members must be plain fences: an array or a chain as a member is rejected, the rule the kernel
/// WARNs on since 2022 (nested containers make signalling and release recurse).
/// </para>
/// <para>
/// Signal-on-all waits with one callback node that walks the members in order, as a chain's node does
/// (<see cref="RearmingCallback"/>'s pattern): it is registered on the first member that has not
/// signalled, and when that one signals it moves on to the next; past the last member, the array
/// signals. The kernel registers a callback on every member and counts them down; one node instead of N
/// saves N - 1 allocations and N interlocked decrements (PERF: <c>FenceArrayAllBenchmarks</c>). The
/// array's error is that of the failed member that signalled first (the earliest timestamp; on a tie, the
/// lowest index): the kernel's first error by compare-and-swap, made deterministic.
/// </para>
/// <para>
/// Signal-on-any registers a callback on every member, since any may signal first. Its pending count is
/// kept with <see cref="Interlocked"/>: it starts at 1 and each member callback decrements it; the
/// decrement that reaches zero signals the array, with the first member error, won by compare-and-swap.
/// </para>
/// <para>
/// Recursion: the kernel defers the array's own signal to irq_work because its callbacks run under
/// the member's spinlock. FenceCore runs callbacks outside any lock, so it signals inline, on the
/// member's signalling thread, which keeps virtual-time runs deterministic. The depth that adds is
/// bounded by construction: arrays hold only leaves and a chain may hold an array but never a chain,
/// so a member's signal can run at most an array and then one chain node before reaching user
/// callbacks. Nothing FenceCore does recurses further.
/// </para>
/// <para>
/// Timestamp, a difference on purpose: an enabled array takes its time from its members instead of
/// reading the clock again: the latest member signal time for wait-all, the completing member's for
/// wait-any. That is the moment its condition became true, never before any member it waits for, and
/// it saves a clock read per array (about 31 ns on the AMD EPYC test machine). The kernel reads the
/// clock when its irq_work signals the array, microseconds later.
/// </para>
/// <para>
/// <see cref="Fence.IsSignaled"/> is correct when the array is only polled and signalling was never
/// enabled (the 2024 kernel fix): the poll counts signalled members itself.
/// </para>
/// </remarks>
public sealed class FenceArray : Fence
{
    /// <summary>Signal-on-any: how many members <see cref="OnEnableSignaling"/> has armed or counted.
    /// Signal-on-all: the member the walk waits on (or is about to register on); past the last, the walk
    /// is over. Written only by the one thread running the hook or the walk: the base class's enable bit
    /// serializes the hook (a retry after a failure sees the earlier writes through the bit's
    /// compare-and-swap), and the walk continues only from its node's invocation, which the add-callback
    /// compare-and-swap that armed the node orders after this thread's writes.</summary>
    private int _enableProgress;

    /// <summary>Up to <see cref="InlineCapacity"/> members are kept here, in the array's own object; a larger
    /// array keeps its member array in slot 0. PERF: an array of a few fences (what merges, waits and
    /// <c>GetSingleton</c> mostly build) is one allocation instead of two (MergeSmallBenchmarks,
    /// FenceArrayAllBenchmarks); a larger one pays for the three slots it does not use. Written only by the
    /// constructors.</summary>
    private readonly Slots _slots;

    /// <summary>The number of members of a small array (at least 1, as every array has a member); 0 for a
    /// larger one, whose count is its member array's length. A byte, so the object stays at 104 B.</summary>
    private readonly byte _smallCount;
    private readonly bool _signalOnAny;

    /// <summary>Signal-on-any: 1 until a member signals. Decremented only with Interlocked; the decrement
    /// that reaches exactly zero owns the array's signal.</summary>
    private int _numPending;

    /// <summary>The first member error, or 0. Set once by CAS from 0.</summary>
    private int _pendingError;

    /// <summary>Creates an array over <paramref name="fences"/> on a new context, seqno 1, signalling
    /// when all members have (what <c>dma_resv_get_singleton</c> and unwrap-merge build).</summary>
    public FenceArray(ReadOnlySpan<Fence> fences)
        : this(fences, FenceContext.Allocate(), 1, signalOnAny: false)
    {
    }

    /// <summary>Creates an array. Mirrors <c>dma_fence_array_create</c>.</summary>
    /// <param name="fences">The members: at least one, each a plain fence (not an array or chain).</param>
    /// <param name="context">The array's own context.</param>
    /// <param name="seqno">The array's seqno on that context.</param>
    /// <param name="signalOnAny">Signal when any member signals, instead of when all have.</param>
    /// <exception cref="ArgumentException">The set is empty, or a member is a container.</exception>
    /// <exception cref="ArgumentNullException">A member is null.</exception>
    public FenceArray(ReadOnlySpan<Fence> fences, ulong context, ulong seqno, bool signalOnAny)
        : base(context, seqno, FenceOptions.None, FenceTraits.NoSignaledHook)
    {
        if (fences.IsEmpty)
        {
            ThrowHelper.ThrowEmptyFenceSet(nameof(fences));
        }

        for (int i = 0; i < fences.Length; i++)
        {
            Fence f = fences[i];
            if (f is null)
            {
                ThrowHelper.ThrowNullFenceInSet(nameof(fences), i);
            }

            if (f is FenceArray or FenceChain)
            {
                ThrowHelper.ThrowContainerMember(nameof(fences), i, f);
            }
        }

        if (fences.Length <= InlineCapacity)
        {
            _smallCount = (byte)fences.Length;
            for (int i = 0; i < fences.Length; i++)
            {
                _slots[i] = fences[i];
            }
        }
        else
        {
            _slots[0] = fences.ToArray();
        }

        _signalOnAny = signalOnAny;
        _numPending = 1;
    }

    /// <summary>A wait-all array of two plain, non-null fences on a new context, seqno 1, in one allocation
    /// (no checks: for the merge, which has just made them).</summary>
    internal static FenceArray Own(Fence a, Fence b) => new(a, b, null);

    /// <summary>As <see cref="Own(Fence, Fence)"/>, of three.</summary>
    internal static FenceArray Own(Fence a, Fence b, Fence c) => new(a, b, c);

    [MethodImpl(MethodImplOptions.AggressiveInlining)] // PERF: MergeSmallBenchmarks' three-context row
    private FenceArray(Fence a, Fence b, Fence? c)
        : base(FenceContext.Allocate(), 1, FenceOptions.None, FenceTraits.NoSignaledHook)
    {
        _slots[0] = a;
        _slots[1] = b;
        _slots[2] = c;
        _smallCount = c is null ? (byte)2 : (byte)3;
        _numPending = 1;
    }

    /// <summary>How many members an array keeps in its own object.</summary>
    private const int InlineCapacity = 4;

    /// <summary>The slots of <see cref="_slots"/>: the members, or a larger array's member array.</summary>
    [InlineArray(InlineCapacity)]
    private struct Slots
    {
        private object? _first;
    }

    /// <summary>A larger array's member array (slot 0); only when <see cref="_smallCount"/> is 0.</summary>
    private Fence[] LargeMembers
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Unsafe.As<Fence[]>(_slots[0]!);
    }

    /// <summary>The members, wherever they are kept.</summary>
    private ReadOnlySpan<Fence> Members
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            ref object? first = ref Unsafe.AsRef(in _slots[0]);
            return _smallCount == 0
                ? LargeMembers

                // The slots hold Fence references only (the constructors put them there), so they read as Fences.
                : MemoryMarshal.CreateReadOnlySpan(ref Unsafe.As<object?, Fence>(ref first), _smallCount);
        }
    }

    /// <summary>The members, in construction order.</summary>
    public ReadOnlySpan<Fence> Fences => Members;

    /// <summary>The number of members.</summary>
    public int Count => _smallCount != 0 ? _smallCount : LargeMembers.Length;

    /// <summary>True when the array signals on the first member instead of the last.</summary>
    public bool SignalOnAny => _signalOnAny;

    /// <inheritdoc/>
    public override string DriverName => "dma_fence_array";

    /// <inheritdoc/>
    public override string TimelineName => "unbound";

    /// <summary>Members whose signal the array still waits for: for signal-on-all, those the walk has not
    /// passed; for signal-on-any, the count (may go negative).</summary>
    internal int PendingCount => _signalOnAny ? Volatile.Read(ref _numPending) : Count - Volatile.Read(ref _enableProgress);

    /// <inheritdoc/>
    protected override bool OnEnableSignaling()
    {
        // Resumable: a member whose AddCallback throws (its own enable hook failed) leaves the members
        // before it armed or counted, and the base class lets the next waiter call this hook again; it
        // goes on from that member instead of arming or counting the earlier ones twice.
        if (!_signalOnAny)
        {
            // The node needs no field: the member it is registered on holds it, and it passes itself on.
            ContinueWalk(new AllOfWalker(this));
            return true;
        }

        ReadOnlySpan<Fence> members = Members;
        for (; _enableProgress < members.Length; _enableProgress++)
        {
            Fence member = members[_enableProgress];
            var node = new MemberCallback(this);
            if (!member.AddPrivateCallback(node, removable: false))
            {
                // Already signalled: account for it here, as the kernel's enable_signaling does.
                MemberSignaled(member);
            }
        }

        return true;
    }

    /// <inheritdoc/>
    protected override bool PollSignaled()
    {
        if (IsSignalingEnabled)
        {
            // Enabled: the decrement that reaches zero owns the signal and passes the first error to it.
            // Signalling here too would race it with error 0 and could win, dropping the member's error;
            // until the owner publishes, the array is still pending.
            return false;
        }

        int needed = _signalOnAny ? 1 : Count;
        int signaled = 0;
        foreach (Fence member in Members)
        {
            if (member.Poll())
            {
                RecordError(member.Error);
                if (++signaled >= needed)
                {
                    // Polled without enabling: signal here with the first failed member's error, so the
                    // error travels with whichever signal wins the claim (a SetError followed by a separate
                    // Signal could be overtaken by an enabled path's signal).
                    Signal(Volatile.Read(ref _pendingError));
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>Forwards the hint to every member, as <c>dma_fence_array_set_deadline</c> does.</summary>
    private protected override void OnDeadlineSetNs(long deadlineNs)
    {
        foreach (Fence member in Members)
        {
            member.SetDeadlineNs(deadlineNs);
        }
    }

    /// <summary>
    /// Enumerates <paramref name="head"/>: the members of an array, a plain fence once, or nothing for
    /// null. Mirrors <c>dma_fence_array_for_each</c>; the struct enumerator allocates nothing.
    /// </summary>
    public static Enumerable ForEach(Fence? head) => new(head);

    /// <summary>The first fence of <paramref name="head"/>: null for null, the fence itself when it is not
    /// an array, else member 0. Mirrors <c>dma_fence_array_first</c>.</summary>
    public static Fence? First(Fence? head) => head switch
    {
        null => null,
        FenceArray array => array.Members[0],
        _ => head,
    };

    /// <summary>Member <paramref name="index"/> of <paramref name="head"/>, or null when it is not an array
    /// or the index is past the end. Mirrors <c>dma_fence_array_next</c>.</summary>
    public static Fence? Next(Fence? head, int index) =>
        head is FenceArray array && (uint)index < (uint)array.Count ? array.Members[index] : null;

    /// <summary>True when <paramref name="fence"/>, or every member of it if it is an array, is on
    /// <paramref name="context"/>. Mirrors <c>dma_fence_match_context</c>.</summary>
    public static bool MatchContext(Fence fence, ulong context)
    {
        ArgumentNullException.ThrowIfNull(fence);
        if (fence is not FenceArray array)
        {
            return fence.Context == context;
        }

        foreach (Fence member in array.Members)
        {
            if (member.Context != context)
            {
                return false;
            }
        }

        return true;
    }

    private void RecordError(int error)
    {
        if (error < 0)
        {
            // The first failed member wins; later ones leave the recorded error alone.
            Interlocked.CompareExchange(ref _pendingError, error, 0);
        }
    }

    /// <summary>Signal-on-all: registers the walker on the next member that has not signalled, or signals
    /// the array when none is left. Runs on one thread at a time (see <see cref="_enableProgress"/>).</summary>
    private void ContinueWalk(AllOfWalker walker)
    {
        ReadOnlySpan<Fence> members = Members;
        for (int i = _enableProgress; i < members.Length; i = ++_enableProgress)
        {
            // After a true result the node may already be running on the member's signalling thread, so
            // nothing here is touched again: the node's invocation moves the walk on.
            // The walker is the walk's alone (one thread at a time), so its claim is a store.
            if (members[i].AddPrivateCallback(walker, removable: false))
            {
                return;
            }
        }

        SignalAllOf();
    }

    /// <summary>Signal-on-all, every member signalled: the latest member time, and the error of the failed
    /// member that signalled first.</summary>
    private void SignalAllOf()
    {
        long latest = 0;
        long firstFailure = long.MaxValue;
        int error = 0;
        foreach (Fence member in Members)
        {
            long t = member.TimestampNs;
            latest = Math.Max(latest, t);
            int e = member.Error;
            if (e < 0 && t < firstFailure)
            {
                firstFailure = t;
                error = e;
            }
        }

        SignalWithTimestampNs(error, latest);
    }

    /// <summary>The signal-on-all walk's node: the member it was registered on has signalled, so the walk
    /// moves past it.</summary>
    private sealed class AllOfWalker(FenceArray array) : FenceCallback
    {
        protected internal override void Invoke(Fence fence)
        {
            array._enableProgress++;
            array.ContinueWalk(this);
        }
    }

    private void MemberSignaled(Fence member)
    {
        RecordError(member.Error);

        // The decrement that reaches exactly zero signals the array: one owner, no double signal.
        if (Interlocked.Decrement(ref _numPending) == 0)
        {
            SignalWithTimestampNs(Volatile.Read(ref _pendingError), member.TimestampNs);
        }
    }

    /// <summary>The per-member callback of signal-on-any (the kernel's trailing <c>dma_fence_array_cb</c>).</summary>
    private sealed class MemberCallback(FenceArray array) : FenceCallback
    {
        protected internal override void Invoke(Fence fence) => array.MemberSignaled(fence);
    }

    /// <summary>The result of <see cref="ForEach"/>: a struct so <c>foreach</c> allocates nothing.</summary>
    public readonly struct Enumerable(Fence? head)
    {
        /// <summary>Returns the enumerator.</summary>
        public Enumerator GetEnumerator() => new(head);
    }

    /// <summary>Enumerates an array's members or a plain fence once. Not <see cref="IDisposable"/>, so a
    /// <c>foreach</c> over it inlines without try/finally (the <c>ImmutableArray</c> pattern).</summary>
    public struct Enumerator
    {
        private readonly Fence? _head;

        /// <summary>A large array's member array, or null.</summary>
        private readonly Fence[]? _members;

        /// <summary>A small array, whose members are in its slots, or null.</summary>
        private readonly FenceArray? _small;
        private readonly int _count;
        private int _index;

        internal Enumerator(Fence? head)
        {
            _head = head;
            if (head is FenceArray array)
            {
                if (array._smallCount == 0)
                {
                    _members = array.LargeMembers;
                    _count = _members.Length;
                }
                else
                {
                    _small = array;
                    _count = array._smallCount;
                }
            }
            else
            {
                _count = head is null ? 0 : 1;
            }

            _index = -1;
        }

        /// <summary>The current fence.</summary>
        public readonly Fence Current
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            get => _small is not null ? Unsafe.As<Fence>(_small._slots[_index]!) : _members is not null ? _members[_index] : _head!;
        }

        /// <summary>Advances to the next fence.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public bool MoveNext()
        {
            int next = _index + 1;
            int count = _count;
            if (next < count)
            {
                _index = next;
                return true;
            }

            _index = count;
            return false;
        }
    }
}
