using System.Diagnostics;
using System.Runtime.CompilerServices;
using FenceCore.Internal;

namespace FenceCore;

/// <summary>
/// A node of a timeline: a previous node, a contained fence and a 64-bit point. The node signals once
/// its own fence and every older node's fence have signalled. Mirrors <c>dma_fence_chain</c>.
/// </summary>
/// <remarks>
/// <para>
/// Context and seqno follow <c>dma_fence_chain_init</c>: when <c>prev</c> is a chain node and the new
/// point is later than its seqno (compared on 64 bits), the node reuses the previous context and
/// remembers the previous seqno in <see cref="PreviousSeqno"/>; otherwise (an out-of-order point, or no
/// chain before it) it takes a new context, and after a chain its seqno is the larger of the two, so a
/// head never moves backwards. Chain nodes always compare seqnos on 64 bits.
/// </para>
/// <para>
/// The contained fence may be a leaf or a <see cref="FenceArray"/>, never a chain: the constructor
/// rejects that (the kernel WARNs), which keeps unwrap and signalling free of nested recursion.
/// </para>
/// <para>
/// Garbage collection of the timeline is lock-free: <see cref="Walk"/> unlinks older nodes whose
/// contained fence has signalled by compare-and-swap on the previous link, retrying when another walker
/// got there first, exactly as <c>dma_fence_chain_walk</c> does with <c>cmpxchg</c>. A link only ever
/// moves to an older node and objects are never reused while reachable, so there is no ABA.
/// </para>
/// <para>
/// Signalling keeps one callback in flight: enabling signalling registers the node's own callback on
/// the newest unsignalled contained fence found by the walk; when it runs, it walks again from this
/// node and re-arms on the next unsignalled one, or signals the node when none is left. Every walk only
/// unlinks nodes, so across the life of a chain the re-arming does work linear in its length.
/// </para>
/// <para>
/// Differences from the kernel, on purpose: the re-arm runs inline on the signalling thread instead of
/// in irq_work. FenceCore never holds a lock while callbacks run, so the lock inversion irq_work avoids
/// cannot happen, and the depth stays bounded: a leaf's signal runs at most an array's callback, then
/// this node's callback (an iterative walk), then this node's own callbacks; nothing recurses per node.
/// Release needs no iterative unlinking: there is no reference count, and the .NET garbage collector
/// marks deep object graphs without recursion. Like the kernel, a node does not take over its contained
/// fence's error; unwrap the node (or read <see cref="ContainedFence"/>) to see it.
/// </para>
/// </remarks>
public sealed class FenceChain : Fence
{
    private readonly Fence _fence;
    private readonly ulong _prevSeqno;

    /// <summary>
    /// The next older node (a chain node, or any fence at the start of the timeline), or null. Set by the
    /// constructor; after that written only by compare-and-swap in <see cref="Walk"/>, which replaces a
    /// signalled predecessor by its own predecessor; read with Volatile.Read (acquire: the node it points
    /// to is fully constructed).
    /// </summary>
    private Fence? _prev;

    /// <summary>
    /// The node's one callback, created in <see cref="OnEnableSignaling"/> (which the base class runs at
    /// most once) before <see cref="Fence.AddCallback(FenceCallback)"/> publishes it; immutable after.
    /// Allocated lazily so a node nobody waits on costs no callback object.
    /// </summary>
    private ChainCallback? _callback;

    /// <summary>Creates a chain node. Mirrors <c>dma_fence_chain_init</c>.</summary>
    /// <param name="prev">The previous point of the timeline (usually a chain node), or null for the first.</param>
    /// <param name="fence">The fence that completes this point: a leaf or an array, not a chain.</param>
    /// <param name="seqno">The point.</param>
    /// <exception cref="ArgumentNullException"><paramref name="fence"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="fence"/> is a chain node.</exception>
    public FenceChain(Fence? prev, Fence fence, ulong seqno)
        : this(prev, fence, Place(prev, fence, seqno))
    {
    }

    private FenceChain(Fence? prev, Fence fence, Placement placement)
        : base(placement.Context, placement.Seqno, FenceOptions.Seqno64, FenceTraits.NoSignaledHook)
    {
        _fence = fence;
        _prevSeqno = placement.PrevSeqno;
        _prev = prev;
    }

    /// <summary>The fence that completes this point (a leaf or an array).</summary>
    public Fence ContainedFence => _fence;

    /// <summary>The current previous link: an older unsignalled node, or one not yet collected, or null.
    /// Moves to older nodes as the timeline is collected.</summary>
    public Fence? Previous => Volatile.Read(ref _prev); // acquire: pairs with the constructor's publication and the GC's CAS

