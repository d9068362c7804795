namespace FenceCore.Tests.Containers;

/// <summary>The kernel's <c>fence_chains_init</c>: n mock fences and n chain nodes, each node's prev the
/// one before, with signalling enabled on every node.</summary>
internal sealed class ChainFixture
{
    public ChainFixture(int count, Func<int, ulong> seqno, bool enableAll = true)
    {
        Fences = new FenceSource[count];
        Chains = new FenceChain[count];
        ulong context = FenceContext.Allocate();
        for (int i = 0; i < count; i++)
        {
            Fences[i] = new FenceSource(context, (ulong)i + 1);
            Chains[i] = new FenceChain(i > 0 ? Chains[i - 1] : null, Fences[i], seqno(i));
            if (enableAll)
            {
                Chains[i].EnableSignaling();
            }
        }
    }

    public FenceSource[] Fences { get; }
    public FenceChain[] Chains { get; }
    public FenceChain Tail => Chains[^1];

    public static ulong SeqnoInc(int i) => (ulong)i + 1;
    public static ulong SeqnoInc2(int i) => (2 * (ulong)i) + 2;
}
