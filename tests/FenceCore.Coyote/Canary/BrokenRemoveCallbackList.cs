namespace FenceCore.Coyote.Canary;

/// <summary>
/// A copy of <see cref="Fence"/>'s callback list (the claim of a node, the push, the signaller's claim,
/// exchange, walk and run, and the remover's unlink) with one deliberately seeded bug, for the canaries. Which bug
/// is chosen per instance:
/// <list type="bullet">
/// <item><see cref="SeededBug.RemoveWithoutCas"/>: <see cref="RemoveCallback"/> takes the cell with a
/// read-then-write instead of the compare-and-swap Queued → Removed, so a remove can read Queued, lose
/// the cell to the signaller's claim, and still report "removed" for a callback that runs.</item>
/// <item><see cref="SeededBug.FreeWithoutRecheck"/>: after unlinking, the remover frees the cell at once
/// instead of checking that no signaller took the list meanwhile, so a signaller that had already read
/// the link to it can claim it after it was re-queued on another list, and run it for the wrong one.</item>
/// </list>
/// Everything else is as in <c>Fence.AddCallback</c>, <c>Fence.RemoveCallback</c> and
/// <c>Fence.SignalCore</c>. Coyote must find each bug.
/// </summary>
internal sealed class BrokenRemoveCallbackList(BrokenRemoveCallbackList.SeededBug bug)
{
    public enum SeededBug
    {
        RemoveWithoutCas,
        FreeWithoutRecheck,

        /// <summary>The deferred walk of <see cref="FenceOptions.RunCallbacksAsynchronously"/> with the end-of-walk
        /// bit set when the walk is handed to the thread pool instead of when it ends: a remover that raced the
        /// signal stops waiting at once and frees its cell while the walk can still reach it.</summary>
        WalkDoneBeforeDeferredWalk,

        /// <summary>The remover announces itself (the remover-seen flag) only when it takes the removers' lock,
        /// after its compare-and-swap on the cell, as Fence did before the signaller learned to free cells with
        /// a store when no remover was seen: the signaller can read "no remover" while a remover that saw the
        /// fence pending has already taken the cell, free it with its store, and run a callback the remover
        /// reports as removed.</summary>
        LateRemoverAnnounce,
    }

    private const int Free = 0;
    private const int Queued = 1;
    private const int Removed = 2;
    private const int Passed = 3;

    private static readonly Cell s_signaled = new(null!);

    private Cell? _callbacks;
    private int _removeLock;
    private int _removerSeen;
    private int _walkDone;
    private int _claimed;

    public BrokenRemoveCallbackList()
        : this(SeededBug.RemoveWithoutCas)
    {
    }

    public bool IsSignaled => Signaled(Volatile.Read(ref _callbacks));

    private static bool Signaled(Cell? head) => ReferenceEquals(head, s_signaled);


    public Cell Add(Action<BrokenRemoveCallbackList> action)
    {
        var cell = new Cell(action);
        Add(cell);
        return cell;
    }

    public Cell Add(Action action) => Add(_ => action());

    public bool Add(Cell cell)
    {
        if (Interlocked.CompareExchange(ref cell.State, Queued, Free) != Free)
        {
            throw new InvalidOperationException("already queued");
        }

        cell.Owner = this;
        Cell? head = Volatile.Read(ref _callbacks);
        while (true)
        {
            if (Signaled(head))
            {
                cell.Owner = null;
                Volatile.Write(ref cell.State, Free);
                return false;
            }

            cell.Next = head;
            Cell? seen = Interlocked.CompareExchange(ref _callbacks, cell, head);
            if (ReferenceEquals(seen, head))
            {
                return true;
            }

            head = seen;
        }
    }

    public bool RemoveCallback(Cell cell)
    {
        if (!ReferenceEquals(Volatile.Read(ref cell.Owner), this))
        {
            return false;
        }

        // SEEDED BUG (LateRemoverAnnounce): Fence.RemoveCallback announces here, before it looks at the signal.
        if (bug != SeededBug.LateRemoverAnnounce && Volatile.Read(ref _removerSeen) == 0)
        {
            Interlocked.Exchange(ref _removerSeen, 1);
        }

        if (IsSignaled)
        {
            return false;
        }

        if (bug == SeededBug.RemoveWithoutCas)
        {
            // SEEDED BUG: Fence.RemoveCallback does CompareExchange(ref cell.State, Removed, Queued).
            if (Volatile.Read(ref cell.State) != Queued)
            {
                return false;
            }

            Volatile.Write(ref cell.State, Removed);
        }
        else if (Interlocked.CompareExchange(ref cell.State, Removed, Queued) != Queued)
        {
            return false;
        }

        if (!Unlink(cell))
        {
            while (Volatile.Read(ref cell.State) != Passed && Volatile.Read(ref _walkDone) == 0)
            {
                Thread.Yield();
            }
        }

        cell.Owner = null;
        Volatile.Write(ref cell.State, Free);
        return true;
    }

