using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using FenceCore.Internal;

namespace FenceCore;

/// <summary>
/// The fences attached to a buffer, each with a <see cref="FenceUsage"/>. Mirrors <c>struct dma_resv</c>
/// (the ≥ v5.19 model with usages and no seqcount).
/// </summary>
/// <remarks>
/// <para>
/// Storage: an immutable array of <see cref="ReservationEntry"/>, published with a compare-and-swap.
/// Readers take no lock: one <c>Volatile.Read</c> gives them a consistent snapshot
/// that no writer will ever change, and the .NET GC keeps it alive as long as they hold it (the GC is
/// the RCU grace period). Testing, waiting on and iterating a snapshot allocate nothing.
/// </para>
/// <para>
/// Writers copy on write and publish with CAS, retrying on conflict, so a writer touching only this
/// object is lock-free. Differences from the kernel, on purpose: there is no separate reserve step
/// (each write allocates its new array before the CAS, so an add cannot half-fail, and a batch such as
/// an import is published in one CAS); signalled entries are pruned on every write rather than only
/// on reallocation; readers see true snapshots, so the kernel's iterator restarts do not exist.
/// </para>
/// <para>
/// Multi-object submissions serialize on a wound/wait-style lock per object
/// (<see cref="ReservationAcquireContext"/>); that lock orders writers across objects and is never
/// taken by readers.
/// </para>
/// </remarks>
[DebuggerDisplay("{Name,nq}: {Count} fences")]
public sealed class Reservation
{
#if FENCECORE_GATE_CANARY_ALLOC
    /// <summary>Where the allocation canary's object escapes to, so the JIT cannot remove it.</summary>
    internal static object? GateCanarySink;

#endif
    private static readonly ReservationEntry[] s_empty = [];
    private static long s_nextId;

    /// <summary>The current snapshot. Replaced only by CAS (writers); read with Volatile.Read (readers).
    /// Never mutated after it is published.</summary>
    private ReservationEntry[] _entries = s_empty;

    /// <summary>The acquire context holding this object's multi-object lock, or null. Taken by CAS from
    /// null, released by an ordered write of null. Readers never look at it.</summary>
    internal ReservationAcquireContext? LockOwner;

    /// <summary>Creates an empty reservation object. Mirrors <c>dma_resv_init</c>.</summary>
    /// <param name="name">A name for messages and <see cref="Describe"/>; a numbered default when null.</param>
    public Reservation(string? name = null)
    {
        Name = name ?? string.Create(CultureInfo.InvariantCulture, $"resv{Interlocked.Increment(ref s_nextId)}");
    }

    /// <summary>The name used in messages and <see cref="Describe"/>.</summary>
    public string Name { get; }

    /// <summary>The number of entries in the current snapshot (signalled ones not yet pruned included).</summary>
    public int Count => Volatile.Read(ref _entries).Length;

    /// <summary>The current snapshot of all entries. Immutable; later writes publish a new array.</summary>
    public ReadOnlySpan<ReservationEntry> Snapshot => Volatile.Read(ref _entries);

    /// <summary>True while a multi-object acquire context holds this object.</summary>
    public bool IsLocked => Volatile.Read(ref LockOwner) is not null;

    // ----------------------------------------------------------------------------------------------
    // Writers

    /// <summary>
    /// Adds <paramref name="fence"/> with <paramref name="usage"/>. Mirrors <c>dma_resv_add_fence</c>,
    /// with its replacement rules exactly: the first slot whose fence has the same context, an
    /// equal-or-weaker usage and is not later than the new fence, or whose fence has signalled, is
    /// reused; otherwise the fence is appended. An older fence never replaces a newer one
    /// (CVE-2022-49935), the same fence twice takes one slot, and a weaker usage of the same context is
    /// kept as a second entry.
    /// </summary>
    /// <remarks>A container (array or chain) is never stored: its leaves are added instead, one entry
    /// each, in one atomic step, because a stored container could be nested into another container and
    /// make signalling recurse (the kernel WARNs on containers in a dma_resv).</remarks>
    public void AddFence(Fence fence, FenceUsage usage)
    {
        ArgumentNullException.ThrowIfNull(fence);
        FenceUsages.Validate(usage, nameof(usage));
        if (fence is FenceArray or FenceChain)
        {
            AddFences(LeavesOf(fence), usage);
            return;
        }

        while (true)
        {
            ReservationEntry[] old = Volatile.Read(ref _entries);
            ReservationEntry[]? updated = WithFence(old, fence, usage);
            if (updated is null)
            {
                return; // already present exactly: nothing to publish
            }

            // The CAS is the linearization point of the add.
            if (ReferenceEquals(Interlocked.CompareExchange(ref _entries, updated, old), old))
            {
                return;
            }
        }
    }

