using System.Diagnostics;
using static FenceCore.Tests.Containers.StDmaFenceUnwrapTests;

namespace FenceCore.Tests.Containers;

/// <summary>Unwrap and merge beyond the kernel self-tests: edge cases, allocation, large unsorted inputs.</summary>
public class FenceUnwrapTests
{
    [Fact]
    public void ForEach_NullYieldsNothing() => Assert.Empty(Unwrap(null));

    [Fact]
    public void ForEach_PlainFenceYieldsItselfOnce()
    {
        var f = Mock();

        var leaves = Unwrap(f);

        Assert.Equal([f], leaves);
    }

    [Fact]
    public void ForEach_ChainOfArraysAndLeavesYieldsEveryLeafNewestNodeFirst()
    {
        ulong ctx = FenceContext.Allocate();
        FenceSource a = Mock(), b = Mock(), c = Mock(ctx, 1), d = Mock();
        var n1 = new FenceChain(null, c, 1);
        var n2 = new FenceChain(n1, MockArray(a, b), 2);
        var n3 = new FenceChain(n2, d, 3);

        var leaves = Unwrap(n3);

        Assert.Equal([d, a, b, c], leaves);
    }

    [Fact]
    public void ForEach_SkipsCollectedChainNodes()
    {
        FenceSource a = Mock(), b = Mock(), c = Mock();
        var head = new FenceChain(new FenceChain(new FenceChain(null, a, 1), b, 2), c, 3);
        b.Signal();

        var leaves = Unwrap(head);

        Assert.Equal([c, a], leaves);
    }

    [Fact]
    public void ForEach_OverChainAndArrayAllocatesNothing()
    {
        Fence a = Mock(), b = Mock(), c = Mock();
        var head = new FenceChain(new FenceChain(null, MockArray(a, b), 1), c, 2);
        static int Count(Fence h)
        {
            int n = 0;
            foreach (Fence _ in FenceUnwrap.ForEach(h))
            {
                n++;
            }

            return n;
        }

        Count(head);
        long before = GC.GetAllocatedBytesForCurrentThread();
        int n = Count(head);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal((3, 0L), (n, allocated));
    }

    [Fact]
    public void Nesting_ArrayOfArraysIsRejected() =>
        Assert.Throws<ArgumentException>(() => MockArray(MockArray(Mock())));

    [Fact]
    public void Nesting_ArrayOfChainsIsRejected() =>
        Assert.Throws<ArgumentException>(() => MockArray(MockChain(null, Mock())));

    [Fact]
    public void Nesting_ChainContainingChainIsRejected() =>
        Assert.Throws<ArgumentException>(() => MockChain(null, MockChain(null, Mock())));

    [Fact]
    public void Merge_AllSignalledGivesNewStubWithLatestTimestamp()
    {
        FenceSource f1 = Mock(), f2 = Mock();
        f1.SignalWithTimestamp(TimeSpan.FromTicks(100));
        f2.SignalWithTimestamp(TimeSpan.FromTicks(250));

        Fence merged = FenceUnwrap.Merge(f1, f2);

        Assert.True(merged.IsSignaled);
        Assert.Equal(TimeSpan.FromTicks(250), merged.Timestamp);
        Assert.Equal(FenceContext.Stub, merged.Context);
        Assert.NotSame(f1, merged);
        Assert.NotSame(f2, merged);
    }

    [Fact]
    public void Merge_ExpiredFenceWithItselfStaysSignalledAndDoesNotGrow()
    {
        var f = Mock();
        f.SignalWithTimestamp(TimeSpan.FromTicks(42));

        Fence merged = FenceUnwrap.Merge(f, f);

        Assert.True(merged.IsSignaled);
        Assert.Equal(TimeSpan.FromTicks(42), merged.Timestamp);
        Assert.IsNotType<FenceArray>(merged);
    }

    [Fact]
    public void Merge_SignalledLeavesAreDroppedAndThePendingOneReturnedAsIs()
    {
        FenceSource done = Mock(), pending = Mock();
        done.Signal();

        Fence merged = FenceUnwrap.Merge(done, pending, Fence.Stub);

        Assert.Same(pending, merged);
    }

