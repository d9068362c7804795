using Microsoft.Coyote.Specifications;
using Xunit.Abstractions;

namespace FenceCore.Coyote.Containers;

/// <summary>
/// FenceChain's walk and garbage collection (CAS on the previous link) against FindSeqno against
/// signalling (one re-armed callback per node). Invariants: a find never returns a fence whose signal
/// does not complete the point, nor one that waits for anything after the point; it never fails for a
/// submitted point and always fails for one not yet submitted; null only once the point has completed;
/// a node signals exactly once and only when its own and every older contained fence have; the
/// collection never unlinks a node whose contained fence is pending.
/// </summary>
public sealed class FenceChainTests(ITestOutputHelper output)
{
    /// <summary>A timeline: a plain fence at index 0 (the start of the timeline, not a chain node), then
    /// points 1..n, each a chain node over the previous one. The head is published as nodes are appended.</summary>
    private sealed class Timeline
    {
        private FenceChain _head;

        public Timeline(int built, int total)
        {
            ulong ctx = FenceContext.Allocate();
            Points = new FenceSource[total + 1];
            for (int i = 0; i <= total; i++)
            {
                Points[i] = new FenceSource(ctx, (ulong)i);
            }

            Nodes = new FenceChain[total + 1];
            Fence prev = Points[0];
            for (int i = 1; i <= built; i++)
            {
                prev = Nodes[i] = new FenceChain(prev, Points[i], (ulong)i);
            }

            _head = Nodes[built];
        }

        /// <summary>Index = point; [0] is the plain fence the timeline starts on.</summary>
        public FenceSource[] Points { get; }

        /// <summary>Index = point; [0] unused; null until appended.</summary>
        public FenceChain[] Nodes { get; }

        public FenceChain Head => Volatile.Read(ref _head);

        public void Append(int point)
        {
            FenceChain node = new(Nodes[point - 1], Points[point], (ulong)point);
            Nodes[point] = node;
            Volatile.Write(ref _head, node);
        }

        /// <summary>True when the contained fences from <paramref name="from"/> to <paramref name="to"/> have all signalled.</summary>
        public bool Signalled(int from, int to)
        {
            for (int i = from; i <= to; i++)
            {
                if (!Points[i].IsSignaled)
                {
                    return false;
                }
            }

            return true;
        }

        /// <summary>
        /// Follows the raw previous links from the head (no walk, so no collection) and asserts that
        /// every point behind the head that was not reached has a signalled contained fence. Sound while
        /// collection runs concurrently: a node pending after the traversal was pending throughout it,
        /// and a link only ever skips signalled nodes, so the traversal must have passed through it.
        /// </summary>
        public void AssertNoPendingNodeUnlinked()
        {
            FenceChain head = Head;
            var reached = new bool[Points.Length];
            for (Fence? f = head; f is not null; f = (f as FenceChain)?.Previous)
            {
                reached[f is FenceChain c ? (int)c.Seqno : 0] = true;
            }

            for (int i = 0; i < (int)head.Seqno; i++)
            {
                Specification.Assert(reached[i] || Points[i].IsSignaled,
                    "point {0} is pending but was unlinked from the timeline (head {1})", i, head.Seqno);
            }
        }
    }

    /// <summary>A callback on a node (or a found fence) that counts its runs and checks, when it runs,
    /// that everything up to <see cref="_upTo"/> has signalled.</summary>
    private sealed class Watch(Timeline timeline, int upTo, string what)
    {
        private readonly int _upTo = upTo;
        private int _runs;
        private int _early;

        public int Runs => Volatile.Read(ref _runs);

        public void Attach(Fence fence)
        {
            if (fence.AddCallback(_ => Record()) is null)
            {
                Specification.Assert(fence.IsSignaled, "AddCallback refused on a pending fence ({0})", what);
                Record();
            }
        }

        public void AssertRanOnceAndNotEarly()
        {
            Specification.Assert(Runs == 1, "{0}: callback ran {1} times", what, Runs);
            Specification.Assert(Volatile.Read(ref _early) == 0, "{0} signalled before every fence up to {1} had", what, _upTo);
        }

        private void Record()
        {
            if (!timeline.Signalled(0, _upTo))
            {
                Volatile.Write(ref _early, 1);
            }

            Interlocked.Increment(ref _runs);
        }
    }

