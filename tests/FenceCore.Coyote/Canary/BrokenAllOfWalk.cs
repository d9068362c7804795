namespace FenceCore.Coyote.Canary;

/// <summary>
/// A deliberately broken copy of <see cref="FenceArray"/>'s signal-on-all walk for the canary: it moves the
/// walk past the member it registered on only after the registration succeeded. The node's invocation may
/// already be running on that member's signalling thread and move the walk on itself, so the walk is
/// advanced twice for one member: it skips the next one and finishes while that member is pending.
/// </summary>
internal sealed class BrokenAllOfWalk
{
    private readonly Fence[] _members;
    private readonly FenceSource _done = new(FenceContext.Allocate(), 1);
    private int _next;

    public BrokenAllOfWalk(Fence[] members) => _members = members;

    /// <summary>Signals once the walk has passed every member.</summary>
    public Fence Done => _done;

    public void Start() => Continue(new Walker(this));

    private void Continue(Walker walker)
    {
        for (int i = Volatile.Read(ref _next); i < _members.Length; i = Volatile.Read(ref _next))
        {
            if (_members[i].AddCallback(walker))
            {
                // The seeded bug: after the node became visible to the signaller.
                Volatile.Write(ref _next, Volatile.Read(ref _next) + 1);
                return;
            }

            Volatile.Write(ref _next, i + 1);
        }

        _done.Signal();
    }

    private sealed class Walker(BrokenAllOfWalk walk) : FenceCallback
    {
        protected internal override void Invoke(Fence fence) => walk.Continue(this);
    }
}
