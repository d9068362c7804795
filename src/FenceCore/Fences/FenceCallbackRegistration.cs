namespace FenceCore;

/// <summary>
/// A callback registered with <see cref="Fence.AddCallback(Action{Fence, object?}, object?)"/>. Disposing
/// it removes the callback if it has not run, as disposing a <see cref="CancellationTokenRegistration"/>
/// does. The default value is empty: it stands for a callback that ran at once, and removes nothing.
/// </summary>
public readonly struct FenceCallbackRegistration : IDisposable, IEquatable<FenceCallbackRegistration>
{
    private readonly FenceCallback? _node;

    internal FenceCallbackRegistration(Fence fence, FenceCallback node)
    {
        Fence = fence;
        _node = node;
    }

    /// <summary>The fence the callback is registered on; null for an empty registration.</summary>
    public Fence? Fence { get; }

    /// <summary>Removes the callback. Mirrors <c>dma_fence_remove_callback</c>.</summary>
    /// <returns>True if it was still queued and now never runs; false if it has run or is running, or the
    /// registration is empty. A removal that races the signal returns once the signaller has passed the
    /// callback.</returns>
    public bool Unregister() => Fence is not null && _node is not null && Fence.RemoveCallback(_node);

    /// <summary>Removes the callback if it has not run (<see cref="Unregister"/>, ignoring the result).</summary>
    public void Dispose() => Unregister();

    /// <inheritdoc/>
    public bool Equals(FenceCallbackRegistration other) => ReferenceEquals(_node, other._node) && ReferenceEquals(Fence, other.Fence);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is FenceCallbackRegistration other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => _node?.GetHashCode() ?? 0;

    /// <summary>True when both stand for the same registration.</summary>
    public static bool operator ==(FenceCallbackRegistration left, FenceCallbackRegistration right) => left.Equals(right);

    /// <summary>True when they stand for different registrations.</summary>
    public static bool operator !=(FenceCallbackRegistration left, FenceCallbackRegistration right) => !left.Equals(right);
}
