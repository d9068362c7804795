namespace FenceCore;

/// <summary>Placeholder until the chain lands: lets the array's nesting check name the type.</summary>
public sealed class FenceChain : Fence
{
    private FenceChain()
        : base(0, 0)
    {
    }
}