    /// <summary>Finds point <paramref name="point"/> from the current head and checks the answer; watches
    /// what it found so its signal is checked to complete the point.</summary>
    private static Watch? FindAndCheck(Timeline t, int point)
    {
        FenceChain head = t.Head;
        bool ok = head.TryFindSeqno((ulong)point, out Fence? found);
        bool submitted = (ulong)point <= head.Seqno;
        Specification.Assert(ok == submitted, "TryFindSeqno({0}) on head {1} returned {2}", point, head.Seqno, ok);
        if (!ok)
        {
            return null;
        }

        if (found is null)
        {
            Specification.Assert(t.Signalled(0, point), "FindSeqno({0}) returned null (completed) while a fence up to it is pending", point);
            return null;
        }

        // The fence found covers the point's range: it waits for nothing after the point, and everything
        // between it and the point has already completed (those nodes were collected or skipped).
        int at;
        if (found is FenceChain node)
        {
            Specification.Assert(node.Context == head.Context, "FindSeqno({0}) left the timeline's context", point);
            Specification.Assert(node.PreviousSeqno < (ulong)point && node.Seqno <= (ulong)point,
                "FindSeqno({0}) returned node {1} (range from {2}), which does not cover the point", point, node.Seqno, node.PreviousSeqno);
            at = (int)node.Seqno;
        }
        else
        {
            Specification.Assert(ReferenceEquals(found, t.Points[0]), "FindSeqno({0}) returned a foreign fence", point);
            at = 0;
        }

        Specification.Assert(t.Signalled(at + 1, point), "FindSeqno({0}) returned point {1} but a point between is pending", point, at);
        var watch = new Watch(t, point, $"fence found for point {point}");
        watch.Attach(found);
        return watch;
    }

    [Fact]
    public void FindSeqnoAgainstWalkAndSignal_FindsCoverThePointAndNodesSignalOnceInOrder() => CoyoteHarness.Check(output, async () =>
    {
        var t = new Timeline(built: 3, total: 4);
        var nodeWatches = new List<Watch>();

        // Signallers out of order, so nodes in the middle of the timeline are collected first.
        Task s1 = Task.Run(() =>
        {
            t.Points[2].Signal();
            t.Points[3].Signal();
        });
        Task s2 = Task.Run(() =>
        {
            t.Points[0].Signal();
            t.Points[1].Signal();
        });

        // Enabling signalling on two nodes arms their callbacks (a walk each) while the signals race.
        Task<Watch[]> watcher = Task.Run(() =>
        {
            var w3 = new Watch(t, 3, "node 3");
            w3.Attach(t.Nodes[3]);
            var w2 = new Watch(t, 2, "node 2");
            w2.Attach(t.Nodes[2]);
            return new[] { w3, w2 };
        });

        // Point 4 is submitted concurrently; its fence signals at once.
        Task appender = Task.Run(() =>
        {
            t.Append(4);
            t.Points[4].Signal();
        });

        // A finder asks for every point (4 may not be submitted yet) and checks the GC.
        Task<List<Watch>> finder = Task.Run(() =>
        {
            var found = new List<Watch>();
            for (int p = 1; p <= 4; p++)
            {
                if (FindAndCheck(t, p) is { } w)
                {
                    found.Add(w);
                }
            }

            t.AssertNoPendingNodeUnlinked();
            return found;
        });

        await s1;
        await s2;
        nodeWatches.AddRange(await watcher);
        await appender;
        List<Watch> foundWatches = await finder;
        t.AssertNoPendingNodeUnlinked();

        // Everything has signalled: every node must now signal (a poll for the unwatched ones), and each
        // watch ran exactly once, not early.
        for (int i = 1; i <= 4; i++)
        {
            Specification.Assert(t.Nodes[i].Poll(), "node {0} pending after every fence signalled", i);
        }

        foreach (Watch w in (Watch[])[.. nodeWatches, .. foundWatches])
        {
            w.AssertRanOnceAndNotEarly();
        }
    });

    [Fact]
    public void ConcurrentWalksAndEnables_CollectOnlySignalledNodesAndSignalOnce() => CoyoteHarness.Check(output, async () =>
    {
        var t = new Timeline(built: 4, total: 4);

        // Two walkers collect the same links concurrently while the middle fences signal; a third task
        // enables signalling on the head (its one callback re-arms down the timeline).
        Task signaller = Task.Run(() =>
        {
            t.Points[3].Signal();
            t.Points[2].Signal();
        });
        Task walker1 = Task.Run(() =>
        {
            foreach (Fence _ in FenceChain.ForEach(t.Head))
            {
            }

            t.AssertNoPendingNodeUnlinked();
        });
        Task walker2 = Task.Run(() =>
        {
            Fence? next = FenceChain.Walk(t.Nodes[3]);
            Specification.Assert(next is not null, "the walk from node 3 lost pending node 1 or the start fence");
            Specification.Assert(ReferenceEquals(next, t.Nodes[2]) || ReferenceEquals(next, t.Nodes[1]),
                "the walk from node 3 returned a fence that is not the next pending node");
            t.AssertNoPendingNodeUnlinked();
        });
        var head = new Watch(t, 4, "node 4");
        Task enabler = Task.Run(() => head.Attach(t.Nodes[4]));

        await signaller;
        await walker1;
        await walker2;
        await enabler;

        Specification.Assert(!t.Nodes[4].Poll() && head.Runs == 0, "node 4 signalled while points 0, 1 and 4 are pending");
        t.AssertNoPendingNodeUnlinked();
        t.Points[4].Signal();
        t.Points[1].Signal();
        Specification.Assert(!t.Nodes[4].Poll(), "node 4 signalled while the start fence is pending");
        t.Points[0].Signal();
        head.AssertRanOnceAndNotEarly();
        Specification.Assert(t.Nodes[4].Poll(), "node 4 pending after every fence signalled");
    });
}
