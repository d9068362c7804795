namespace FenceCore.Coyote.Canary;

/// <summary>
/// <c>FenceCore.Internal.SerialDrain</c> with its one subtle line left out: after releasing the owner it
/// does not look at the queue again. An item queued after the drainer last found the queue empty, by a
/// producer that then saw the owner still set, is left behind. Coyote must find that interleaving.
/// </summary>
internal sealed class BrokenSerialDrain
{
    private int _draining;

    public void Drain<TState>(TState state, Func<TState, bool> takeOne)
    {
        if (Interlocked.CompareExchange(ref _draining, 1, 0) != 0)
        {
            return;
        }

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

        // SEEDED BUG: SerialDrain loops while hasWork(state) says the queue is not empty.
    }
}
