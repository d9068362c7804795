namespace FenceCore.Coyote.Fences;

/// <summary>A callback node that counts its runs and records the status it saw.</summary>
internal sealed class CountingCallback : FenceCallback
{
    private int _runs;
    private int _statusSeen;

    public int Runs => Volatile.Read(ref _runs);

    /// <summary>The fence status read inside the callback (0 if it never ran).</summary>
    public int StatusSeen => Volatile.Read(ref _statusSeen);

    protected internal override void Invoke(Fence fence)
    {
        Volatile.Write(ref _statusSeen, fence.Status);
        Interlocked.Increment(ref _runs);
    }
}

/// <summary>A callback node that counts its runs and records the fence it last ran for.</summary>
internal sealed class FenceSeenCallback : FenceCallback
{
    private int _runs;
    private Fence? _lastFence;

    public int Runs => Volatile.Read(ref _runs);

    public Fence? LastFence => Volatile.Read(ref _lastFence);

    protected internal override void Invoke(Fence fence)
    {
        Volatile.Write(ref _lastFence, fence);
        Interlocked.Increment(ref _runs);
    }
}
