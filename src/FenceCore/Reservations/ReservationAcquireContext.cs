using FenceCore.Internal;

namespace FenceCore;

/// <summary>
/// Locks several reservation objects for one submission without deadlock, and adds a job's fence to
/// all of them as one step. Mirrors a <c>ww_acquire_ctx</c> with the retry loop of <c>drm_exec</c>.
/// </summary>
/// <remarks>
/// <para>
/// Why a lock at all: per-object compare-and-swap makes "read the dependencies and add the fence"
/// atomic on one object, but not across objects. Two jobs that both write buffers A and B could each
/// read A before the other added to it and B after, and so wait on each other: a dependency cycle
/// that never signals. Holding every object of a submission while it reads and adds orders any two
/// submissions that share an object consistently on all the objects they share.
/// </para>
/// <para>
/// Deadlock freedom (wait-die): each context has a stamp from a global counter, kept across retries.
/// A context that finds an object held by an older context backs off: it releases everything, waits
/// for that object alone (the kernel's <c>lock_slow</c>), then takes the rest again. A context that
/// finds an object held by a younger one waits for it. Waits only ever go from older to younger, so
/// no cycle of waits can form, and the oldest context always makes progress.
/// </para>
/// <para>
/// Writers that touch a single object do not need this lock (<see cref="Reservation.AddFence(Fence, FenceUsage)"/>
/// and <see cref="Reservation.AddFenceWithDependencies"/> are lock-free): with only one object they
/// share with anyone, they cannot close a cycle. Readers never take it.
/// </para>
/// <para>
/// The lock is held only for the short read-and-add step; waiting for it spins with
/// <see cref="SpinWait"/> (which yields and then sleeps), because the holders never block while
/// holding it.
/// </para>
/// </remarks>
public sealed class ReservationAcquireContext : IDisposable
{
    private static long s_nextStamp;

    private readonly List<Reservation> _held = [];
    private bool _disposed;

    /// <summary>Creates a context with a fresh stamp (younger than every existing context).</summary>
    public ReservationAcquireContext() => Stamp = Interlocked.Increment(ref s_nextStamp);

    /// <summary>The age of this context: lower is older, and older contexts win.</summary>
    public long Stamp { get; private set; }

    /// <summary>How many times this context backed off because an older one held an object it needed.</summary>
    public int Backoffs { get; private set; }

    /// <summary>The objects currently held.</summary>
    public IReadOnlyList<Reservation> Held => _held;

    /// <summary>
    /// Locks every object in <paramref name="objects"/> (duplicates are fine), backing off and retrying
    /// as wait-die requires. Returns when all are held. Mirrors <c>drm_exec_lock_obj</c> inside
    /// <c>drm_exec_until_all_locked</c>.
    /// </summary>
    /// <exception cref="InvalidOperationException">This context already holds a set; unlock it first.</exception>
    public void LockAll(ReadOnlySpan<Reservation> objects)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_held.Count != 0)
        {
            ThrowHelper.ThrowAlreadyLocking();
        }

        for (int i = 0; i < objects.Length; i++)
        {
            if (objects[i] is null)
            {
                ThrowHelper.ThrowNullFenceInSet(nameof(objects), i);
            }
        }

        Reservation? contended = null;
        while (true)
        {
            if (contended is not null)
            {
                // lock_slow: holding nothing, wait for the object we lost on, then take the rest.
                LockSlow(contended);
            }

            contended = TryLockRest(objects);
            if (contended is null)
            {
                return;
            }

            // Die: release everything so the older context can finish, then retry with the same stamp.
            Backoffs++;
            UnlockAll();
        }
    }

    /// <summary>
    /// Adds <paramref name="fence"/> to <paramref name="obj"/> and collects its dependencies in the same
    /// atomic step (see <see cref="Reservation.AddFenceWithDependencies"/>). The object must be held.
    /// </summary>
    /// <exception cref="InvalidOperationException">The object is not held by this context.</exception>
    public void AddFence(Reservation obj, Fence fence, FenceUsage usage, FenceUsage waitFor, List<Fence> dependencies)
    {
        ArgumentNullException.ThrowIfNull(obj);
        if (!ReferenceEquals(Volatile.Read(ref obj.LockOwner), this))
        {
            ThrowHelper.ThrowNotLockedByContext(obj);
        }

        obj.AddFenceWithDependencies(fence, usage, waitFor, dependencies);
    }

    /// <summary>Releases every held object.</summary>
    public void UnlockAll()
    {
        foreach (Reservation obj in _held)
        {
            Volatile.Write(ref obj.LockOwner, null); // release: our writes to the object precede the unlock
        }

        _held.Clear();
    }

    /// <summary>
    /// Readies a context that holds nothing for another submission, as if new: a fresh stamp (younger
    /// than every context so far, which wait-die needs for fairness: a kept old stamp would win every
    /// conflict from then on) and no backoffs. For pools; a held set throws.
    /// </summary>
    /// <exception cref="InvalidOperationException">The context still holds objects.</exception>
    public void Renew()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_held.Count != 0)
        {
            ThrowHelper.ThrowAlreadyLocking();
        }

        Stamp = Interlocked.Increment(ref s_nextStamp);
        Backoffs = 0;
    }

    /// <summary>Releases every held object and retires the context.</summary>
    public void Dispose()
    {
        UnlockAll();
        _disposed = true;
    }

    private Reservation? TryLockRest(ReadOnlySpan<Reservation> objects)
    {
        foreach (Reservation obj in objects)
        {
            var spin = default(SpinWait);
            while (true)
            {
                ReservationAcquireContext? owner = Interlocked.CompareExchange(ref obj.LockOwner, this, null);
                if (owner is null)
                {
                    _held.Add(obj); // the CAS from null took the lock
                    break;
                }

                if (ReferenceEquals(owner, this))
                {
                    break; // a duplicate in the set, already ours
                }

                if (owner.Stamp < Stamp)
                {
                    return obj; // held by an older context: we must back off
                }

                spin.SpinOnce(); // held by a younger context: waiting is safe (waits go older → younger)
            }
        }

        return null;
    }

    private void LockSlow(Reservation obj)
    {
        var spin = default(SpinWait);
        while (Interlocked.CompareExchange(ref obj.LockOwner, this, null) is not null)
        {
            spin.SpinOnce();
        }

        _held.Add(obj);
    }
}
