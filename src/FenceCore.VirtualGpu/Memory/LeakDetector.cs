namespace FenceCore.VirtualGpu;

/// <summary>
/// The leak detector: a job or CPU access that touches storage whose move or clear has not signalled
/// reads memory that is not yet (or no longer) the buffer's. It records every such access as an event;
/// a correct driver never triggers it, and the injected bug (<see cref="GpuConfig.InjectSkipKernelFences"/>)
/// must.
/// </summary>
/// <remarks>Holds no lock; <see cref="_leaks"/> is counted with Interlocked.</remarks>
internal sealed class LeakDetector(Gpu gpu)
{
    private readonly Gpu _gpu = gpu;

    /// <summary>Accesses recorded: Interlocked increments, read with Interlocked.Read.</summary>
    private long _leaks;

    public long Count => Interlocked.Read(ref _leaks);

    /// <summary>
    /// True when the move that established some storage runs ahead of <paramref name="job"/> on the same
    /// ring: the ring executes in order, so the job touches the storage only after the move, even though
    /// the move's finished fence has not signalled yet (same-engine dependencies are pipelined).
    /// </summary>
    private static bool OrderedOnRing(Fence move, GpuJob job) =>
        move is GpuFence { Job: { Hardware: { } moveHw } mover } &&
        ReferenceEquals(mover.Engine, job.Engine) && job.Hardware is { } jobHw && moveHw.Seqno < jobHw.Seqno;

    internal void CheckStorage(GpuJob job, long startNs)
    {
        Fence?[] storage = job.StorageFences;
        for (int i = 0; i < storage.Length; i++)
        {
            if (storage[i] is { } move && !move.PollFast() && !OrderedOnRing(move, job))
            {
                if (startNs > _gpu.NowNs)
                {
                    // Execution begins later (behind earlier ring work): check then.
                    _gpu.Dispatcher.PostAt(startNs, static s => ((GpuJob)s!).Engine.Owner!.Leaks.CheckStorageNow((GpuJob)s!), job);
                }
                else
                {
                    RecordLeak(job, job.Accesses[i].Buffer);
                }

                return;
            }
        }
    }

    internal void CheckStorageNow(GpuJob job)
    {
        Fence?[] storage = job.StorageFences;
        for (int i = 0; i < storage.Length; i++)
        {
            if (storage[i] is { } move && !move.PollFast() && !OrderedOnRing(move, job))
            {
                RecordLeak(job, job.Accesses[i].Buffer);
                return;
            }
        }
    }

    internal void RecordLeak(GpuJob? job, GpuBuffer? buffer)
    {
        Interlocked.Increment(ref _leaks);
        _gpu.Hub.Raise(new GpuEvent(GpuEventKind.LeakDetected, _gpu.NowNs, job, job?.Engine, 0, buffer));
    }
}
