using System.Buffers;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using FenceCore.Internal;

namespace FenceCore;

/// <summary>
/// Deep iteration through containers and the merge of fence sets. Mirrors <c>dma_fence_unwrap</c>
/// (<c>dma_fence_unwrap_for_each</c>, <c>dma_fence_unwrap_merge</c>, <c>dma_fence_dedup_array</c>).
/// </summary>
/// <remarks>
/// The only legal nesting is chain → (array | leaf) → leaf: <see cref="FenceArray"/> rejects containers
/// as members and <see cref="FenceChain"/> rejects a chain as its contained fence, so every fence this
/// iterator can meet has one of those shapes and it never needs to recurse.
/// </remarks>
public static class FenceUnwrap
{
    /// <summary>Inputs up to this many unsignalled leaves merge in a stack buffer, allocating nothing.</summary>
    private const int InlineCapacity = 8;

    /// <summary>
    /// Enumerates the leaves of <paramref name="head"/>: for a chain, the contained fence (or its array's
    /// members) of each node the walk visits, newest first, collecting signalled nodes on the way; the
    /// members of an array; a plain fence once; nothing for null. Mirrors <c>dma_fence_unwrap_for_each</c>.
    /// The struct enumerator allocates nothing and may be abandoned early.
    /// </summary>
    public static Enumerable ForEach(Fence? head) => new(head);

    /// <summary>
    /// Merges fences into one that signals when all of them have. Mirrors <c>dma_fence_unwrap_merge</c>
    /// (v6.13 and later).
    /// </summary>
    /// <remarks>
    /// Every input is unwrapped to leaves; signalled leaves are dropped, keeping the latest signal time.
    /// No leaf left: a new signalled stub carrying that time (<see cref="Fence.CreateSignaledStub"/>). One
    /// leaf left: that fence itself, and nothing is allocated (the common two- or three-fence case, also
    /// when duplicates or older points of one context collapse to one). More: the leaves are sorted by
    /// context, the latest of each context is kept (<see cref="Dedup"/>), and one new wait-all
    /// <see cref="FenceArray"/> on a new context, seqno 1, holds them. Sorting makes unsorted inputs of
    /// any size merge in O(n log n) (the 2024 fix for unbounded arrays from unsorted inputs).
    /// </remarks>
    /// <exception cref="ArgumentNullException">An input is null.</exception>
    public static Fence Merge(params ReadOnlySpan<Fence> fences)
    {
        // PERF: the two- and three-fence merge runs in a frame of its own; the general path's stack
        // buffer and its try/finally live in MergeAny, so the common case does not zero them
        // (MergeSmallBenchmarks).
        if (fences.Length is 2 or 3 && TryMergeTwoOrThreePlain(fences) is { } few)
        {
            return few;
        }

        return MergeAny(fences);
    }

    /// <summary>The merge of any inputs: containers, nulls (rejected), and sets of any size.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Fence MergeAny(ReadOnlySpan<Fence> fences)
    {
        if (fences.Length > InlineCapacity && TryMergeLeavesOfFewContexts(fences, out Fence? merged))
        {
            return merged;
        }

        // One pass collects the pending leaves: up to InlineCapacity on the stack, so a merge that
        // collapses to one fence allocates nothing; past that, into an array rented from the shared pool.
        long timestamp = 0;
        InlineFences inline = default;
        Span<Fence> scratch = inline;
        Fence[]? rented = null;
        int n = 0;
        try
        {
            for (int i = 0; i < fences.Length; i++)
            {
                Fence input = fences[i];
                if (input is null)
                {
                    ThrowHelper.ThrowNullFenceInSet(nameof(fences), i);
                }

                // PERF: a plain fence is its own only leaf; only containers need the unwrap cursor
                // (MergeLargeBenchmarks: the cursor per input cost more than the dedup).
                if (input is not (FenceChain or FenceArray))
                {
                    Collect(input, ref scratch, ref rented, ref n, ref timestamp, fences.Length - i);
                    continue;
                }

                foreach (Fence leaf in ForEach(input))
                {
                    Collect(leaf, ref scratch, ref rented, ref n, ref timestamp, fences.Length - i);
                }
            }

            if (n > 1)
            {
                n = Dedup(scratch[..n]);
            }

            return n switch
            {
                0 => Fence.CreateSignaledStubNs(timestamp),
                1 => scratch[0],
                _ => new FenceArray(scratch[..n]),
            };
        }
        finally
        {
            if (rented is not null)
            {
                scratch[..n].Clear(); // drop the references before the array goes back to the pool
                ArrayPool<Fence>.Shared.Return(rented);
            }
        }
    }

