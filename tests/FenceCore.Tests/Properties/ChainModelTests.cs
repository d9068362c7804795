using CsCheck;

namespace FenceCore.Tests.Properties;

/// <summary>
/// <see cref="FenceChain.FindSeqno"/> against the model of <c>dma_fence_chain_find_seqno</c>: point p of a
/// timeline is complete once the contained fences of every node up to the first node at or after p have
/// signalled; the fence returned for p signals exactly then (or is null when the walk already collected
/// everything up to it); a point later than the head is -EINVAL; point 0 is the head itself.
/// </summary>
public class ChainModelTests
{
    /// <summary>0: append a node (seqno gap B, a new leaf, or the leaf of node A again); 1: signal leaf A;
    /// 2: find point A + 1.</summary>
    public readonly record struct ChainOp(int Kind, int A, int B)
    {
        public override string ToString() => Kind switch
        {
            0 => $"append(+{B}{(A % 4 == 0 ? $", leaf of #{A / 4}" : "")})",
            1 => $"signal leaf #{A}",
            _ => $"find p{A + 1}",
        };
    }

    private static readonly Gen<ChainOp> GenOp = Gen.Select(Gen.Int[0, 9], Gen.Int[0, 15], Gen.Int[1, 3],
        (k, a, b) => new ChainOp(k < 4 ? 0 : k < 6 ? 1 : 2, a, b));

    [Fact]
    public void FindSeqno_AgreesWithTheChainModel() =>
        GenOp.Array[1, 30].Sample(ops =>
        {
            ulong leafContext = FenceContext.Allocate();
            var leaves = new List<FenceSource>();
            var nodes = new List<(FenceChain Node, FenceSource Leaf)>();
            foreach (ChainOp op in ops)
            {
                FenceChain? head = nodes.Count == 0 ? null : nodes[^1].Node;
                ulong last = head?.Seqno ?? 0;
                switch (op.Kind)
                {
                    case 0:
                        // Sometimes a node contains the same fence as an earlier one (a resubmitted wait).
                        FenceSource leaf;
                        if (op.A % 4 == 0 && nodes.Count > 0)
                        {
                            leaf = nodes[op.A / 4 % nodes.Count].Leaf;
                        }
                        else
                        {
                            leaf = new FenceSource(leafContext, (ulong)leaves.Count + 1);
                            leaves.Add(leaf);
                        }

                        nodes.Add((new FenceChain(head, leaf, last + (ulong)op.B), leaf));
                        break;
                    case 1 when leaves.Count > 0:
                        leaves[op.A % leaves.Count].Signal();
                        break;
                    case 2 when head is not null:
                        ulong p = (ulong)op.A + 1;
                        bool found = head.TryFindSeqno(p, out Fence? f);
                        Assert.Equal(p <= last, found); // a point after the head is -EINVAL
                        if (!found)
                        {
                            Assert.Throws<ArgumentOutOfRangeException>(() => head.FindSeqno(p));
                            break;
                        }

                        int upTo = nodes.FindIndex(x => x.Node.Seqno >= p);
                        bool done = nodes.Take(upTo + 1).All(x => x.Leaf.IsSignaled);
                        if (f is null)
                        {
                            Assert.True(done, $"find p{p} returned null (collected) for a point that is not complete");
                        }
                        else
                        {
                            // Not necessarily the node at or after p: once the walk has collected signalled
                            // nodes below it, an earlier node whose remaining leaves are p's signals at the same
                            // time (found by this test; dma_fence_chain_find_seqno does the same). What matters is
                            // that it signals exactly when the point is complete.
                            Assert.Contains(nodes, x => ReferenceEquals(x.Node, f));
                            Assert.Equal(done, f.Poll());
                        }

                        Assert.True(head.TryFindSeqno(0, out Fence? self) && ReferenceEquals(self, head));
                        break;
                }

                // The head signals once every leaf of the timeline has.
                if (nodes.Count > 0)
                {
                    Assert.Equal(nodes.All(x => x.Leaf.IsSignaled), nodes[^1].Node.Poll());
                }
            }
        }, iter: PropertyRuns.Iterations, print: ops => string.Join("; ", ops));
}
