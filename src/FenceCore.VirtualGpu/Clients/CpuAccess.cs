namespace FenceCore.VirtualGpu;

/// <summary>
/// A CPU access: it begins only when nothing its direction must wait for is pending. Fences found
/// pending are waited for and the reservation is read again, because a move (an eviction and a move
/// back) may have been added meanwhile. The final check and the pin that keeps the buffer in place for the
/// access are one step under the memory manager's lock.
/// </summary>
internal sealed class CpuAccessCallback(Gpu gpu, GpuBuffer buffer, bool write, Action<GpuBuffer>? onAccess) : RearmingCallback
{
    /// <summary>True once this attempt's walk has read the buffer's wait fence; used only by the thread
    /// running the walk (under the memory manager's lock).</summary>
    private bool _read;

    protected internal override void Invoke(Fence fence) => gpu.Dispatcher.Post(static s => ((CpuAccessCallback)s!).Run(), this);

    /// <summary>Registers this node on the fence the access must wait for, read afresh (a move may have been
    /// added since the last attempt); false when there is none left to wait for.</summary>
    public bool WaitForBuffer()
    {
        _read = false;
        return ArmOnNext();
    }

    /// <summary>The walk of one attempt: the buffer's wait fence, once.</summary>
    protected override Fence? NextInWalk()
    {
        if (_read)
        {
            return null;
        }

        _read = true;
        return buffer.Reservation.GetSingleton(FenceUsages.WaitLevelFor(write));
    }

    public void Run()
    {
        if (!gpu.Memory.BeginCpuAccess(buffer, this, out bool storagePending))
        {
            return; // still busy: Invoke runs this again when the fence signals
        }

        try
        {
            if (storagePending)
            {
                gpu.Leaks.RecordLeak(null, buffer);
            }

            gpu.Hub.Raise(new GpuEvent(GpuEventKind.CpuAccess, gpu.NowNs, null, null, 0, buffer));
            onAccess?.Invoke(buffer);
        }
#pragma warning disable CA1031 // the caller's action is a consumer: its exception must not reach the scheduler
        catch (Exception ex)
#pragma warning restore CA1031
        {
            gpu.ReportConsumerFailure(ex);
        }
        finally
        {
            gpu.Memory.EndCpuAccess(buffer); // pinned from the check to the end of the access
        }
    }
}