    /// <summary>
    /// The large merge of the usual shape, many plain fences over a few contexts, in one pass over the
    /// inputs: the latest pending fence per context goes straight into a table on the stack, with no
    /// scratch copy. False (nothing built) when an input is a container or there are more contexts than
    /// the table holds; <see cref="Merge"/> then takes the general path.
    /// </summary>
    /// <remarks>PERF: MergeLargeBenchmarks (1,024 fences over 32 contexts): collecting into a scratch
    /// array first, then deduplicating it, cost about 1.5x this.</remarks>
    private static bool TryMergeLeavesOfFewContexts(ReadOnlySpan<Fence> fences, [NotNullWhen(true)] out Fence? merged)
    {
        Span<ulong> contexts = stackalloc ulong[TableCapacity];
        contexts.Fill(ulong.MaxValue);
        TableFences latest = default;
        int distinct = 0;
        long timestamp = 0;
        merged = null;
        for (int i = 0; i < fences.Length; i++)
        {
            Fence f = fences[i];
            if (f is null)
            {
                ThrowHelper.ThrowNullFenceInSet(nameof(fences), i);
            }

            if (f is FenceChain or FenceArray)
            {
                return false;
            }

            if (f.Poll())
            {
                timestamp = Math.Max(timestamp, f.TimestampNs);
                continue;
            }

            int at = IndexOfContext(contexts, distinct, f.Context);
            if (at >= 0)
            {
                if (Fence.IsLater(f, latest[at]))
                {
                    latest[at] = f;
                }
            }
            else if (distinct == TableCapacity)
            {
                return false;
            }
            else
            {
                contexts[distinct] = f.Context;
                latest[distinct++] = f;
            }
        }

        Span<Fence> kept = ((Span<Fence>)latest)[..distinct];
        InsertionSortByContext(kept);
        merged = distinct switch
        {
            0 => Fence.CreateSignaledStubNs(timestamp),
            1 => kept[0],
            _ => new FenceArray(kept),
        };
        return true;
    }

    /// <summary>
    /// The merge of two or three plain fences, the shape that dominates (kernel-fence-model §4), in
    /// registers: the pending ones, the later point of each context kept, ordered by context, and an array
    /// that keeps them in its own object, with no scratch buffer, no sort call and no second copy.
    /// Null when an input is null or a container (the general path handles, or rejects, those).
    /// </summary>
    /// <remarks>PERF: MergeSmallBenchmarks (the two- and three-context rows build an array).</remarks>
    private static Fence? TryMergeTwoOrThreePlain(ReadOnlySpan<Fence> fences)
    {
        // PERF: straight-line code over at most three inputs, no loop: the loop's counter and the state of the
        // three slots spilled to the stack on every input (MergeSmallBenchmarks).
        Debug.Assert(fences.Length is 2 or 3, "the caller dispatches only two or three inputs here");
        Fence f0 = fences[0];
        Fence f1 = fences[1];
        if (fences.Length == 2)
        {
            return IsPlainLeaf(f0) && IsPlainLeaf(f1) ? MergeTwoPlain(f0, f1) : null;
        }

        Fence f2 = fences[2];
        if (!IsPlainLeaf(f0) || !IsPlainLeaf(f1) || !IsPlainLeaf(f2))
        {
            return null;
        }

        // The pending ones, in input order, packed to the front; the latest timestamp of the signalled ones.
        long timestamp = 0;
        Fence? a = PendingOrNull(f0, ref timestamp);
        Fence? b = PendingOrNull(f1, ref timestamp);
        Fence? c = PendingOrNull(f2, ref timestamp);
        if (b is null)
        {
            (b, c) = (c, null);
        }

        if (a is null)
        {
            (a, b, c) = (b, c, null);
        }

        if (a is null)
        {
            return Fence.CreateSignaledStubNs(timestamp);
        }

        if (b is null)
        {
            return a;
        }

        // The later point of each context, taken in input order, so the earlier input stays on a tie. PERF: this
        // repeats MergeTwoPlain's two-fence tail on purpose: sharing it as an inlined helper (four copies of the
        // array construction in this method) measured 1.07-1.13 on the merge rows, paired (MergeSmallBenchmarks).
        if (a.Context == b.Context)
        {
            a = Fence.IsLater(b, a) ? b : a;
            if (c is null)
            {
                return a;
            }

            if (c.Context == a.Context)
            {
                return Fence.IsLater(c, a) ? c : a;
            }

            (b, c) = (c, null);
        }
        else if (c is not null)
        {
            if (c.Context == a.Context)
            {
                a = Fence.IsLater(c, a) ? c : a;
                c = null;
            }
            else if (c.Context == b.Context)
            {
                b = Fence.IsLater(c, b) ? c : b;
                c = null;
            }
        }

        // Ascending contexts, as the general path's sort leaves them.
        if (a.Context > b.Context)
        {
            (a, b) = (b, a);
        }

        if (c is null)
        {
            return FenceArray.Own(a, b);
        }

        if (b.Context > c.Context)
        {
            (b, c) = (c, b);
            if (a.Context > b.Context)
            {
                (a, b) = (b, a);
            }
        }

        return FenceArray.Own(a, b, c);
    }