    /// <summary>
    /// Adds several fences with one usage in one atomic step (each by the rules of
    /// <see cref="AddFence(Fence, FenceUsage)"/>, in order). Readers see all of them or none: this is
    /// what makes a sync-file import unable to half-fail.
    /// </summary>
    public void AddFences(ReadOnlySpan<Fence> fences, FenceUsage usage)
    {
        FenceUsages.Validate(usage, nameof(usage));
        if (fences.Length == 1 && fences[0] is { } only and not (FenceArray or FenceChain))
        {
            // PERF: one leaf (a sync-file import of a plain fence) is exactly AddFence: no leaf list
            // (DmaBufImportBenchmarks.DmaBuf_ImportSyncFile_Replace).
            AddFence(only, usage);
            return;
        }

        Fence[] leaves = FlattenToLeaves(fences, nameof(fences));
        if (leaves.Length == 0)
        {
            return;
        }

        while (true)
        {
            ReservationEntry[] old = Volatile.Read(ref _entries);
            ReservationEntry[] current = old;
            foreach (Fence leaf in leaves)
            {
                current = WithFence(current, leaf, usage) ?? current;
            }

            if (ReferenceEquals(current, old) || ReferenceEquals(Interlocked.CompareExchange(ref _entries, current, old), old))
            {
                return;
            }
        }
    }

    /// <summary>
    /// Adds <paramref name="fence"/> and, in the same atomic step, collects into
    /// <paramref name="dependencies"/> every unsignalled fence with usage ≤ <paramref name="waitFor"/>
    /// of the exact snapshot the add replaced. This is "read the dependencies and add the fence" as one
    /// step on one object: a concurrent writer either sees this fence or is seen by it, never neither.
    /// </summary>
    /// <param name="fence">The new fence (a leaf).</param>
    /// <param name="usage">The usage to add it with.</param>
    /// <param name="waitFor">The level the new access must wait for, usually <see cref="FenceUsages.WaitLevelFor"/>.</param>
    /// <param name="dependencies">Receives the dependencies (cleared of this object's earlier tries on retry).</param>
    public void AddFenceWithDependencies(Fence fence, FenceUsage usage, FenceUsage waitFor, List<Fence> dependencies)
    {
        ArgumentNullException.ThrowIfNull(fence);
        ArgumentNullException.ThrowIfNull(dependencies);
        FenceUsages.Validate(usage, nameof(usage));
        FenceUsages.Validate(waitFor, nameof(waitFor));
        if (fence is FenceArray or FenceChain)
        {
            ThrowHelper.ThrowContainerReplacement(nameof(fence), fence);
        }

        int mark = dependencies.Count;
        while (true)
        {
            ReservationEntry[] old = Volatile.Read(ref _entries);
            foreach (ReservationEntry e in old)
            {
                if (e.Usage <= waitFor && !ReferenceEquals(e.Fence, fence) && !e.Fence.PollFast())
                {
                    dependencies.Add(e.Fence);
                }
            }

            ReservationEntry[]? updated = WithFence(old, fence, usage);
            if (updated is null || ReferenceEquals(Interlocked.CompareExchange(ref _entries, updated, old), old))
            {
                return;
            }

            dependencies.RemoveRange(mark, dependencies.Count - mark); // lost the race: read again
        }
    }

