using FenceCore.VirtualGpu;

namespace FenceCore.Stress.Tests;

/// <summary>The invariant checker's own rules, checked directly (moved here from the library's reliability
/// tests, which no longer reference the runner). In the runner's collection: the retained-heap figure is read
/// from the whole process, so no run may allocate beside it.</summary>
[Collection("stress runner")]
public sealed class InvariantCheckerTests
{
    /// <summary>The export-snapshot invariant accepts a later fence of the same context in place of an
    /// expected one: the reservation may replace a pending fence by its context's next one between the
    /// checker's read and the export (threads mode: the memory manager's moves on another worker). Before,
    /// that was reported as "export misses pending".</summary>
    [Fact]
    public void ExportSnapshotCheck_AcceptsALaterFenceOfTheSameContext_AndStillCatchesAMissingOne()
    {
        using var devices = new DeviceSet([new GpuConfig()]);
        Gpu gpu = devices.Primary;
        var checker = new InvariantChecker(devices, watchdogMs: 1000, managedHeapLimitBytes: 4L << 30);
        GpuBuffer buffer = gpu.CreateBuffer(4096, "bo");
        ulong ctx = FenceContext.Allocate();
        var earlier = new FenceSource(ctx, 1);
        var later = new FenceSource(ctx, 2);
        var other = new FenceSource(FenceContext.Allocate(), 1);

        checker.CheckExport(buffer, later, [earlier], maxJobIdAtExport: [0]);
        Assert.Equal(0, checker.Snapshot.Violations);

        checker.CheckExport(buffer, later, [other], maxJobIdAtExport: [0]);
        Assert.Equal(1, checker.Snapshot.Violations);
        Assert.Contains("misses pending", checker.Snapshot.FirstViolation, StringComparison.Ordinal);
    }

    [Fact]
    public void RetainedHeapInvariant_BreaksWhenMemoryIsHeldPerJob()
    {
        using var devices = new DeviceSet([new GpuConfig()]);
        var checker = new InvariantChecker(devices, watchdogMs: 1000, managedHeapLimitBytes: 4L << 30);
        checker.SampleRetainedHeap();
        var leak = new List<byte[]>();
        for (int i = 0; i < 100; i++)
        {
            leak.Add(new byte[1 << 20]); // 100 MiB held with no job in flight, over the 64 MiB allowance
        }

        checker.SampleRetainedHeap();
        Assert.Equal(1, checker.HeapPerJob.Violations);
        GC.KeepAlive(leak);
    }
}
