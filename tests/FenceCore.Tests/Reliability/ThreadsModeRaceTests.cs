using FenceCore.VirtualGpu;

namespace FenceCore.Tests.Reliability;

/// <summary>Two failures the threads-mode stress run showed now and then (seen on 4ca78ae: 2 of 4 runs of
/// <c>--mode threads --threads 2 --jobs 200000 --hang-rate 0.001 --kill-rate 0.0005</c>), each pinned here
/// deterministically.</summary>
public sealed class ThreadsModeRaceTests
{
    /// <summary>A CPU access pins its buffer from its final check to its end, so the memory manager cannot
    /// evict (move) the buffer while the CPU touches it. Before, the buffer was not pinned: an eviction on
    /// another worker, between the check and the access, moved the storage under the CPU (the leak
    /// detector's "no-access-during-move" then fired). Here the eviction is forced from inside the access.</summary>
    [Fact]
    public void ACpuAccess_HoldsItsBuffer_NoEvictionMovesItDuringTheAccess()
    {
        // Room for exactly one 1 MiB buffer: placing the second must evict the first, unless it is held.
        using var gpu = new Gpu(new GpuConfig { DeviceMemoryBytes = 1L << 20 });
        GpuClient client = gpu.CreateClient("c");
        GpuBuffer a = gpu.CreateBuffer(1L << 20, "a");
        GpuBuffer b = gpu.CreateBuffer(1L << 20, "b");
        client.Submit(new JobDescription { Buffers = [new BufferAccess(a, Write: true)], Duration = TimeSpan.FromMicroseconds(1) });
        gpu.RunUntilIdle();
        Assert.Equal(BufferPlacement.Device, a.Placement);

        BufferPlacement during = BufferPlacement.System;
        Exception? submitError = null;
        gpu.CpuAccess(a, write: false, onAccess: _ =>
        {
            try
            {
                client.Submit(new JobDescription { Buffers = [new BufferAccess(b, Write: true)], Duration = TimeSpan.FromMicroseconds(1) });
            }
            catch (InvalidOperationException ex)
            {
                submitError = ex; // device memory exhausted: the only victim is held by the CPU access
            }

            during = a.Placement;
        });
        gpu.RunUntilIdle();

        Assert.Equal(BufferPlacement.Device, during);
        Assert.NotNull(submitError);
        Assert.Contains("Device memory exhausted", submitError!.Message, StringComparison.Ordinal);
        Assert.Equal(0, gpu.LeakCount);

        // After the access the buffer may move again.
        client.Submit(new JobDescription { Buffers = [new BufferAccess(b, Write: true)], Duration = TimeSpan.FromMicroseconds(1) });
        gpu.RunUntilIdle();
        Assert.Equal(BufferPlacement.System, a.Placement);
        Assert.Equal(BufferPlacement.Device, b.Placement);
    }
}
