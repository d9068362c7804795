namespace FenceCore.Internal;

/// <summary>
/// Lets one thread at a time drain work that producers queue elsewhere, and leaves none behind: a
/// producer queues its item and calls <see cref="Drain{TState}"/>; if another thread is draining, that
/// thread takes the item. Two funnels use it: a <see cref="SwSyncTimeline"/>'s reached points (signalled
/// in seqno order) and the virtual GPU's completed jobs of an engine (signalled in ring order).
/// </summary>
/// <remarks>
/// <para>
/// The owner is released in <c>finally</c>, so a drain that throws never wedges the funnel, and the
/// queue is looked at again after each release: an item queued after the drainer last found the queue
/// empty, by a producer that then saw the owner still set, is drained by whichever of the two claims the
/// drain next. Coyote checks both (<c>SerialDrainTests</c>, with a canary that leaves out the second look).
/// </para>
/// <para>
/// The owner is the draining thread's managed id, so a caller can tell a re-entrant call (a callback
/// that the drain runs produces more work on the drainer's own thread: <see cref="IsDrainingOnThisThread"/>)
/// from a drain that another thread is running. The drain itself takes no lock; the queue is the
/// caller's, under whatever discipline the caller keeps.
/// </para>
/// </remarks>
internal sealed class SerialDrain
{
    /// <summary>Managed thread id of the draining thread, 0 when none. Claimed by CAS from 0; released by
    /// the owner's exchange to 0; read with <c>Volatile.Read</c>.</summary>
    private int _owner;

    /// <summary>True while some thread is draining (a snapshot).</summary>
    public bool IsDraining => Volatile.Read(ref _owner) != 0;

    /// <summary>True when the calling thread is the drainer: the call came from inside its own drain.</summary>
    public bool IsDrainingOnThisThread => Volatile.Read(ref _owner) == Environment.CurrentManagedThreadId;

    /// <summary>
    /// Drains with <see cref="ISerialDrainWork.TakeOne"/> (false once the queue is empty) unless another
    /// thread is draining (or this thread already is, further up its stack), and until
    /// <see cref="ISerialDrainWork.HasWork"/> says nothing is left. What <c>TakeOne</c> throws propagates,
    /// after the drain is released.
    /// </summary>
    /// <typeparam name="TWork">The queue's two operations; a struct, so that the calls are direct (PERF:
    /// <c>SwSyncBenchmarks.SwSync_CreateFenceThenIncrement</c>).</typeparam>
    /// <returns>True when this call drained (then everything queued before the call has been taken);
    /// false when another thread, or this one further up its stack, is the drainer.</returns>
    public bool Drain<TWork>(TWork work)
        where TWork : ISerialDrainWork
    {
        int me = Environment.CurrentManagedThreadId;
        bool drained = false;

        // The CAS is the claim: it orders the previous owner's release (and everything it drained) before
        // this drain's first look at the queue.
        while (Interlocked.CompareExchange(ref _owner, me, 0) == 0)
        {
            drained = true;
            try
            {
                while (work.TakeOne())
                {
                }
            }
            finally
            {
                // Release, then look again (see the remarks). The exchange is a full fence: the release is
                // ordered before the second look's read of the queue (store/load), which a release store
                // alone does not give, so a producer that saw the owner still set is never missed.
                Interlocked.Exchange(ref _owner, 0);
            }

            if (!work.HasWork())
            {
                return true;
            }
        }

        return drained;
    }
}

/// <summary>The two operations a <see cref="SerialDrain"/> needs of the queue it drains.</summary>
internal interface ISerialDrainWork
{
    /// <summary>Takes and handles the oldest item; false when the queue is empty.</summary>
    bool TakeOne();

    /// <summary>The second look after the drain lets go: true when an item is queued. It must read the
    /// queue after the release (under the queue's lock, or with an acquire read of a count published
    /// before the producer tried to claim the drain).</summary>
    bool HasWork();
}
