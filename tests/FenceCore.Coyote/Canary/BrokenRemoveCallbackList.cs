namespace FenceCore.Coyote.Canary;

/// <summary>
/// A deliberately broken copy of <see cref="Fence"/>'s callback list (add, remove, signal and the
/// FIFO run), for the canary. Everything is as in <c>Fence.AddCallback</c>, <c>Fence.RemoveCallback</c>
/// and <c>Fence.SignalCore</c>/<c>RunCallbacks</c> except one line: <see cref="RemoveCallback"/> takes
/// the cell with a read-then-write instead of the compare-and-swap Queued → Removed, so a remove can
/// read Queued, lose the cell to the signaller's claim, and still report "removed" for a callback
/// that runs. Coyote must find that interleaving on every run.
/// </summary>
internal sealed class BrokenRemoveCallbackList
{
    private const int Free = 0;
    private const int Queued = 1;
    private const int Removed = 2;

    private static readonly Cell s_signaledSentinel = new(null!);

    private Cell? _callbacks;

    public bool IsSignaled => ReferenceEquals(Volatile.Read(ref _callbacks), s_signaledSentinel);

    public Cell Add(Action action)
    {
        var cell = new Cell(action) { State = Queued };
        Cell? head = Volatile.Read(ref _callbacks);
        while (true)
        {
            if (ReferenceEquals(head, s_signaledSentinel))
            {
                cell.State = Free;
                return cell;
            }

            if (head is not null && Volatile.Read(ref head.State) == Removed)
            {
                Cell? popped = Interlocked.CompareExchange(ref _callbacks, head.Next, head);
                head = ReferenceEquals(popped, head) ? head.Next : popped;
                continue;
            }

            cell.Next = head;
            Cell? seen = Interlocked.CompareExchange(ref _callbacks, cell, head);
            if (ReferenceEquals(seen, head))
            {
                return cell;
            }

            head = seen;
        }
    }

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1822", Justification = "Mirrors the instance method Fence.RemoveCallback.")]
    public bool RemoveCallback(Cell cell)
    {
        // SEEDED BUG: Fence.RemoveCallback does CompareExchange(ref cell.State, Removed, Queued).
        if (Volatile.Read(ref cell.State) != Queued)
        {
            return false;
        }

        Volatile.Write(ref cell.State, Removed);
        return true;
    }

    public bool Signal()
    {
        Cell? head = Interlocked.Exchange(ref _callbacks, s_signaledSentinel);
        if (ReferenceEquals(head, s_signaledSentinel))
        {
            return false;
        }

        Cell? oldestFirst = null;
        while (head is not null)
        {
            Cell? next = head.Next;
            head.Next = oldestFirst;
            oldestFirst = head;
            head = next;
        }

        for (Cell? cell = oldestFirst; cell is not null;)
        {
            Cell? next = cell.Next;
            cell.Next = null;
            if (Interlocked.CompareExchange(ref cell.State, Free, Queued) == Queued)
            {
                cell.Action();
            }

            cell = next;
        }

        return true;
    }

    internal sealed class Cell(Action action)
    {
        public readonly Action Action = action;
        public Cell? Next;
        public int State;
    }
}