    /// <summary>
    /// Replaces every entry of <paramref name="context"/> by <paramref name="replacement"/> with
    /// <paramref name="usage"/>. Mirrors <c>dma_resv_replace_fences</c>: valid only when the old
    /// operation can no longer touch the buffer once the replacement signals.
    /// </summary>
    public void Replace(ulong context, Fence replacement, FenceUsage usage)
    {
        ArgumentNullException.ThrowIfNull(replacement);
        FenceUsages.Validate(usage, nameof(usage));
        if (replacement is FenceArray or FenceChain)
        {
            ThrowHelper.ThrowContainerReplacement(nameof(replacement), replacement);
        }

        while (true)
        {
            ReservationEntry[] old = Volatile.Read(ref _entries);
            ReservationEntry[]? updated = null;
            for (int i = 0; i < old.Length; i++)
            {
                if (old[i].Fence.Context == context)
                {
                    updated ??= (ReservationEntry[])old.Clone();
                    updated[i] = new ReservationEntry(replacement, usage);
                }
            }

            if (updated is null || ReferenceEquals(Interlocked.CompareExchange(ref _entries, updated, old), old))
            {
                return;
            }
        }
    }

    /// <summary>
    /// Makes this object's fences a copy of <paramref name="source"/>'s (every usage kept), replacing
    /// what it had. Mirrors <c>dma_resv_copy_fences</c>; the source is read without a lock.
    /// </summary>
    public void CopyFrom(Reservation source)
    {
        ArgumentNullException.ThrowIfNull(source);
        ReservationEntry[] snapshot = Volatile.Read(ref source._entries);
        int live = 0;
        foreach (ReservationEntry e in snapshot)
        {
            live += e.Fence.Poll() ? 0 : 1;
        }

        var copy = live == 0 ? s_empty : new ReservationEntry[live];
        int k = 0;
        foreach (ReservationEntry e in snapshot)
        {
            if (k < live && !e.Fence.Poll())
            {
                copy[k++] = e;
            }
        }

        if (k < live)
        {
            Array.Resize(ref copy, k); // a fence signalled between the two passes
        }

        Interlocked.Exchange(ref _entries, copy); // full fence: the copy is published whole
    }

    // ----------------------------------------------------------------------------------------------
    // Readers (no lock, no allocation unless the result is a new object)

    /// <summary>
    /// Enumerates the entries with usage ≤ <paramref name="usage"/> of one snapshot. Unlocked; the
    /// struct enumerator allocates nothing. Mirrors <c>dma_resv_for_each_fence_unlocked</c>, except
    /// that the walk is a true snapshot and never restarts.
    /// </summary>
    /// <param name="usage">The level: every entry with usage ≤ it is yielded.</param>
    /// <param name="includeSignaled">Also yield signalled entries not yet pruned (the locked iterator's view).</param>
    public Enumerable Fences(FenceUsage usage, bool includeSignaled = false) =>
        new(Volatile.Read(ref _entries), usage, includeSignaled);