    [Fact]
    public void Merge_OlderPointOfTheSameContextCollapsesToTheLater()
    {
        ulong ctx = FenceContext.Allocate();
        Fence older = Mock(ctx, 3), later = Mock(ctx, 9);

        Fence merged = FenceUnwrap.Merge(older, later);

        Assert.Same(later, merged);
    }

    [Fact]
    public void Merge_ResultArrayHasNewContextSeqnoOneAndWaitsForAll()
    {
        FenceSource f1 = Mock(), f2 = Mock();

        var merged = Assert.IsType<FenceArray>(FenceUnwrap.Merge(f1, f2));

        Assert.NotEqual(f1.Context, merged.Context);
        Assert.NotEqual(f2.Context, merged.Context);
        Assert.Equal(1ul, merged.Seqno);
        Assert.False(merged.SignalOnAny);
    }

    [Fact]
    public void Merge_StubAloneGivesASignalledFence()
    {
        Fence merged = FenceUnwrap.Merge(Fence.Stub);

        Assert.True(merged.IsSignaled);
    }

    [Fact]
    public void Merge_NullInputIsRejected() =>
        Assert.Throws<ArgumentNullException>(() => FenceUnwrap.Merge(Mock(), null!));

    [Fact]
    public void Merge_TwoOrThreeFencesResolvingToOneAllocateNothing()
    {
        ulong ctx = FenceContext.Allocate();
        FenceSource f1 = Mock(ctx, 1), f2 = Mock(ctx, 2), done = Mock();
        done.Signal();
        FenceUnwrap.Merge(f1, f1);
        FenceUnwrap.Merge(f1, f2, done);

        long before = GC.GetAllocatedBytesForCurrentThread();
        Fence same = FenceUnwrap.Merge(f1, f1);
        Fence later = FenceUnwrap.Merge(f1, f2, done);
        Fence single = FenceUnwrap.Merge(f2, done);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
        Assert.Same(f1, same);
        Assert.Same(f2, later);
        Assert.Same(f2, single);
    }

    [Fact]
    public void Merge_UnsortedThousandsKeepLatestPerContextSortedByContext()
    {
        const int contexts = 512, perContext = 12; // 6144 fences
        ulong first = FenceContext.Allocate(contexts);
        var rnd = new Random(6144);
        var all = new List<Fence>();
        for (int c = 0; c < contexts; c++)
        {
            for (int s = 1; s <= perContext; s++)
            {
                all.Add(Mock(first + (ulong)c, (ulong)rnd.Next(1, 1000)));
            }
        }

        Fence[] input = all.ToArray();
        rnd.Shuffle(input);
        var expected = input.GroupBy(f => f.Context).OrderBy(g => g.Key)
            .Select(g => g.Max(f => f.Seqno)).ToArray();

        var merged = Assert.IsType<FenceArray>(FenceUnwrap.Merge(input));

        Assert.Equal(contexts, merged.Count);
        Assert.Equal(expected, merged.Fences.ToArray().Select(f => f.Seqno));
        Assert.True(merged.Fences.ToArray().Select(f => f.Context).SequenceEqual(expected.Select((_, i) => first + (ulong)i)));
    }

