namespace FenceCore.VirtualGpu;

/// <summary>Where a buffer's storage currently is.</summary>
public enum BufferPlacement
{
    /// <summary>In device memory.</summary>
    Device,

    /// <summary>Evicted to system memory.</summary>
    System,
}

/// <summary>A buffer object with backing storage. It owns a reservation object.</summary>
public sealed class GpuBuffer
{
    internal GpuBuffer(int id, long size, string name)
    {
        Id = id;
        Size = size;
        Name = name;
        Reservation = new Reservation(name);
    }

    /// <summary>Id.</summary>
    public int Id { get; }

    /// <summary>Size in bytes.</summary>
    public long Size { get; }

    /// <summary>Name.</summary>
    public string Name { get; }

    /// <summary>The buffer's fences.</summary>
    public Reservation Reservation { get; }

    /// <summary>Where the storage is (memory manager's view). Written under the memory manager's lock.</summary>
    public BufferPlacement Placement { get; internal set; } = BufferPlacement.System;

    /// <summary>The KERNEL fence of the move or clear that established the current storage. Written under
    /// the memory manager's lock; read lock-free (a reference, published whole).</summary>
    public Fence? StorageFence { get; internal set; }

    /// <summary>Submissions in flight that hold the buffer resident. Under the memory manager's lock.</summary>
    internal int PinCount;

    /// <summary>The buffer's node in the memory manager's LRU. Under the memory manager's lock.</summary>
    internal LinkedListNode<GpuBuffer>? LruNode;

    /// <inheritdoc/>
    public override string ToString() => Name;
}