    /// <summary>The seqno of the previous node when this node reused its context, else 0. Kept after the
    /// previous node has been collected, so lookups still know where this node's range starts.</summary>
    public ulong PreviousSeqno => _prevSeqno;

    /// <inheritdoc/>
    public override string DriverName => "dma_fence_chain";

    /// <inheritdoc/>
    public override string TimelineName => "unbound";

    /// <summary>The contained fence of <paramref name="fence"/> if it is a chain node, else the fence
    /// itself. Mirrors <c>dma_fence_chain_contained</c>.</summary>
    [return: System.Diagnostics.CodeAnalysis.NotNullIfNotNull(nameof(fence))]
    public static Fence? Contained(Fence? fence) => fence is FenceChain chain ? chain._fence : fence;

    /// <summary>
    /// Returns the next older node of <paramref name="fence"/> whose contained fence has not signalled
    /// (or an unsignalled non-chain fence at the start of the timeline), unlinking signalled nodes on the
    /// way; null at the end of the timeline or when <paramref name="fence"/> is not a chain node.
    /// Mirrors <c>dma_fence_chain_walk</c>.
    /// </summary>
    public static Fence? Walk(Fence? fence)
    {
        if (fence is not FenceChain chain)
        {
            return null;
        }

        while (true)
        {
            Fence? prev = Volatile.Read(ref chain._prev); // acquire: the node behind the link is fully built
            if (prev is null)
            {
                return null;
            }

            Fence? replacement;
            if (prev is FenceChain prevChain)
            {
                if (!prevChain._fence.Poll())
                {
                    return prev;
                }

                replacement = Volatile.Read(ref prevChain._prev); // acquire: as above
            }
            else
            {
                if (!prev.Poll())
                {
                    return prev;
                }

                replacement = null;
            }

            // The CAS is the unlink's linearization point; if it fails another walker moved the link
            // (only ever to an older node), and the loop re-reads it.
            Interlocked.CompareExchange(ref chain._prev, replacement, prev);
        }
    }

    /// <summary>
    /// Enumerates the timeline from <paramref name="head"/>: the head itself, then every older node that
    /// <see cref="Walk"/> returns (collecting signalled ones on the way). Nothing for null; a plain fence
    /// once. Mirrors <c>dma_fence_chain_for_each</c>; the struct enumerator allocates nothing.
    /// </summary>
    public static Enumerable ForEach(Fence? head) => new(head);

    /// <summary>
    /// Finds the node that will signal <paramref name="seqno"/>. Mirrors <c>dma_fence_chain_find_seqno</c>.
    /// </summary>
    /// <returns>The node (or, across an out-of-order point, the first node of another context) whose
    /// signal completes the point; null when the point has already signalled and its nodes were collected;
    /// this node itself for seqno 0 (a no-op).</returns>
    /// <exception cref="ArgumentOutOfRangeException">The point is later than this node: it has not been
    /// submitted yet (the kernel's -EINVAL). Use <see cref="TryFindSeqno(ulong, out Fence?)"/> to test.</exception>
    public Fence? FindSeqno(ulong seqno)
    {
        if (!TryFindSeqno(seqno, out Fence? found))
        {
            ThrowHelper.ThrowPointNotSubmitted(seqno, Seqno, nameof(seqno));
        }

        return found;
    }

    /// <summary>As <see cref="FindSeqno(ulong)"/>, returning false instead of throwing when the point has
    /// not been submitted yet (the kernel's -EINVAL).</summary>
    public bool TryFindSeqno(ulong seqno, out Fence? fence)
    {
        if (seqno == 0)
        {
            fence = this;
            return true;
        }

        if (Seqno < seqno)
        {
            fence = null;
            return false;
        }

        foreach (Fence node in ForEach(this))
        {
            // Stop at the first node whose range starts below the point, or where the context changes
            // (an out-of-order point began a new context: the older context's node signals it).
            if (node is not FenceChain chain || chain.Context != Context || chain._prevSeqno < seqno)
            {
                fence = node;
                return true;
            }
        }

        fence = null; // everything up to the point has signalled and was collected
        return true;
    }

