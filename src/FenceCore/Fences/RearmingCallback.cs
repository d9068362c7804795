namespace FenceCore;

/// <summary>
/// One callback node that waits for a walk of fences one at a time: it is registered on the first fence of
/// the walk that has not signalled, and when that one signals, the subclass continues the walk from there,
/// until none is left. The kernel's pattern of a callback that re-adds itself (<c>dma_fence_chain_cb</c>,
/// <c>drm_sched_entity_wakeup</c>): waiting on N fences allocates one node, not N.
/// </summary>
/// <remarks>
/// For embedders too (a waiter on several fences that must not allocate per fence). Used by
/// <see cref="FenceChain"/> (the walk from the chain's head), the virtual GPU's dependency waiter
/// (a job's dependencies in order) and its CPU access (the buffer's wait fence, read again each time).
/// The walk is never run by two threads at once: it starts from one call and continues only from this
/// node's own invocation, after the fence it was registered on has signalled. <see cref="ArmedOn"/> is
/// written by the thread running the walk before each registration and read by <see cref="Unlink"/>,
/// which may run on another thread (an abandoned wait); Volatile reads and writes.
/// </remarks>
public abstract class RearmingCallback : FenceCallback
{
    private Fence? _armedOn;

    /// <summary>Creates an idle node.</summary>
    protected RearmingCallback()
    {
    }

    /// <summary>The fence this node was last registered on, or null when the walk ended.</summary>
    protected Fence? ArmedOn => Volatile.Read(ref _armedOn);

    /// <summary>The walk's next fence, moving the walk past it; null when the walk is over.</summary>
    protected abstract Fence? NextInWalk();

    /// <summary>Registers this node on the next fence of the walk that has not signalled; true when it did
    /// (the node runs when that fence signals), false when every remaining fence had signalled.</summary>
    protected bool ArmOnNext()
    {
        for (Fence? fence = NextInWalk(); fence is not null; fence = NextInWalk())
        {
            Volatile.Write(ref _armedOn, fence);
            if (fence.AddCallback(this))
            {
                return true;
            }
        }

        Volatile.Write(ref _armedOn, null);
        return false;
    }

    /// <summary>Takes the node off the fence it is registered on, if any (an abandoned wait).</summary>
    protected void Unlink()
    {
        Volatile.Read(ref _armedOn)?.RemoveCallback(this);
        Volatile.Write(ref _armedOn, null);
    }
}
