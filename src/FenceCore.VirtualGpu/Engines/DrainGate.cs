namespace FenceCore.VirtualGpu;

/// <summary>
/// Lets one thread at a time drain work that producers queue elsewhere, and leaves none behind: a
/// producer queues its item and calls <see cref="Drain{TState}"/>; if another thread is draining, that
/// thread takes the item. The engine's completed-job queue uses it, so an engine's fences are signalled
/// by one thread at a time, in ring order.
/// </summary>
/// <remarks>
/// The flag is released in <c>finally</c>, so a drain that throws never wedges the engine, and the queue
/// is looked at again after each release: an item queued after the drainer last found the queue empty,
/// by a producer that then saw the flag still set, is drained by whichever of the two gets the flag next.
/// Coyote checks both (<c>DrainGateTests</c>, with a canary that leaves out the second look).
/// </remarks>
internal sealed class DrainGate
{
    private int _draining;

    /// <summary>
    /// Drains with <paramref name="takeOne"/> (which returns false once the queue is empty) unless another
    /// thread is draining, and until <paramref name="hasWork"/> says nothing is left.
    /// </summary>
    public void Drain<TState>(TState state, Func<TState, bool> takeOne, Func<TState, bool> hasWork)
    {
        while (Interlocked.CompareExchange(ref _draining, 1, 0) == 0)
        {
            try
            {
                while (takeOne(state))
                {
                }
            }
            finally
            {
                Volatile.Write(ref _draining, 0);
            }

            if (!hasWork(state))
            {
                return;
            }
        }
    }
}
