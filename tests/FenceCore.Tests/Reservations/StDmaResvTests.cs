namespace FenceCore.Tests.Reservations;

/// <summary>The cases of the kernel's st-dma-resv.c, each run for every usage (5 × 4 runs).</summary>
public class StDmaResvTests
{
    public static TheoryData<FenceUsage> Usages => new() { FenceUsage.Kernel, FenceUsage.Write, FenceUsage.Read, FenceUsage.Bookkeep };

    private static FenceSource NewFence() => new(FenceContext.Allocate(), 1);

    [Theory]
    [MemberData(nameof(Usages))]
    public void Sanitycheck_InitLockUnlockFini(FenceUsage usage)
    {
        var f = NewFence();
        f.Signal();
        var resv = new Reservation();
        using var ctx = new ReservationAcquireContext();
        ctx.LockAll([resv]);
        Assert.True(resv.IsLocked);
        ctx.UnlockAll();
        Assert.False(resv.IsLocked);
        Assert.True(resv.TestSignaled(usage));
    }

    [Theory]
    [MemberData(nameof(Usages))]
    public void TestSignaling_PendingUntilTheFenceSignals(FenceUsage usage)
    {
        var f = NewFence();
        var resv = new Reservation();
        resv.AddFence(f, usage);
        Assert.False(resv.TestSignaled(usage));

        f.Signal();
        Assert.True(resv.TestSignaled(usage));
    }

    [Theory]
    [MemberData(nameof(Usages))]
    public void TestForEach_YieldsExactlyTheFenceWithItsUsage(FenceUsage usage)
    {
        var f = NewFence();
        var resv = new Reservation();
        resv.AddFence(f, usage);

        var seen = new List<ReservationEntry>();
        foreach (ReservationEntry e in resv.Fences(FenceUsage.Bookkeep, includeSignaled: true))
        {
            seen.Add(e);
        }

        Assert.Equal([new ReservationEntry(f, usage)], seen);
    }

    /// <summary>
    /// The kernel's unlocked walk may restart and yield a fence twice; FenceCore's walk is over an
    /// immutable snapshot, so a concurrent write during the walk neither restarts nor changes it.
    /// </summary>
    [Theory]
    [MemberData(nameof(Usages))]
    public void TestForEachUnlocked_WalksOneSnapshotEvenWhenWrittenMeanwhile(FenceUsage usage)
    {
        var f = NewFence();
        var resv = new Reservation();
        resv.AddFence(f, usage);

        var seen = new List<Fence>();
        foreach (ReservationEntry e in resv.Fences(usage))
        {
            seen.Add(e.Fence);
            Assert.Equal(usage, e.Usage);
            resv.AddFence(NewFence(), usage); // a writer during the walk
        }

        Assert.Equal([f], seen);
        Assert.Equal(2, resv.Count);
    }

    [Theory]
    [MemberData(nameof(Usages))]
    public void TestGetFences_ReturnsTheOneFence(FenceUsage usage)
    {
        var f = NewFence();
        var resv = new Reservation();
        resv.AddFence(f, usage);

        Fence[] fences = resv.GetFences(usage);
        Assert.Equal([f], fences);
    }
}
