using FenceCore.Internal;

namespace FenceCore.VirtualGpu;

/// <summary>A point on a syncobj: point 0 means the binary payload.</summary>
/// <param name="SyncObj">The syncobj.</param>
/// <param name="Point">The timeline point, or 0.</param>
public readonly record struct SyncObjPoint(SyncObj SyncObj, ulong Point);

/// <summary>What a job does to one buffer.</summary>
/// <param name="Buffer">The buffer.</param>
/// <param name="Write">True for a write, false for a read.</param>
public readonly record struct BufferAccess(GpuBuffer Buffer, bool Write);

/// <summary>A job to submit. Mirrors what a command submission ioctl carries.</summary>
public sealed class JobDescription
{
    /// <summary>The engine kind; the client's entity for that kind load-balances over its engines.</summary>
    public EngineKind Engine { get; init; } = EngineKind.Graphics;

    /// <summary>Buffers read and written (implicit sync). The description keeps its own copy of the list it is
    /// given (as a submission ioctl copies the user's buffer list), so the caller may reuse or change its list
    /// afterwards; the job's <see cref="GpuJob.Accesses"/> share this copy when no buffer is listed twice.</summary>
    public IReadOnlyList<BufferAccess> Buffers
    {
        get => BufferArray;
        init => BufferArray = CopyOf(value);
    }

    /// <summary>The description's own copy of <see cref="Buffers"/>; never written after the init.</summary>
    internal BufferAccess[] BufferArray { get; private init; } = [];

    /// <summary>Explicit dependencies: fences (containers are unwrapped), e.g. from a sync file or a syncobj point.</summary>
    public IReadOnlyList<Fence> Dependencies { get; init; } = [];

    /// <summary>Explicit dependencies given as sync files (their fences, unwrapped).</summary>
    public IReadOnlyList<SyncFile> SyncFiles { get; init; } = [];

    /// <summary>Explicit dependencies on syncobj points (point 0: the binary syncobj's current fence). Every
    /// point must already be submitted, as for a kernel submission without WAIT_FOR_SUBMIT; otherwise the
    /// submission fails with -EINVAL before anything happens.</summary>
    public IReadOnlyList<SyncObjPoint> SyncObjWaits { get; init; } = [];

    /// <summary>Syncobj points the job's finished fence is installed at once it is armed (point 0 replaces a
    /// binary syncobj's fence; other points add a timeline point), as a submission's out-syncobjs.</summary>
    public IReadOnlyList<SyncObjPoint> SyncObjSignals { get; init; } = [];

    /// <summary>Execution time once the job reaches the front of its ring (virtual mode); 10 µs by default.
    /// Must not be negative (the submission checks).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The duration is longer than the GPU's clock (about 36 years).</exception>
    public TimeSpan Duration
    {
        get => TimeTicks.FromNs(DurationNs);
        init => DurationNs = value.Ticks is >= -(Gpu.MaxClockNs / 100) and <= Gpu.MaxClockNs / 100
            ? value.Ticks * 100
            : throw new ArgumentOutOfRangeException(nameof(value), value, "A job's duration must fit the GPU's clock (at most about 36 years, long.MaxValue / 8 ns).");
    }

    /// <summary>The duration in ns: exact for a <see cref="Duration"/> (a tick is 100 ns), and finer for the
    /// GPU's own moves and clears, whose copy times are computed in ns.</summary>
    internal long DurationNs { get; init; } = 10_000;

    /// <summary>Fault injection: the job never completes on its own; the engine timeout must reset it.</summary>
    public bool Hang { get; init; }

    /// <summary>Ring credits the job takes (clamped to the engine's limit so it can always run).</summary>
    public int Credits { get; init; } = 1;

    /// <summary>Free-form label for traces.</summary>
    public string? Label { get; init; }

    private static BufferAccess[] CopyOf(IReadOnlyList<BufferAccess> value)
    {
        ArgumentNullException.ThrowIfNull(value, nameof(Buffers));
        if (value.Count == 0)
        {
            return [];
        }

        var copy = new BufferAccess[value.Count];
        for (int i = 0; i < copy.Length; i++)
        {
            copy[i] = value[i];
        }

        return copy;
    }
}
