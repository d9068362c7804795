namespace FenceCore;

/// <summary>
/// A caller-owned callback node, the analogue of <c>struct dma_fence_cb</c>. Registering one with
/// <see cref="Fence.AddCallback(FenceCallback)"/> allocates nothing.
/// </summary>
/// <remarks>
/// A node is its own list cell, so registering it allocates nothing; a cell is allocated only when a
/// node is re-added before the fence it was removed from has dropped its old cell.
/// A node is on at most one fence at a time. It becomes free again when its callback starts to run
/// (so the callback may re-add it, as the kernel's chain and array code does) or when
/// <see cref="Fence.RemoveCallback"/> returned true.
/// </remarks>
public abstract class FenceCallback
{
    internal const int Free = 0;
    internal const int Queued = 1;
    internal const int Removed = 2;

    /// <summary>
    /// The next older cell in the fence's list. Written by the adder before the publishing
    /// compare-and-swap, and after that only by the signaller, which owns the whole chain once taken.
    /// </summary>
    internal FenceCallback? Next;

    /// <summary>
    /// <see cref="Free"/>, <see cref="Queued"/> or <see cref="Removed"/>. Queued → Free (the signaller
    /// claims the cell to run it) and Queued → Removed (a remover) are compare-and-swaps on this field:
    /// exactly one wins, which is what makes "run exactly once or removed, never both" hold.
    /// </summary>
    internal int State;

    /// <summary>The node this cell stands for: the node itself, or the node a <see cref="ProxyCell"/> links.</summary>
    internal readonly FenceCallback Target;

    /// <summary>The cell that currently represents this node in a list, or null when idle. Written by
    /// the adder before publishing; cleared by the remover or signaller that won the cell's CAS.</summary>
    internal FenceCallback? ActiveCell;

    /// <summary>The fence this node is queued on, or null. Same discipline as <see cref="ActiveCell"/>.</summary>
    internal Fence? Owner;

    /// <summary>Creates an idle node.</summary>
    protected FenceCallback() => Target = this;

    private FenceCallback(FenceCallback target) => Target = target;

    /// <summary>True while this node is on a fence: queued, or claimed by the signaller and about to run.</summary>
    public bool IsQueued => Volatile.Read(ref ActiveCell) is not null; // cleared only after it ran or was removed

    /// <summary>
    /// Called once, on the signalling thread, after the fence has signalled (its status and timestamp
    /// are final). Runs outside any lock. It must not block for long: other callbacks of the same
    /// fence wait behind it.
    /// </summary>
    /// <param name="fence">The fence that signalled.</param>
    protected internal abstract void Invoke(Fence fence);

    /// <summary>Wraps a delegate in a callback node.</summary>
    public static FenceCallback Create(Action<Fence> action)
    {
        ArgumentNullException.ThrowIfNull(action);
        return new DelegateCallback(action);
    }

    /// <summary>
    /// A list cell for a node whose own cell may still be linked in a list it was removed from. Each
    /// registration of the node is then a proxy cell; proxies are never reused.
    /// </summary>
    internal sealed class ProxyCell(FenceCallback target) : FenceCallback(target)
    {
        protected internal override void Invoke(Fence fence) => throw new System.Diagnostics.UnreachableException();
    }

    private sealed class DelegateCallback(Action<Fence> action) : FenceCallback
    {
        protected internal override void Invoke(Fence fence) => action(fence);
    }
}

/// <summary>
/// Thrown by <see cref="Fence.Signal()"/> when one or more callbacks threw and no handler is attached
/// to <see cref="Fence.CallbackFailed"/>. The fence is signalled and every other callback has run.
/// </summary>
public sealed class FenceCallbackException : AggregateException
{
    /// <summary>Creates the exception for the fence and the exceptions its callbacks threw.</summary>
    public FenceCallbackException(Fence fence, IEnumerable<Exception> inner)
        : base($"One or more callbacks of fence {fence?.Context}:{fence?.Seqno} threw; the fence is signalled and every other callback ran.", inner)
    {
        Fence = fence;
    }

    /// <summary>The fence whose callbacks threw.</summary>
    public Fence? Fence { get; }
}

/// <summary>Arguments of <see cref="Fence.CallbackFailed"/>.</summary>
public sealed class FenceCallbackFailedEventArgs(Fence fence, Exception exception) : EventArgs
{
    /// <summary>The fence that was signalling.</summary>
    public Fence Fence { get; } = fence;

    /// <summary>What the callback threw.</summary>
    public Exception Exception { get; } = exception;
}
