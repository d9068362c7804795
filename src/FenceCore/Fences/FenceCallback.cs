namespace FenceCore;

/// <summary>
/// A caller-owned callback node, the analogue of <c>struct dma_fence_cb</c>. Registering one with
/// <see cref="Fence.AddCallback(FenceCallback)"/> allocates nothing.
/// </summary>
/// <remarks>
/// A node is its own list cell: registering it, removing it and registering it again never allocate,
/// however often it is done, and a removed node is unlinked from the fence's list, so a pending fence
/// holds memory only for the callbacks that are live on it.
/// A node is on at most one fence at a time; adding it while it is queued throws. It becomes free again
/// when its callback starts to run (so the callback may re-add it, as the kernel's chain and array code
/// does) or when <see cref="Fence.RemoveCallback"/> returned true.
/// </remarks>
public abstract class FenceCallback
{
    internal const int Free = 0;
    internal const int Queued = 1;

    /// <summary>Taken by a remover that won against the signaller; the cell is the remover's until it
    /// writes <see cref="Free"/>.</summary>
    internal const int Removed = 2;

    /// <summary>A <see cref="Removed"/> cell that the signaller has walked past and will not read again.</summary>
    internal const int Passed = 3;

    /// <summary>The state of the fences' sentinel cells, which are never queued.</summary>
    internal const int Sentinel = -1;

    /// <summary>
    /// The next older cell in the fence's list. Written by the adder before the publishing
    /// compare-and-swap; after that only by a remover unlinking the cell below it, with a
    /// compare-and-swap that expects this cell's successor. The signaller only reads it.
    /// </summary>
    internal FenceCallback? Next;

    /// <summary>
    /// <see cref="Free"/>, <see cref="Queued"/>, <see cref="Removed"/> or <see cref="Passed"/>. Free →
    /// Queued is the adder's claim (one compare-and-swap, so two adds of one node cannot both succeed);
    /// Queued → Free (the signaller claims the cell to run it) and Queued → Removed (a remover) are
    /// compare-and-swaps: exactly one wins, which is what makes "run exactly once or removed, never
    /// both" hold.
    /// </summary>
    internal int State;

    /// <summary>The fence this node is queued on, or null (also for the library's own nodes that are never
    /// removed, which are not told: only <see cref="Fence.RemoveCallback"/> reads it). Written by the adder before
    /// publishing; cleared by the signaller before the callback runs and by the remover before it frees the node.</summary>
    internal Fence? Owner;

    /// <summary>Creates an idle node.</summary>
    protected FenceCallback()
    {
    }

    private protected FenceCallback(int state) => State = state;

    /// <summary>True while this node is on a fence: queued, or being removed. False once its callback has
    /// started to run, and after <see cref="Fence.RemoveCallback"/> returned true.</summary>
    public bool IsQueued => Volatile.Read(ref State) != Free;

    /// <summary>
    /// Called once, on the signalling thread, after the fence has signalled (its status and timestamp
    /// are final). Runs outside any lock. It must not block for long: other callbacks of the same
    /// fence wait behind it, and so does a <see cref="Fence.RemoveCallback"/> that raced the signal.
    /// </summary>
    /// <param name="fence">The fence that signalled.</param>
    protected internal abstract void Invoke(Fence fence);

    /// <summary>Wraps a delegate in a callback node.</summary>
    public static FenceCallback Create(Action<Fence> action)
    {
        ArgumentNullException.ThrowIfNull(action);
        return new DelegateCallback(action);
    }

    private sealed class DelegateCallback(Action<Fence> action) : FenceCallback
    {
        protected internal override void Invoke(Fence fence) => action(fence);
    }
}

/// <summary>
/// What a fence's callback threw, as the default callback-failure policy reports it: rethrown on a
/// thread-pool thread, where it is unhandled (see <see cref="Fence.OnCallbackFailed"/>). The fence had
/// signalled and every other callback ran. The callback's exception is <see cref="Exception.InnerException"/>.
/// </summary>
public sealed class FenceCallbackException : Exception
{
    /// <summary>Creates the exception for the fence and what its callback threw.</summary>
    public FenceCallbackException(Fence fence, Exception innerException)
        : base($"A callback of fence {fence?.Context}:{fence?.Seqno} ({fence?.DriverName} {fence?.TimelineName}) threw, and the fence's owner chose no callback-failure policy; the fence is signalled and every other callback ran.", innerException)
    {
        Fence = fence;
    }

    /// <summary>The fence whose callback threw.</summary>
    public Fence? Fence { get; }
}