    /// <summary>The two-input case of <see cref="TryMergeTwoOrThreePlain"/>, the most common merge.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Fence MergeTwoPlain(Fence f0, Fence f1)
    {
        long timestamp = 0;
        Fence? a = PendingOrNull(f0, ref timestamp);
        Fence? b = PendingOrNull(f1, ref timestamp);
        if (a is null || b is null)
        {
            return a ?? b ?? Fence.CreateSignaledStubNs(timestamp);
        }

        if (a.Context == b.Context)
        {
            return Fence.IsLater(b, a) ? b : a; // the earlier input on a tie
        }

        return a.Context < b.Context ? FenceArray.Own(a, b) : FenceArray.Own(b, a);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsPlainLeaf(Fence? f) => f is not (null or FenceArray or FenceChain);

    /// <summary><paramref name="f"/> while it is pending; null once it has signalled, its timestamp then
    /// folded into <paramref name="timestamp"/> (the latest).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Fence? PendingOrNull(Fence f, ref long timestamp)
    {
        if (!f.Poll())
        {
            return f;
        }

        timestamp = Math.Max(timestamp, f.TimestampNs);
        return null;
    }

    /// <summary>Orders fences of distinct contexts by context.</summary>
    private static void InsertionSortByContext(Span<Fence> fences)
    {
        for (int k = 1; k < fences.Length; k++)
        {
            Fence item = fences[k];
            int j = k - 1;
            while (j >= 0 && fences[j].Context > item.Context)
            {
                fences[j + 1] = fences[j];
                j--;
            }

            fences[j + 1] = item;
        }
    }

    /// <summary>Adds a pending leaf to the scratch buffer (growing it from the pool), or folds a signalled
    /// one's time into <paramref name="timestamp"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Collect(Fence leaf, ref Span<Fence> scratch, ref Fence[]? rented, ref int n, ref long timestamp, int inputsLeft)
    {
        if (leaf.Poll())
        {
            timestamp = Math.Max(timestamp, leaf.TimestampNs);
            return;
        }

        if (n == scratch.Length)
        {
            Grow(ref scratch, ref rented, n + inputsLeft);
        }

        scratch[n++] = leaf;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Grow(ref Span<Fence> scratch, ref Fence[]? rented, int atLeast)
    {
        Fence[] larger = ArrayPool<Fence>.Shared.Rent(Math.Max(atLeast, scratch.Length * 2));
        scratch.CopyTo(larger);
        if (rented is not null)
        {
            Array.Clear(rented);
            ArrayPool<Fence>.Shared.Return(rented);
        }

        rented = larger;
        scratch = larger;
    }

    /// <summary>
    /// Sorts <paramref name="fences"/> by context (ascending) with the latest fence of each context
    /// (<see cref="Fence.IsLater"/>) first, then keeps only that latest fence of each context at the
    /// front. Mirrors <c>dma_fence_dedup_array</c>.
    /// </summary>
    /// <returns>The number of fences kept; they occupy the start of the span.</returns>
    public static int Dedup(Span<Fence> fences)
    {
        if (fences.Length <= 1)
        {
            return fences.Length;
        }

        // PERF: MemoryExtensions.Sort boxes the comparer and wraps it in a delegate (88 bytes); the few
        // fences of a typical merge use an allocation-free insertion sort instead (the zero-allocation
        // merge test pins it), and large sets the library's O(n log n) introsort.
        if (fences.Length <= InlineCapacity)
        {
            InsertionSort(fences);
        }
        else
        {
            int distinct = DedupFewContexts(fences);
            if (distinct > 0)
            {
                return distinct;
            }

            SortLargeByContextLatestFirst(fences);
        }

        int kept = 0;
        for (int i = 1; i < fences.Length; i++)
        {
            if (fences[i].Context != fences[kept].Context)
            {
                fences[++kept] = fences[i];
            }
        }

        return kept + 1;
    }

    /// <summary>
    /// Dedup of a large set that spans few contexts (the usual shape: many points of a few timelines)
    /// without sorting it: one pass keeps, per context, the index of its latest fence in a table of up to
    /// <see cref="TableCapacity"/> contexts; the survivors are then ordered by context at the front.
    /// </summary>
    /// <returns>The number kept, or 0 when the set has more contexts than the table holds (nothing was
    /// moved; the caller sorts instead).</returns>
    /// <remarks>PERF: MergeLargeBenchmarks (1,024 fences over 32 contexts): sorting, even on primitive
    /// keys, was slower than a LINQ group-by; the table pass is a few compares per fence.</remarks>
    private static int DedupFewContexts(Span<Fence> fences)
    {
        Span<ulong> contexts = stackalloc ulong[TableCapacity];
        contexts.Fill(ulong.MaxValue); // padding for the four-wide scan; a match past the end means "not found"
        Span<int> latest = stackalloc int[TableCapacity];
        int distinct = 0;
        for (int i = 0; i < fences.Length; i++)
        {
            ulong context = fences[i].Context;
            int at = IndexOfContext(contexts, distinct, context);
            if (at >= 0)
            {
                if (Fence.IsLater(fences[i], fences[latest[at]]))
                {
                    latest[at] = i;
                }
            }
            else if (distinct == TableCapacity)
            {
                return 0;
            }
            else
            {
                contexts[distinct] = context;
                latest[distinct++] = i;
            }
        }

        // Survivors to a stack buffer, then back to the front in context order (insertion sort on the
        // few kept; contexts are distinct, so the order is total).
        TableFences kept = default;
        for (int k = 0; k < distinct; k++)
        {
            kept[k] = fences[latest[k]];
        }

        ((Span<Fence>)kept)[..distinct].CopyTo(fences);
        InsertionSortByContext(fences[..distinct]);
        return distinct;
    }

    /// <summary>
    /// The index of <paramref name="context"/> among the first <paramref name="distinct"/> entries of the
    /// table, or -1. The table is padded with <see cref="ulong.MaxValue"/> to its capacity (a multiple of
    /// four), so the vector scan reads whole blocks; a hit in the padding is not a hit.
    /// </summary>
    /// <remarks>PERF: MergeLargeBenchmarks' ContextTable rows, 1,024 fences over 32 contexts: the
    /// Vector256 scan took 0.58x the time of the scalar loop (AMD EPYC); span IndexOf pays its length
    /// handling on every call.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int IndexOfContext(Span<ulong> table, int distinct, ulong context)
    {
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<ulong> key = Vector256.Create(context);
            ref ulong start = ref MemoryMarshal.GetReference(table);
            for (int i = 0; i < distinct; i += Vector256<ulong>.Count)
            {
                uint mask = Vector256.Equals(Vector256.LoadUnsafe(ref start, (nuint)i), key).ExtractMostSignificantBits();
                if (mask != 0)
                {
                    int at = i + BitOperations.TrailingZeroCount(mask);
                    return at < distinct ? at : -1;
                }
            }

            return -1;
        }

        return table[..distinct].IndexOf(context);
    }

    /// <summary>
    /// Orders a large set by context (ascending) with the latest fence of each context first; the order
    /// of the other fences within a context is left unspecified, since <see cref="Dedup"/> drops them.
    /// </summary>
    /// <remarks>PERF: the contexts are copied out and sorted as primitive keys, the fences moving with
    /// them (<c>MemoryExtensions.Sort(keys, items)</c>), then one pass per context run moves its latest
    /// fence to the front. Sorting the fences with the kernel's comparer dereferenced two fences per
    /// compare and cost several times more (MergeLargeBenchmarks: 1,024 fences over 32 contexts).</remarks>
    private static void SortLargeByContextLatestFirst(Span<Fence> fences)
    {
        ulong[] rented = ArrayPool<ulong>.Shared.Rent(fences.Length);
        try
        {
            Span<ulong> keys = rented.AsSpan(0, fences.Length);
            for (int i = 0; i < fences.Length; i++)
            {
                keys[i] = fences[i].Context;
            }

            keys.Sort(fences);
            for (int start = 0; start < fences.Length;)
            {
                int latest = start;
                int end = start + 1;
                for (; end < fences.Length && keys[end] == keys[start]; end++)
                {
                    if (Fence.IsLater(fences[end], fences[latest]))
                    {
                        latest = end;
                    }
                }

                (fences[start], fences[latest]) = (fences[latest], fences[start]);
                start = end;
            }
        }
        finally
        {
            ArrayPool<ulong>.Shared.Return(rented);
        }
    }

    private static void InsertionSort(Span<Fence> fences)
    {
        var comparer = default(ContextThenLatestFirst);
        for (int i = 1; i < fences.Length; i++)
        {
            Fence item = fences[i];
            int j = i - 1;
            while (j >= 0 && comparer.Compare(fences[j], item) > 0)
            {
                fences[j + 1] = fences[j];
                j--;
            }

            fences[j + 1] = item;
        }
    }

    /// <summary>The kernel's <c>fence_cmp</c>: context ascending, then the later fence first.</summary>
    private readonly struct ContextThenLatestFirst : IComparer<Fence>
    {
        public int Compare(Fence? x, Fence? y)
        {
            Debug.Assert(x is not null && y is not null, "dedup sorts non-null fences");
            if (x.Context != y.Context)
            {
                return x.Context < y.Context ? -1 : 1;
            }

            if (ReferenceEquals(x, y))
            {
                return 0;
            }

            return Fence.IsLater(y, x) ? 1 : Fence.IsLater(x, y) ? -1 : 0;
        }
    }

    /// <summary>Contexts <see cref="DedupFewContexts"/> tracks before it gives way to sorting.</summary>
    private const int TableCapacity = 64;

    /// <summary>A stack buffer for the survivors of <see cref="DedupFewContexts"/>.</summary>
    [InlineArray(TableCapacity)]
    private struct TableFences
    {
        private Fence _element;
    }

    /// <summary>A stack buffer for a few fences.</summary>
    [InlineArray(InlineCapacity)]
    private struct InlineFences
    {
        private Fence _element;
    }

    /// <summary>The result of <see cref="ForEach"/>: a struct so <c>foreach</c> allocates nothing.</summary>
    public readonly struct Enumerable(Fence? head)
    {
        /// <summary>Returns the enumerator.</summary>
        public Enumerator GetEnumerator() => new(head);
    }

    /// <summary>The unwrap cursor (the kernel's <c>struct dma_fence_unwrap</c>: chain, array, index).</summary>
    public struct Enumerator
    {
        private Fence? _chain;
        private Fence? _array;
        private Fence? _current;
        private int _index;
        private bool _started;

        internal Enumerator(Fence? head)
        {
            _chain = head;
            _array = null;
            _current = null;
            _index = 0;
            _started = false;
        }

        /// <summary>The current leaf.</summary>
        public readonly Fence Current
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            get => _current!;
        }

        /// <summary>Advances to the next leaf.</summary>
        public bool MoveNext()
        {
            if (!_started)
            {
                _started = true;
                _current = EnterNode();
            }
            else if (_current is not null)
            {
                // Next member of the current array, else the next older unsignalled chain node.
                _index++;
                _current = FenceArray.Next(_array, _index);
                if (_current is null)
                {
                    _chain = FenceChain.Walk(_chain);
                    _current = EnterNode();
                }
            }

            return _current is not null;
        }

        private Fence? EnterNode()
        {
            _array = FenceChain.Contained(_chain);
            _index = 0;
            Debug.Assert(_array is not FenceChain, "a chain never contains a chain");
            return FenceArray.First(_array);
        }
    }
}
