namespace FenceCore;

/// <summary>How a fence compares seqnos and where its callbacks run. Fixed when the fence is created.</summary>
[Flags]
public enum FenceOptions
{
    /// <summary>32-bit seqnos with wrap-around, callbacks on the signalling thread (the kernel's default).</summary>
    None = 0,

    /// <summary>Compare seqnos on all 64 bits: <c>dma_fence_init64</c>, <c>DMA_FENCE_FLAG_SEQNO64_BIT</c>.</summary>
    Seqno64 = 1,

    /// <summary>
    /// Run the callbacks on the thread pool instead of on the signalling thread, as
    /// <see cref="TaskCreationOptions.RunContinuationsAsynchronously"/> does for a task. The fence is
    /// signalled (and <see cref="Fence.IsSignaled"/> true) when <c>Signal</c> returns; its callbacks run
    /// later, still in registration order, on one pool thread. The kernel has no such mode: its callbacks
    /// run in the signaller's (often interrupt) context. A producer chooses it when a consumer's callback
    /// must not delay the producer at all.
    /// </summary>
    RunCallbacksAsynchronously = 2,
}
