namespace FenceCore.Coyote.Canary;

/// <summary>
/// A model of the fence's fast signal (<c>Fence.SignalCore</c> and <c>Fence.Announce</c>) with its one
/// subtle step left out: the adder links its cell without first announcing it on the flag word. A
/// signaller that claims between the adder's look and its link then publishes with a store over the
/// linked cell, and the callback whose add returned true never runs. Coyote must find that interleaving.
/// </summary>
internal sealed class BrokenFastSignal
{
    private const int Claimed = 1;
    private const int HasCallbacks = 2;

    private static readonly Cell s_signaled = new(() => { });

    private int _state;
    private Cell? _head;

    public sealed class Cell(Action run)
    {
        public Cell? Next;

        public void Run() => run();
    }

    public bool Add(Cell cell)
    {
        // SEEDED BUG: Fence.AddCallback announces (CAS HasCallbacks onto the flag word, failing on a fast
        // claim) before it links; this model links straight away.
        Cell? head = Volatile.Read(ref _head);
        while (true)
        {
            if (ReferenceEquals(head, s_signaled))
            {
                return false;
            }

            cell.Next = head;
            Cell? seen = Interlocked.CompareExchange(ref _head, cell, head);
            if (ReferenceEquals(seen, head))
            {
                return true;
            }

            head = seen;
        }
    }

    public bool Signal()
    {
        int state = Volatile.Read(ref _state);
        while (true)
        {
            if ((state & Claimed) != 0)
            {
                return false;
            }

            int seen = Interlocked.CompareExchange(ref _state, state | Claimed, state);
            if (seen == state)
            {
                break;
            }

            state = seen;
        }

        if ((state & HasCallbacks) == 0)
        {
            Volatile.Write(ref _head, s_signaled); // fast: trusts that no cell was linked
            return true;
        }

        for (Cell? cell = Interlocked.Exchange(ref _head, s_signaled); cell is not null; cell = cell.Next)
        {
            cell.Run();
        }

        return true;
    }
}