    /// <summary>An O(n²) merge of 65536 fences would make about two billion comparisons (many seconds);
    /// O(n log n) needs about a million (milliseconds). The bound sits between the two with wide margins.</summary>
    [Fact]
    public void Merge_LargeUnsortedInputMergesInNLogN()
    {
        const int n = 65536;
        ulong first = FenceContext.Allocate(n / 4);
        var rnd = new Random(n);
        var input = new Fence[n];
        for (int i = 0; i < n; i++)
        {
            input[i] = Mock(first + (ulong)rnd.Next(0, n / 4), (ulong)rnd.Next(1, 100_000));
        }

        FenceUnwrap.Merge(input.AsSpan(0, 64));
        var clock = Stopwatch.StartNew();
        Fence merged = FenceUnwrap.Merge(input);
        clock.Stop();

        Assert.Equal(input.Select(f => f.Context).Distinct().Count(), Assert.IsType<FenceArray>(merged).Count);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1.5), $"merging {n} fences took {clock.Elapsed}");
    }

    [Fact]
    public void Merge_EveryLeafOfAChainIsFlattenedIntoTheResult()
    {
        Fence a = Mock(), b = Mock(), c = Mock();
        var chain = new FenceChain(new FenceChain(null, a, 1), MockArray(b, c), 2);

        var merged = Assert.IsType<FenceArray>(FenceUnwrap.Merge(chain));

        Assert.Equal(new[] { a, b, c }.OrderBy(f => f.Context), merged.Fences.ToArray());
    }

    [Fact]
    public void Dedup_SortsByContextAndKeepsTheLatestOfEach()
    {
        ulong c0 = FenceContext.Allocate(), c1 = FenceContext.Allocate();
        Fence a1 = Mock(c1, 1), a5 = Mock(c1, 5), b2 = Mock(c0, 2), b1 = Mock(c0, 1);
        Fence[] fences = [a1, b1, a5, b2, a1];

        int kept = FenceUnwrap.Dedup(fences);

        Assert.Equal([b2, a5], fences[..kept]);
    }

    [Fact]
    public void Dedup_HonoursThirtyTwoBitWrapOfLegacyFences()
    {
        ulong ctx = FenceContext.Allocate();
        Fence beforeWrap = Mock(ctx, 0xFFFF_FFF0), afterWrap = Mock(ctx, 0x10);
        Fence[] fences = [beforeWrap, afterWrap];

        int kept = FenceUnwrap.Dedup(fences);

        Assert.Equal(1, kept);
        Assert.Same(afterWrap, fences[0]);
    }

    [Fact]
    public void Dedup_LargeSet_KeepsTheLatestOfEachContextInContextOrder()
    {
        ulong c0 = FenceContext.Allocate(), c1 = FenceContext.Allocate(), c2 = FenceContext.Allocate();
        var fences = new List<Fence>();
        for (ulong p = 1; p <= 6; p++)
        {
            fences.Add(Mock(c2, p));
            fences.Add(Mock(c0, p));
        }

        Fence beforeWrap = Mock(c1, 0xFFFF_FFF0), afterWrap = Mock(c1, 0x10);
        fences.AddRange([beforeWrap, afterWrap, beforeWrap]);
        Fence[] set = [.. fences];
        new Random(7).Shuffle(set);

        int kept = FenceUnwrap.Dedup(set);

        Assert.Equal(3, kept);
        Assert.Equal([(c0, 6UL), (c1, 0x10UL), (c2, 6UL)], set[..kept].Select(f => (f.Context, f.Seqno)));
        Assert.Same(afterWrap, set[1]);
    }

    [Fact]
    public void Dedup_SetWithMoreContextsThanTheTable_StillKeepsTheLatestOfEach()
    {
        ulong first = FenceContext.Allocate(70);
        var fences = new List<Fence>();
        for (ulong c = 0; c < 70; c++)
        {
            fences.Add(Mock(first + c, 2));
            fences.Add(Mock(first + c, 1));
        }

        Fence[] set = [.. fences];
        new Random(11).Shuffle(set);

        int kept = FenceUnwrap.Dedup(set);

        Assert.Equal(70, kept);
        Assert.All(set[..kept], f => Assert.Equal(2UL, f.Seqno));
        Assert.Equal(set[..kept].Select(f => f.Context).Order(), set[..kept].Select(f => f.Context));
    }

    /// <summary>The large-set dedup scans a context table padded with <see cref="ulong.MaxValue"/>: a real
    /// context of that value must still be found and kept once, with its latest point.</summary>
    [Fact]
    public void Merge_ManyFences_WithTheLargestPossibleContext_KeepsItsLatestPointOnce()
    {
        var inputs = new List<FenceSource>();
        ulong first = FenceContext.Allocate(5);
        for (ulong p = 1; p <= 3; p++)
        {
            inputs.Add(new FenceSource(ulong.MaxValue, p, FenceOptions.Seqno64));
            for (ulong c = 0; c < 5; c++)
            {
                inputs.Add(new FenceSource(first + c, p));
            }
        }

        Fence merged = FenceUnwrap.Merge([.. inputs.AsEnumerable().Reverse()]);
        var leaves = Unwrap(merged);
        Assert.Equal(6, leaves.Count);
        Assert.Equal([first, first + 1, first + 2, first + 3, first + 4, ulong.MaxValue], leaves.Select(f => f.Context));
        Assert.All(leaves, f => Assert.Equal(3UL, f.Seqno));

        // The same fences inside arrays take the general path (collect, then the table dedup).
        var viaArrays = Unwrap(FenceUnwrap.Merge(new FenceArray([.. inputs.Take(9)]), new FenceArray([.. inputs.Skip(9)])));
        Assert.Equal(leaves.Select(f => (f.Context, f.Seqno)), viaArrays.Select(f => (f.Context, f.Seqno)));
        foreach (FenceSource f in inputs)
        {
            f.Signal();
        }
    }

    /// <summary>
    /// Every merge of two and of three plain fences over three contexts, two seqnos and both states, each input
    /// a fence object of its own (so equal points of one context are distinct objects), against a model: the
    /// pending ones, the latest of each context with the earlier input kept on a tie, ordered by context; when
    /// none is pending, a signalled stub with the latest timestamp. The two- and three-input merge has code of
    /// its own (MergeSmallBenchmarks), so it gets every case, not samples.
    /// </summary>
    [Fact]
    public void MergeOfTwoOrThreePlainFences_AgreesWithTheModel_InEveryCase()
    {
        ulong first = FenceContext.Allocate(3);
        int cases = 0;
        foreach (int n in new[] { 2, 3 })
        {
            int options = 12; // context 0-2, seqno 1-2, pending or signalled
            int total = n == 2 ? options * options : options * options * options;
            for (int code = 0; code < total; code++)
            {
                var inputs = new FenceSource[n];
                int rest = code;
                for (int i = 0; i < n; i++)
                {
                    int option = rest % options;
                    rest /= options;
                    inputs[i] = new FenceSource(first + (ulong)(option % 3), (ulong)(1 + (option / 3 % 2)));
                    if (option >= 6)
                    {
                        inputs[i].SignalWithTimestamp(TimeSpan.FromTicks(100 + (7 * i)));
                    }
                }

                var latest = new List<Fence>();
                foreach (FenceSource f in inputs)
                {
                    if (f.IsSignaled)
                    {
                        continue;
                    }

                    int at = latest.FindIndex(g => g.Context == f.Context);
                    if (at < 0)
                    {
                        latest.Add(f);
                    }
                    else if (f.Seqno > latest[at].Seqno)
                    {
                        latest[at] = f;
                    }
                }

                latest.Sort((x, y) => x.Context.CompareTo(y.Context));
                Fence merged = n == 2 ? FenceUnwrap.Merge(inputs[0], inputs[1]) : FenceUnwrap.Merge(inputs[0], inputs[1], inputs[2]);
                string shape = string.Join(" ", inputs.Select(f => $"c{f.Context - first}:{f.Seqno}{(f.IsSignaled ? "s" : "")}"));
                if (latest.Count == 0)
                {
                    Assert.True(merged.IsSignaled, shape);
                    Assert.Equal(inputs.Max(f => f.Timestamp), merged.Timestamp);
                }
                else if (latest.Count == 1)
                {
                    Assert.True(ReferenceEquals(latest[0], merged), $"{shape}: not the one fence left");
                }
                else
                {
                    FenceArray array = Assert.IsType<FenceArray>(merged);
                    Assert.True(latest.SequenceEqual(array.Fences.ToArray()), $"{shape}: wrong members or order");
                }

                cases++;
            }
        }

        Assert.Equal((12 * 12) + (12 * 12 * 12), cases);
    }
}
