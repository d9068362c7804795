using CsCheck;

namespace FenceCore.Tests.Properties;

/// <summary>
/// <c>FenceUnwrap.Merge</c> and unwrap against a model written the way <c>dma-fence-unwrap.c</c> reads:
/// flatten every container into its leaves, drop the signalled ones, keep the latest fence of each
/// context, and return nothing to wait for (a signalled stub), the one fence left, or one array of the
/// rest sorted by context.
/// </summary>
public class MergeModelTests
{
    /// <summary>An input: a leaf (context index, seqno, signalled) or an array of such leaves.</summary>
    public sealed record Input(bool IsArray, (int Context, int Seqno, bool Signalled)[] Leaves)
    {
        public override string ToString() =>
            (IsArray ? "array[" : "") + string.Join(",", Leaves.Select(l => $"c{l.Context}:{l.Seqno}{(l.Signalled ? "s" : "")}")) + (IsArray ? "]" : "");
    }

    private static readonly Gen<(int, int, bool)> GenLeaf = Gen.Select(Gen.Int[0, 4], Gen.Int[1, 6], Gen.Int[0, 3], (c, s, sig) => (c, s, sig == 0));

    private static readonly Gen<Input> GenInput = Gen.Frequency(
        (3, GenLeaf.Select(l => new Input(false, [l]))),
        (1, GenLeaf.Array[1, 4].Select(ls => new Input(true, ls))));

    [Fact]
    public void Merge_AgreesWithTheUnwrapModel() =>
        GenInput.Array[0, 8].Sample(inputs =>
        {
            ulong first = FenceContext.Allocate(5);
            var fences = new Dictionary<(int, int), FenceSource>();
            Fence Leaf((int Context, int Seqno, bool Signalled) l)
            {
                if (!fences.TryGetValue((l.Context, l.Seqno), out FenceSource? f))
                {
                    f = new FenceSource(first + (ulong)l.Context, (ulong)l.Seqno);
                    fences.Add((l.Context, l.Seqno), f);
                }

                if (l.Signalled)
                {
                    f.Signal();
                }

                return f;
            }

            Fence[] built = [.. inputs.Select(i => i.IsArray
                ? new FenceArray([.. i.Leaves.Select(Leaf)], FenceContext.Allocate(), 1, signalOnAny: false)
                : Leaf(i.Leaves[0]))];

            // The model: leaves, unsignalled, the latest per context, by context.
            List<Fence> expected = [.. built.SelectMany(PropertyRuns.Leaves).Where(f => !f.IsSignaled)
                .GroupBy(f => f.Context).Select(g => g.MaxBy(f => f.Seqno)!).OrderBy(f => f.Context)];

            Fence merged = FenceUnwrap.Merge(built);
            if (expected.Count == 0)
            {
                Assert.True(merged.IsSignaled, "nothing left to wait for, but the merge is pending");
            }
            else if (expected.Count == 1)
            {
                Assert.Same(expected[0], merged);
            }
            else
            {
                Assert.IsType<FenceArray>(merged);
                Assert.Equal(expected, PropertyRuns.Leaves(merged)); // same fences, sorted by context
            }
        }, iter: PropertyRuns.Iterations, print: inputs => string.Join(" ", inputs.Select(i => i.ToString())));
}