    private bool Unlink(Cell cell)
    {
        while (Interlocked.Exchange(ref _removeLock, 1) != 0)
        {
            Thread.Yield();
        }

        Interlocked.Exchange(ref _removerSeen, 1); // Fence sets RemoverSeenBit in the lock's own interlocked Or

        try
        {
            Cell? head = Volatile.Read(ref _callbacks);
            while (true)
            {
                if (Signaled(head))
                {
                    return false;
                }

                if (ReferenceEquals(head, cell))
                {
                    Cell? seen = Interlocked.CompareExchange(ref _callbacks, cell.Next, cell);
                    if (ReferenceEquals(seen, cell))
                    {
                        break;
                    }

                    head = seen;
                    continue;
                }

                Cell above = head!;
                while (true)
                {
                    Cell? next = Volatile.Read(ref above.Next);
                    if (IsSignaled)
                    {
                        return false;
                    }

                    if (ReferenceEquals(next, cell))
                    {
                        break;
                    }

                    if (next is null)
                    {
                        return false;
                    }

                    above = next;
                }

                if (!ReferenceEquals(Interlocked.CompareExchange(ref above.Next, cell.Next, cell), cell))
                {
                    return false;
                }

                break;
            }
        }
        finally
        {
            Volatile.Write(ref _removeLock, 0);
        }

        // SEEDED BUG (FreeWithoutRecheck): Fence.Unlink returns !IsSignaled here.
        return bug == SeededBug.FreeWithoutRecheck || !IsSignaled;
    }

    public void Signal()
    {
        if (Interlocked.CompareExchange(ref _claimed, 1, 0) != 0)
        {
            return;
        }

        Cell? head = Interlocked.Exchange(ref _callbacks, s_signaled);
        Walk(head, removersSeen: Volatile.Read(ref _removerSeen) != 0);
    }

    /// <summary>The signal of a fence that runs its callbacks asynchronously: published here, walked on the
    /// thread pool (a task, so Coyote controls it). With <see cref="SeededBug.WalkDoneBeforeDeferredWalk"/> the
    /// end-of-walk bit is set before the walk is queued; Fence sets it at the end of the deferred walk.</summary>
    public Task SignalDeferred()
    {
        if (Interlocked.CompareExchange(ref _claimed, 1, 0) != 0)
        {
            return Task.CompletedTask;
        }

        Cell? head = Interlocked.Exchange(ref _callbacks, s_signaled);
        bool removersSeen = Volatile.Read(ref _removerSeen) != 0;
        if (bug == SeededBug.WalkDoneBeforeDeferredWalk && Volatile.Read(ref _removerSeen) != 0)
        {
            Interlocked.Exchange(ref _walkDone, 1); // SEEDED BUG: before the walk
        }

        return Task.Run(() => Walk(head, removersSeen));
    }

    private void Walk(Cell? head, bool removersSeen)
    {
        var newestFirst = new List<Cell>();
        for (Cell? c = head; c is not null; c = Volatile.Read(ref c.Next))
        {
            newestFirst.Add(c);
        }

        for (int i = newestFirst.Count - 1; i >= 0; i--)
        {
            Cell c = newestFirst[i];
            c.Owner = null;
            if (!removersSeen)
            {
                // As Fence.RunCell: with no remover seen after the exchange, the claim is a store.
                Volatile.Write(ref c.State, Free);
                c.Action(this);
            }
            else if (Interlocked.CompareExchange(ref c.State, Free, Queued) == Queued)
            {
                c.Action(this);
            }
            else
            {
                Volatile.Write(ref c.State, Passed);
            }
        }

        if (Volatile.Read(ref _removerSeen) != 0)
        {
            Interlocked.Exchange(ref _walkDone, 1);
        }
    }

    internal sealed class Cell(Action<BrokenRemoveCallbackList> action)
    {
        public readonly Action<BrokenRemoveCallbackList> Action = action;
        public Cell? Next;
        public int State;
        public BrokenRemoveCallbackList? Owner;
    }
}
