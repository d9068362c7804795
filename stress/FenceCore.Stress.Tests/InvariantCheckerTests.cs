using System.Globalization;
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

    /// <summary>A check's message is formatted only when the check fails: a passing check evaluates none of its
    /// holes and allocates nothing (it used to allocate a closure and a delegate each time); a failing one
    /// records the formatted message, with the invariant culture, and counts.</summary>
    [Fact]
    public void Check_FormatsItsMessageOnlyWhenItFails_AndAPassingCheckAllocatesNothing()
    {
        var invariant = new Invariant("test", "a test invariant");
        int evaluated = 0;
        string Hole()
        {
            evaluated++;
            return "hole";
        }

        invariant.Check(true, $"never {Hole()}", 0);
        Assert.Equal(0, evaluated);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            invariant.Check(i >= 0, $"job {i} broke it at {i / 1e6:F3} ms", i);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(1001, invariant.Checks);
        Assert.Equal(0, invariant.Violations);

        CultureInfo saved = CultureInfo.CurrentCulture;
        try
        {
            CultureInfo.CurrentCulture = CultureInfo.GetCultureInfo("de-DE");
            invariant.Check(false, $"job {Hole()} took {1.5:F3} ms", 42);
        }
        finally
        {
            CultureInfo.CurrentCulture = saved;
        }

        Assert.Equal(1, evaluated);
        Assert.Equal(1, invariant.Violations);
        Assert.Equal("job hole took 1.500 ms", invariant.FirstViolation);
        Assert.Equal(42, invariant.FirstViolationTimeNs);
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
