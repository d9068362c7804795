namespace FenceCore.VirtualGpu;

/// <summary>Where a buffer's storage currently is.</summary>
public enum BufferPlacement
{
    /// <summary>In device memory.</summary>
    Device,

    /// <summary>Evicted to system memory.</summary>
    System,
}

/// <summary>How another device attached a buffer it imported (<see cref="Gpu.Import"/>).</summary>
public enum ImportMode
{
    /// <summary>A static importer (<c>dma_buf_attach</c> without importer ops): the exporter pins the
    /// buffer for as long as the import exists, and never moves it.</summary>
    Pinned,

    /// <summary>A dynamic importer (<c>dma_buf_dynamic_attach</c> with <c>move_notify</c>): the exporter may
    /// move the buffer; each move is a KERNEL fence in the shared reservation and a move notification,
    /// after which the importer's next job waits for that fence before it touches the memory.</summary>
    Dynamic,
}

/// <summary>
/// A buffer object with backing storage and a reservation object. A buffer that another device imported
/// (<see cref="Gpu.Import"/>) is a handle of that device onto the exporter's buffer: it shares the
/// exporter's reservation (so fences of both devices order each other's implicit-sync jobs) and storage,
/// and its placement and storage fence are the exporter's.
/// </summary>
public sealed class GpuBuffer
{
    private readonly GpuBuffer? _origin;

    internal GpuBuffer(Gpu device, int id, long size, string name)
    {
        Device = device;
        Id = id;
        Size = size;
        Name = name;
        Reservation = new Reservation(name);
    }

    /// <summary>An import of <paramref name="origin"/> on <paramref name="device"/>.</summary>
    internal GpuBuffer(Gpu device, int id, GpuBuffer origin, ImportMode mode, bool peerToPeer)
    {
        Device = device;
        Id = id;
        Size = origin.Size;
        Name = $"{origin.Name}@{device.Name}";
        Reservation = origin.Reservation; // the kernel's importer uses dmabuf->resv, the exporter's object
        _origin = origin;
        Mode = mode;
        PeerToPeer = peerToPeer;
    }

    /// <summary>The device this handle belongs to (the importer, for an import).</summary>
    public Gpu Device { get; }

    /// <summary>Id, unique on <see cref="Device"/>.</summary>
    public int Id { get; }

    /// <summary>Size in bytes.</summary>
    public long Size { get; }

    /// <summary>Name; an import is named after its origin and its device.</summary>
    public string Name { get; }

    /// <summary>The buffer's fences; an import's are its origin's.</summary>
    public Reservation Reservation { get; }

    /// <summary>The exporter's buffer for an import; this buffer otherwise. The storage is the origin's.</summary>
    public GpuBuffer Origin => _origin ?? this;

    /// <summary>True for a handle that another device's buffer was imported as.</summary>
    public bool IsImported => _origin is not null;

    /// <summary>How an import is attached; null for a buffer of the device's own.</summary>
    public ImportMode? Mode { get; }

    /// <summary>An import that reaches the exporter's device memory directly (peer-to-peer); without it the
    /// storage is placed in system memory whenever the importer maps it (the bounce).</summary>
    public bool PeerToPeer { get; }

    /// <summary>Where the storage is (the exporter's memory manager's view). Written under its lock.</summary>
    public BufferPlacement Placement
    {
        get => _origin?.Placement ?? _placement;
        internal set => _placement = value;
    }

    private BufferPlacement _placement = BufferPlacement.System;

    /// <summary>The KERNEL fence of the move or clear that established the current storage (the origin's,
    /// for an import). Written under the exporter's memory manager's lock; read lock-free (a reference,
    /// published whole).</summary>
    public Fence? StorageFence
    {
        get => _origin is null ? Volatile.Read(ref _storageFence) : _origin.StorageFence;
        internal set => Volatile.Write(ref _storageFence, value);
    }

    private Fence? _storageFence;

    /// <summary>Move notifications this import received (a dynamic import's mapping invalidated by a move of
    /// the exporter's). Written under the exporter's memory manager's lock.</summary>
    public long MoveNotifications => Interlocked.Read(ref _moveNotifications);

    private long _moveNotifications;

    /// <summary>True once the import was detached (<see cref="Gpu.Detach"/>); it can no longer be used.</summary>
    public bool Detached { get; internal set; }

    /// <summary>An import's mapping is valid: true once attached (pinned) or mapped for a job (dynamic); false
    /// after a move notification, until the importer's next job maps it again, and after a detach. Written
    /// under the exporter's memory manager's lock; false for a buffer of the device's own.</summary>
    public bool IsMapped => Volatile.Read(ref Mapped);

    /// <summary>Backs <see cref="IsMapped"/>. Under the exporter's memory manager's lock.</summary>
    internal bool Mapped;

    /// <summary>Submissions in flight that hold the buffer resident, plus one per pinned import. Under the
    /// memory manager's lock (the exporter's).</summary>
    internal int PinCount;

    /// <summary>Pinned imports of this buffer: while any exists it never moves (a buffer pinned in system
    /// memory is used there, by the exporter's jobs too). Under the exporter's memory manager's lock.</summary>
    internal int ImportPins;

    /// <summary>Threads mode: the tickets (ages) of the submissions that pin this buffer, one per pin, for
    /// wait-die (<see cref="MemoryManager.PinForSubmission"/>); null in virtual mode. Created, added to and
    /// removed from under the memory manager's lock (the exporter's), and read only there.</summary>
    internal List<long>? PinTickets;

    /// <summary>Dynamic imports of this buffer, told of every move. Under the exporter's memory manager's lock.</summary>
    internal List<GpuBuffer>? DynamicImports;

    /// <summary>The buffer's dma-buf, created by its first export. Under the exporter's memory manager's lock.</summary>
    internal DmaBuf? Export;

    /// <summary>The buffer's node in the memory manager's LRU. Under the memory manager's lock.</summary>
    internal LinkedListNode<GpuBuffer>? LruNode;

    /// <summary>The labels of the memory manager's kernel jobs on this buffer, made once each. PERF: formatted for
    /// every move and eviction before, about one string per job of a default stress run. Made under the lock of
    /// the memory manager that moves the buffer (the exporter's, for an import's two).</summary>
    private string? _clearLabel, _moveLabel, _evictLabel, _bounceLabel, _pinMoveLabel;

    internal string ClearLabel => _clearLabel ??= $"clear {Name}";

    internal string MoveLabel => _moveLabel ??= $"move {Name}";

    internal string EvictLabel => _evictLabel ??= $"evict {Name}";

    /// <summary>For an import: its exporter's move of the buffer to system memory so that this import can map it.</summary>
    internal string BounceLabel => _bounceLabel ??= $"bounce {Origin.Name} to system memory for {Device.Name}";

    /// <summary>For an import: its exporter's move of the buffer to system memory to pin it there for this import.</summary>
    internal string PinMoveLabel => _pinMoveLabel ??= $"move {Origin.Name} to system memory to pin it for {Device.Name}";

    /// <summary>Counts a move notification (the exporter's memory manager's lock is held).</summary>
    internal void NoteMoveNotification()
    {
        Mapped = false;
        Interlocked.Increment(ref _moveNotifications);
    }

    /// <inheritdoc/>
    public override string ToString() => Name;
}