    /// <summary>
    /// Finds point <paramref name="seqno"/> from any fence, with the kernel's <c>*pfence</c> rules: seqno 0
    /// leaves <paramref name="head"/> as it is; a fence that is not a chain node cannot hold a point.
    /// </summary>
    /// <returns>False for a non-chain head with a non-zero point, or a point not yet submitted (-EINVAL).</returns>
    public static bool TryFindSeqno(Fence? head, ulong seqno, out Fence? fence)
    {
        if (seqno == 0)
        {
            fence = head;
            return true;
        }

        if (head is FenceChain chain)
        {
            return chain.TryFindSeqno(seqno, out fence);
        }

        fence = null;
        return false;
    }

    /// <inheritdoc/>
    protected override bool OnEnableSignaling()
    {
        Debug.Assert(_callback is null, "enable-signalling runs once per fence");
        _callback = new ChainCallback(this);
        return Arm();
    }

    /// <summary>True when every contained fence along the walk has signalled. Mirrors
    /// <c>dma_fence_chain_signaled</c>; works without signalling ever being enabled.</summary>
    protected override bool PollSignaled()
    {
        foreach (Fence node in ForEach(this))
        {
            if (!Contained(node).Poll())
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Forwards the hint to every contained fence along the walk. Mirrors
    /// <c>dma_fence_chain_set_deadline</c>.</summary>
    private protected override void OnDeadlineSetNs(long deadlineNs)
    {
        foreach (Fence node in ForEach(this))
        {
            Contained(node).SetDeadlineNs(deadlineNs);
        }
    }

    /// <summary>Registers the node's callback on the newest unsignalled contained fence; false when every
    /// contained fence has signalled. Iterative: one walk, no recursion per node.</summary>
    private bool Arm() => _callback!.ArmFromHead();

    /// <summary>The callback ran: its fence signalled. Re-arm on the next pending fence or signal.</summary>
    private void ContainedSignaled()
    {
        if (IsSignaled)
        {
            return; // a poll already found everything signalled and signalled the node
        }

        if (!Arm())
        {
            Signal();
        }
    }

    private static Placement Place(Fence? prev, Fence fence, ulong seqno)
    {
        ArgumentNullException.ThrowIfNull(fence);
        if (fence is FenceChain)
        {
            ThrowHelper.ThrowChainContainsChain(nameof(fence));
        }

        if (prev is FenceChain prevChain)
        {
            // A later point continues the previous node's timeline; an earlier or equal one starts a new
            // context, and the head's seqno never goes backwards.
            return IsSeqnoLater(seqno, prevChain.Seqno, seqno64: true)
                ? new Placement(prevChain.Context, seqno, prevChain.Seqno)
                : new Placement(FenceContext.Allocate(), Math.Max(prevChain.Seqno, seqno), 0);
        }

        return new Placement(FenceContext.Allocate(), seqno, 0);
    }

    private readonly record struct Placement(ulong Context, ulong Seqno, ulong PrevSeqno);

    /// <summary>The node's own callback (the kernel's <c>chain-&gt;cb</c>), re-added from its own Invoke: each
    /// arm walks the chain from its head (as <c>dma_fence_chain_enable_signaling</c> does).</summary>
    private sealed class ChainCallback(FenceChain chain) : RearmingCallback
    {
        /// <summary>The current walk; used only by the thread arming the node (see <see cref="RearmingCallback"/>).</summary>
        private Enumerator _walk;

        public bool ArmFromHead()
        {
            _walk = ForEach(chain).GetEnumerator();
            return ArmOnNext();
        }

        protected override Fence? NextInWalk() => _walk.MoveNext() ? Contained(_walk.Current) : null;

        protected internal override void Invoke(Fence fence) => chain.ContainedSignaled();
    }

    /// <summary>The result of <see cref="ForEach"/>: a struct so <c>foreach</c> allocates nothing.</summary>
    public readonly struct Enumerable(Fence? head)
    {
        /// <summary>Returns the enumerator.</summary>
        public Enumerator GetEnumerator() => new(head);
    }

    /// <summary>Walks a timeline from its head. Not <see cref="IDisposable"/>: breaking out early needs no
    /// clean-up, unlike the kernel's iterator, because there are no references to drop.</summary>
    public struct Enumerator
    {
        private Fence? _next;
        private Fence? _current;
        private bool _started;

        internal Enumerator(Fence? head)
        {
            _next = head;
            _current = null;
            _started = false;
        }

        /// <summary>The current node.</summary>
        public readonly Fence Current
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            get => _current!;
        }

        /// <summary>Advances to the next older unsignalled node.</summary>
        public bool MoveNext()
        {
            if (!_started)
            {
                _started = true;
                _current = _next;
                _next = null;
            }
            else if (_current is not null)
            {
                _current = Walk(_current);
            }

            return _current is not null;
        }
    }
}