    /// <summary>
    /// True when no unsignalled fence with usage ≤ <paramref name="usage"/> remains. Mirrors
    /// <c>dma_resv_test_signaled</c>. Kernel fences are included at every level.
    /// </summary>
    public bool TestSignaled(FenceUsage usage)
    {
#if FENCECORE_GATE_CANARY_TIME
        // The benchmark gate's timing canary (built only with -p:GateCanary=time, see bench/gate-proof.sh):
        // the first two entries are visited twice, half as much work again over ReservationTestBenchmarks'
        // four entries; it measured 1.5-1.6x the time per call in bench/gate-proof.md. One extra visit (a
        // quarter more work) measured only 1.13-1.22x, at the edge of what the gate can tell on a 5 ns call.
        ReservationEntry[] canary = Volatile.Read(ref _entries);
        for (int i = 0; i < Math.Min(2, canary.Length); i++)
        {
            if (canary[i].Usage <= usage && !canary[i].Fence.Poll())
            {
                return false;
            }
        }
#endif
#if FENCECORE_GATE_CANARY_ALLOC
        // The benchmark gate's allocation canary (built only with -p:GateCanary=alloc): one object per call.
        GateCanarySink = new object();
#endif
        foreach (ReservationEntry e in Volatile.Read(ref _entries))
        {
            if (e.Usage <= usage && !e.Fence.Poll())
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The unsignalled fences with usage ≤ <paramref name="usage"/>. Mirrors <c>dma_resv_get_fences</c>.</summary>
    public Fence[] GetFences(FenceUsage usage)
    {
        ReservationEntry[] snapshot = Volatile.Read(ref _entries);
        int n = 0;
        foreach (ReservationEntry e in snapshot)
        {
            n += e.Usage <= usage && !e.Fence.Poll() ? 1 : 0;
        }

        if (n == 0)
        {
            return [];
        }

        // PERF: one exact-size array (ReservationQueryBenchmarks.Reservation_GetFences); a List plus its
        // copy cost three allocations.
        var result = new Fence[n];
        Span<Fence> into = result; // PERF: a span's stores skip the array's covariance check, which is slow
                                   // for any fence whose type is not exactly Fence (all of them: 1.35x measured)
        int k = 0;
        foreach (ReservationEntry e in snapshot)
        {
            // Re-test: a fence may have signalled since the count; the result only needs the rest.
            if (e.Usage <= usage && k < n && !e.Fence.Poll())
            {
                into[k++] = e.Fence;
            }
        }

        if (k < n)
        {
            Array.Resize(ref result, k);
        }

        return result;
    }

    /// <summary>
    /// One fence that stands for everything a caller at <paramref name="usage"/> must wait for: null
    /// when nothing is pending, the pending fence itself when there is one (no allocation), else one new
    /// <see cref="FenceArray"/> (new context, seqno 1, signals when all have). Mirrors the seed series'
    /// <c>dma_resv_get_singleton</c>.
    /// </summary>
    /// <remarks>Adding the result back to a reservation is safe here: an array is added as its leaves.</remarks>
    public Fence? GetSingleton(FenceUsage usage)
    {
        ReservationEntry[] snapshot = Volatile.Read(ref _entries);
        Fence? single = null;
        int n = 0;
        foreach (ReservationEntry e in snapshot)
        {
            if (e.Usage <= usage && !e.Fence.Poll())
            {
                single ??= e.Fence;
                n++;
            }
        }

        if (n <= 1)
        {
            return single;
        }

        Fence[] rented = ArrayPool<Fence>.Shared.Rent(n);
        try
        {
            Span<Fence> into = rented; // PERF: no covariance check per store (see GetFences)
            int k = 0;
            foreach (ReservationEntry e in snapshot)
            {
                // Re-test: a fence may have signalled since the count; the array only needs the rest.
                if (e.Usage <= usage && k < n && !e.Fence.Poll())
                {
                    into[k++] = e.Fence;
                }
            }

            return k switch
            {
                0 => null,
                1 => rented[0],
                _ => new FenceArray(rented.AsSpan(0, k)),
            };
        }
        finally
        {
            Array.Clear(rented, 0, n);
            ArrayPool<Fence>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// Waits until every fence with usage ≤ <paramref name="usage"/> of the current snapshot has
    /// signalled. Mirrors <c>dma_resv_wait_timeout</c>; a zero timeout never sleeps (the 2025 fix).
    /// Fences added after the call are not waited for. Allocates nothing.
    /// </summary>
    /// <returns>True if all signalled; false on timeout.</returns>
    /// <exception cref="OperationCanceledException">The token was cancelled first.</exception>
    public bool Wait(FenceUsage usage, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        return WaitOnSystemClock(usage, timeout, cancellationToken);
    }

    /// <summary>As <see cref="Wait(FenceUsage, TimeSpan, CancellationToken)"/>, with the timeout measured on
    /// <paramref name="timeProvider"/>'s clock.</summary>
    /// <param name="usage">The widest usage waited for.</param>
    /// <param name="timeout">How long to wait on that clock.</param>
    /// <param name="timeProvider">The clock the timeout runs on: with the virtual GPU's <c>Gpu.TimeProvider</c>
    /// the timeout follows virtual time, with a <c>FakeTimeProvider</c> it expires when the test advances the
    /// clock. Another thread must move that clock (or satisfy the wait): this one is blocked.</param>
    /// <param name="cancellationToken">Interrupts the wait.</param>
    /// <returns>True if all signalled; false on timeout.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="timeProvider"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is negative (other than infinite) or too long.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled first.</exception>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026", Justification = "The blocking wait's shape plus a clock, as Task.WaitAsync(TimeSpan, TimeProvider, CancellationToken).")]
    public bool Wait(FenceUsage usage, TimeSpan timeout, TimeProvider timeProvider, CancellationToken cancellationToken = default)
    {
        return ClockTimeout.Run(timeout, timeProvider, (Resv: this, Usage: usage), static (s, t, token) => s.Resv.WaitOnSystemClock(s.Usage, t, token), cancellationToken);
    }

    private bool WaitOnSystemClock(FenceUsage usage, TimeSpan timeout, CancellationToken cancellationToken)
    {
        Fence.ValidateTimeout(timeout, nameof(timeout));
        ReservationEntry[] snapshot = Volatile.Read(ref _entries);
        long start = FenceClock.NowNs;
        foreach (ReservationEntry e in snapshot)
        {
            if (e.Usage > usage || e.Fence.Poll())
            {
                continue;
            }

            if (!e.Fence.Wait(Fence.Remaining(timeout, start), cancellationToken))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Waits asynchronously, as <see cref="Wait(FenceUsage, TimeSpan, CancellationToken)"/> does. Completes synchronously without
    /// allocating when nothing is pending.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026", Justification = "The same pair of shapes as Fence.Wait and Fence.WaitAsync: with and without a timeout, each with an optional token.")]
    public ValueTask<bool> WaitAsync(FenceUsage usage, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        Fence.ValidateTimeout(timeout, nameof(timeout));
        ReservationEntry[] snapshot = Volatile.Read(ref _entries);
        for (int i = 0; i < snapshot.Length; i++)
        {
            if (snapshot[i].Usage <= usage && !snapshot[i].Fence.Poll())
            {
                return timeout == TimeSpan.Zero
                    ? new ValueTask<bool>(false)
                    : WaitSlowAsync(snapshot, i, usage, timeout, cancellationToken);
            }
        }

        return new ValueTask<bool>(true);
    }

    /// <summary>Waits asynchronously, without a timeout, until every fence with usage ≤ <paramref name="usage"/>
    /// of the current snapshot has signalled. Completes synchronously without allocating when nothing is
    /// pending.</summary>
    /// <exception cref="OperationCanceledException">The token was cancelled first.</exception>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026", Justification = "The same pair of shapes as Fence.Wait and Fence.WaitAsync: with and without a timeout, each with an optional token.")]
    public ValueTask WaitAsync(FenceUsage usage, CancellationToken cancellationToken = default)
    {
        ReservationEntry[] snapshot = Volatile.Read(ref _entries);
        for (int i = 0; i < snapshot.Length; i++)
        {
            if (snapshot[i].Usage <= usage && !snapshot[i].Fence.Poll())
            {
                return WaitSlowAsync(snapshot, i, usage, cancellationToken);
            }
        }

        return default;
    }

    private static async ValueTask WaitSlowAsync(ReservationEntry[] snapshot, int from, FenceUsage usage, CancellationToken cancellationToken)
    {
        for (int i = from; i < snapshot.Length; i++)
        {
            ReservationEntry e = snapshot[i];
            if (e.Usage <= usage && !e.Fence.Poll())
            {
                await e.Fence.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>As <see cref="WaitAsync(FenceUsage, TimeSpan, CancellationToken)"/>, with the timeout measured on
    /// <paramref name="timeProvider"/>'s clock and timers (the virtual GPU's <c>Gpu.TimeProvider</c>, a test's
    /// <c>FakeTimeProvider</c>).</summary>
    /// <returns>True if all signalled; false on timeout.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="timeProvider"/> is null.</exception>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026", Justification = "The shape of Task.WaitAsync(TimeSpan, TimeProvider, CancellationToken).")]
    public ValueTask<bool> WaitAsync(FenceUsage usage, TimeSpan timeout, TimeProvider timeProvider, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        Fence.ValidateTimeout(timeout, nameof(timeout));
        ReservationEntry[] snapshot = Volatile.Read(ref _entries);
        var pending = new List<Fence>();
        foreach (ReservationEntry e in snapshot)
        {
            if (e.Usage <= usage && !e.Fence.Poll())
            {
                pending.Add(e.Fence);
            }
        }

        if (pending.Count == 0)
        {
            return new ValueTask<bool>(true);
        }

        return timeout == TimeSpan.Zero ? new ValueTask<bool>(false) : Fence.WaitAllAsync(pending, timeout, timeProvider, cancellationToken);
    }

    private static async ValueTask<bool> WaitSlowAsync(ReservationEntry[] snapshot, int from, FenceUsage usage, TimeSpan timeout, CancellationToken cancellationToken)
    {
        long start = FenceClock.NowNs;
        for (int i = from; i < snapshot.Length; i++)
        {
            ReservationEntry e = snapshot[i];
            if (e.Usage <= usage && !e.Fence.Poll() &&
                !await e.Fence.WaitAsync(Fence.Remaining(timeout, start), cancellationToken).ConfigureAwait(false))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Forwards a deadline hint to every pending fence with usage ≤ <paramref name="usage"/>.
    /// Mirrors <c>dma_resv_set_deadline</c>.</summary>
    /// <param name="usage">The widest usage whose fences get the hint.</param>
    /// <param name="deadline">A point on the fences' clock (see <see cref="Fence.Timestamp"/>).</param>
    /// <exception cref="ArgumentOutOfRangeException">The deadline is negative or beyond the clock's range; no fence got it.</exception>
    public void SetDeadline(FenceUsage usage, TimeSpan deadline)
    {
        long deadlineNs = TimeTicks.ToNs(deadline, nameof(deadline));
        foreach (ReservationEntry e in Volatile.Read(ref _entries))
        {
            if (e.Usage <= usage)
            {
                e.Fence.SetDeadlineNs(deadlineNs);
            }
        }
    }

    /// <summary>
    /// A readable listing: one line per entry with usage ≤ <paramref name="usage"/>, as
    /// "\t&lt;usage&gt; fence: context:seqno timeline driver state". Mirrors <c>dma_resv_describe</c>,
    /// which stops at READ; pass <see cref="FenceUsage.Bookkeep"/> to see everything.
    /// </summary>
    public string Describe(FenceUsage usage = FenceUsage.Read)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{Name}:").AppendLine();
        foreach (ReservationEntry e in Volatile.Read(ref _entries))
        {
            if (e.Usage <= usage)
            {
                sb.Append(CultureInfo.InvariantCulture, $"\t{e.Usage.Name()} fence: {e.Fence.Describe()}").AppendLine();
            }
        }

        return sb.ToString();
    }

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Name} ({Count} fences)");

    // ----------------------------------------------------------------------------------------------
    // Internals

    /// <summary>
    /// The snapshot with <paramref name="fence"/> added by the kernel's rules and signalled entries
    /// pruned, or null when the result would equal <paramref name="old"/>.
    /// </summary>
    private static ReservationEntry[]? WithFence(ReservationEntry[] old, Fence fence, FenceUsage usage)
    {
        // PERF: the common case first, nothing to prune: find the slot the kernel would reuse, then one
        // allocation and a copy, the copy-on-write floor's own shape (ReservationAddBenchmarks).
        int reuse = -1;
        for (int i = 0; i < old.Length; i++)
        {
            // PERF: the published flag, not a poll (dma_resv_add_fence polls). Entries are leaves, and no
            // leaf type of FenceCore's polls (only arrays and chains do, and they are flattened before they
            // get here); a user fence that only a poll would signal is pruned by the first write after a
            // reader's poll signalled it.
            Fence existing = old[i].Fence;
            if (existing.IsSignaled)
            {
                return WithFencePruning(old, fence, usage); // decides afresh, from one pass of its own
            }

            if (reuse < 0 && existing.Context == fence.Context && old[i].Usage >= usage && Fence.IsLaterOrSame(fence, existing))
            {
                reuse = i;
            }
        }

        if (reuse >= 0 && ReferenceEquals(old[reuse].Fence, fence) && old[reuse].Usage == usage)
        {
            return null; // the same fence at the same usage: one slot, nothing changes
        }

        // Element by element: the snapshots are a few entries, where a block copy's call costs more.
        var copy = new ReservationEntry[reuse >= 0 ? old.Length : old.Length + 1];
        for (int i = 0; i < old.Length; i++)
        {
            copy[i] = i == reuse ? new ReservationEntry(fence, usage) : old[i];
        }

        if (reuse < 0)
        {
            copy[old.Length] = new ReservationEntry(fence, usage);
        }

        return copy;
    }

    /// <summary><see cref="WithFence"/> when some entry has signalled: dead entries are dropped.</summary>
    private static ReservationEntry[]? WithFencePruning(ReservationEntry[] old, Fence fence, FenceUsage usage)
    {
        // One pass decides everything: which entries are dead (signalled; that never reverts) and which
        // slot the kernel would reuse. The copy below uses these decisions, so it cannot go stale.
        Span<bool> dead = old.Length <= 128 ? stackalloc bool[old.Length] : new bool[old.Length];
        int reuse = -1;
        int deadCount = 0;
        for (int i = 0; i < old.Length; i++)
        {
            Fence existing = old[i].Fence;
            dead[i] = existing.PollFast();
            deadCount += dead[i] ? 1 : 0;
            if (reuse < 0 &&
                (dead[i] || (existing.Context == fence.Context && old[i].Usage >= usage && Fence.IsLaterOrSame(fence, existing))))
            {
                reuse = i;
            }
        }

        if (reuse >= 0 && deadCount == 0 && ReferenceEquals(old[reuse].Fence, fence) && old[reuse].Usage == usage)
        {
            return null; // the same fence at the same usage: one slot, nothing changes
        }

        // Exactly one allocation. Survivors keep their order; the new entry takes the reused slot (live or
        // dead) or goes at the end.
        int survivors = old.Length - deadCount - (reuse >= 0 && !dead[reuse] ? 1 : 0);
        var result = new ReservationEntry[survivors + 1];
        int k = 0;
        for (int i = 0; i < old.Length; i++)
        {
            if (i == reuse)
            {
                result[k++] = new ReservationEntry(fence, usage);
            }
            else if (!dead[i])
            {
                result[k++] = old[i];
            }
        }

        if (reuse < 0)
        {
            result[k++] = new ReservationEntry(fence, usage);
        }

        Debug.Assert(k == result.Length, "every slot of the new snapshot is filled");
        return result;
    }

    private static Fence[] FlattenToLeaves(ReadOnlySpan<Fence> fences, string paramName)
    {
        var leaves = new List<Fence>(fences.Length);
        for (int i = 0; i < fences.Length; i++)
        {
            if (fences[i] is null)
            {
                ThrowHelper.ThrowNullFenceInSet(paramName, i);
            }

            if (fences[i] is FenceArray or FenceChain)
            {
                foreach (Fence leaf in FenceUnwrap.ForEach(fences[i]))
                {
                    leaves.Add(leaf);
                }
            }
            else
            {
                leaves.Add(fences[i]); // a leaf is its own only leaf: no per-fence list
            }
        }

        return [.. leaves];
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Fence[] LeavesOf(Fence container)
    {
        var leaves = new List<Fence>();
        foreach (Fence leaf in FenceUnwrap.ForEach(container))
        {
            leaves.Add(leaf);
        }

        return [.. leaves];
    }

    /// <summary>The result of <see cref="Fences"/>.</summary>
    public readonly struct Enumerable
    {
        private readonly ReservationEntry[] _snapshot;
        private readonly FenceUsage _usage;
        private readonly bool _includeSignaled;

        internal Enumerable(ReservationEntry[] snapshot, FenceUsage usage, bool includeSignaled)
        {
            _snapshot = snapshot;
            _usage = usage;
            _includeSignaled = includeSignaled;
        }

        /// <summary>Returns the enumerator.</summary>
        public Enumerator GetEnumerator() => new(_snapshot, _usage, _includeSignaled);
    }

    /// <summary>A struct enumerator over one snapshot, filtered by usage; not <see cref="IDisposable"/>.</summary>
    public struct Enumerator
    {
        private readonly ReservationEntry[] _snapshot;
        private readonly FenceUsage _usage;
        private readonly bool _includeSignaled;
        private int _index;

        internal Enumerator(ReservationEntry[] snapshot, FenceUsage usage, bool includeSignaled)
        {
            _snapshot = snapshot;
            _usage = usage;
            _includeSignaled = includeSignaled;
            _index = -1;
        }

        /// <summary>The current entry.</summary>
        public readonly ReservationEntry Current => _snapshot[_index];

        /// <summary>Advances to the next matching entry.</summary>
        public bool MoveNext()
        {
            while (++_index < _snapshot.Length)
            {
                ReservationEntry e = _snapshot[_index];
                if (e.Usage <= _usage && (_includeSignaled || !e.Fence.Poll()))
                {
                    return true;
                }
            }

            return false;
        }
    }
}
