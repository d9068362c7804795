namespace FenceCore.Benchmarks.Peers;

/// <summary>
/// Three pending fences on one context whose 32-bit seqnos (1, 1 + 0x55555555, 1 + 0xAAAAAAAA) are
/// each later than the one before under the kernel's wrap-around comparison (<c>__dma_fence_is_later</c>
/// on 32 bits), the third included: 0x55555556 ahead of it comes 1 again. Adding them in turn is an
/// endless same-context replacement that allocates no fence, so an add benchmark measures the add alone.
/// </summary>
internal sealed class WrapCycle
{
    private readonly FenceSource[] _fences;
    private int _next;

    public WrapCycle(ulong context)
    {
        _fences = [new FenceSource(context, 1), new FenceSource(context, 1 + 0x5555_5555UL), new FenceSource(context, 1 + 0xAAAA_AAAAUL)];
        if (!Fence.IsLater(_fences[1], _fences[0]) || !Fence.IsLater(_fences[2], _fences[1]) || !Fence.IsLater(_fences[0], _fences[2]))
        {
            throw new InvalidOperationException("the wrap-around cycle is not monotonic");
        }
    }

    public Fence First => _fences[0];

    /// <summary>The fence after the last one returned (the first call returns the second fence).</summary>
    public Fence Next()
    {
        int k = _next == 2 ? 0 : _next + 1;
        _next = k;
        return _fences[k];
    }

    public void SignalAll()
    {
        foreach (FenceSource f in _fences)
        {
            f.Signal();
        }
    }
}
