namespace FenceCore.Tests.Reservations;

/// <summary>What st-dma-resv.c leaves out: usage filtering, each replacement rule, singleton, waits,
/// copy, replace, containers, describe, bad input.</summary>
public class ReservationTests
{
    private static FenceSource NewFence(ulong? ctx = null, ulong seqno = 1) => new(ctx ?? FenceContext.Allocate(), seqno);

    [Fact]
    public void UsageFiltering_AQueryAtULevelSeesUsagesUpToU()
    {
        var resv = new Reservation();
        var write = NewFence();
        resv.AddFence(write, FenceUsage.Write);

        Assert.Empty(resv.GetFences(FenceUsage.Kernel));
        Assert.Equal([write], resv.GetFences(FenceUsage.Write));
        Assert.Equal([write], resv.GetFences(FenceUsage.Read));
        Assert.True(resv.TestSignaled(FenceUsage.Kernel));
        Assert.False(resv.TestSignaled(FenceUsage.Read));
    }

    [Theory]
    [InlineData(FenceUsage.Kernel)]
    [InlineData(FenceUsage.Write)]
    [InlineData(FenceUsage.Read)]
    [InlineData(FenceUsage.Bookkeep)]
    public void KernelFences_AreSeenAtEveryLevel(FenceUsage level)
    {
        var resv = new Reservation();
        var move = NewFence();
        resv.AddFence(move, FenceUsage.Kernel);
        Assert.Contains(move, resv.GetFences(level));
        Assert.False(resv.TestSignaled(level));
        Assert.Same(move, resv.GetSingleton(level));
    }

    [Fact]
    public void WaitLevelFor_WriterWaitsForReadersReaderForWriters()
    {
        Assert.Equal(FenceUsage.Read, FenceUsages.WaitLevelFor(write: true));
        Assert.Equal(FenceUsage.Write, FenceUsages.WaitLevelFor(write: false));
    }

    [Fact]
    public void Add_LaterSameContextFence_ReplacesTheSlot()
    {
        ulong ctx = FenceContext.Allocate();
        var resv = new Reservation();
        var f1 = NewFence(ctx, 1);
        var f2 = NewFence(ctx, 2);
        resv.AddFence(f1, FenceUsage.Read);
        resv.AddFence(f2, FenceUsage.Read);
        Assert.Equal([new ReservationEntry(f2, FenceUsage.Read)], resv.Snapshot.ToArray());
    }

    [Fact]
    public void Add_OlderSameContextFence_NeverReplacesANewerOne()
    {
        ulong ctx = FenceContext.Allocate();
        var resv = new Reservation();
        var newer = NewFence(ctx, 5);
        var older = NewFence(ctx, 4);
        resv.AddFence(newer, FenceUsage.Write);
        resv.AddFence(older, FenceUsage.Write);

        Assert.Contains(new ReservationEntry(newer, FenceUsage.Write), resv.Snapshot.ToArray());
        Assert.Equal(2, resv.Count);
    }

    [Fact]
    public void Add_SameFenceTwice_TakesOneSlotAndAllocatesNothing()
    {
        var resv = new Reservation();
        var f = NewFence();
        resv.AddFence(f, FenceUsage.Read);
        long before = GC.GetAllocatedBytesForCurrentThread();
        resv.AddFence(f, FenceUsage.Read);
        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(1, resv.Count);
        Assert.Equal(0, after - before);
    }

    [Fact]
    public void Add_SameFenceAtStrongerUsage_PromotesInPlace()
    {
        var resv = new Reservation();
        var f = NewFence();
        resv.AddFence(f, FenceUsage.Bookkeep);
        resv.AddFence(f, FenceUsage.Read);
        Assert.Equal([new ReservationEntry(f, FenceUsage.Read)], resv.Snapshot.ToArray());
    }

    [Fact]
    public void Add_WeakerUsageOfSameContext_IsKeptAsASecondEntry()
    {
        ulong ctx = FenceContext.Allocate();
        var resv = new Reservation();
        var write = NewFence(ctx, 1);
        var laterRead = NewFence(ctx, 2);
        resv.AddFence(write, FenceUsage.Write);
        resv.AddFence(laterRead, FenceUsage.Read);

        Assert.Equal(
            [new ReservationEntry(write, FenceUsage.Write), new ReservationEntry(laterRead, FenceUsage.Read)],
            resv.Snapshot.ToArray());
        Assert.Equal([write], resv.GetFences(FenceUsage.Write));
    }

    [Fact]
    public void Add_ReusesASignalledSlot_AndPrunesSignalledEntries()
    {
        var resv = new Reservation();
        var a = NewFence();
        var b = NewFence();
        var c = NewFence();
        resv.AddFence(a, FenceUsage.Read);
        resv.AddFence(b, FenceUsage.Read);
        a.Signal();
        b.Signal();

        resv.AddFence(c, FenceUsage.Write);
        Assert.Equal([new ReservationEntry(c, FenceUsage.Write)], resv.Snapshot.ToArray());
    }

    [Fact]
    public void Add_DifferentContexts_Append()
    {
        var resv = new Reservation();
        var fences = Enumerable.Range(0, 10).Select(_ => NewFence()).ToArray();
        foreach (Fence f in fences)
        {
            resv.AddFence(f, FenceUsage.Read);
        }

        Assert.Equal(fences, resv.GetFences(FenceUsage.Read));
    }

    [Fact]
    public void Add_ContainerAddsItsLeaves()
    {
        var resv = new Reservation();
        var f1 = NewFence();
        var f2 = NewFence();
        resv.AddFence(new FenceArray([f1, f2]), FenceUsage.Write);

        Assert.Equal([f1, f2], resv.GetFences(FenceUsage.Write));
        Assert.DoesNotContain(resv.Snapshot.ToArray(), e => e.Fence is FenceArray);
    }

    [Fact]
    public void GetSingleton_NoneIsNull()
    {
        var resv = new Reservation();
        resv.AddFence(NewFence(), FenceUsage.Bookkeep);
        Assert.Null(resv.GetSingleton(FenceUsage.Read));
    }

    [Fact]
    public void GetSingleton_OneIsThatFence_WithoutAllocating()
    {
        var resv = new Reservation();
        var f = NewFence();
        resv.AddFence(f, FenceUsage.Write);
        resv.AddFence(NewFence(), FenceUsage.Bookkeep);
        _ = resv.GetSingleton(FenceUsage.Read);

        long before = GC.GetAllocatedBytesForCurrentThread();
        Fence? single = resv.GetSingleton(FenceUsage.Read);
        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.Same(f, single);
        Assert.Equal(0, after - before);
    }

    [Fact]
    public void GetSingleton_SeveralIsOneNewArrayThatSignalsWhenAllHave()
    {
        var resv = new Reservation();
        var a = NewFence();
        var b = NewFence();
        resv.AddFence(a, FenceUsage.Write);
        resv.AddFence(b, FenceUsage.Read);

        var array = Assert.IsType<FenceArray>(resv.GetSingleton(FenceUsage.Read));
        Assert.Equal([a, b], array.Fences.ToArray());
        Assert.Equal(1ul, array.Seqno);
        Assert.False(array.SignalOnAny);
        a.Signal();
        Assert.False(array.Poll());
        b.Signal();
        Assert.True(array.Poll());
    }

    [Fact]
    public void GetSingleton_AddedBack_IsStoredAsLeaves()
    {
        var resv = new Reservation();
        var a = NewFence();
        var b = NewFence();
        resv.AddFence(a, FenceUsage.Write);
        resv.AddFence(b, FenceUsage.Write);
        resv.AddFence(resv.GetSingleton(FenceUsage.Write)!, FenceUsage.Write);
        Assert.Equal([a, b], resv.GetFences(FenceUsage.Write));
    }

    [Fact]
    public void Wait_ZeroTimeout_NeverSleeps_TrueOrFalse()
    {
        var resv = new Reservation();
        Assert.True(resv.Wait(FenceUsage.Bookkeep, TimeSpan.Zero));
        var f = NewFence();
        resv.AddFence(f, FenceUsage.Read);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        Assert.False(resv.Wait(FenceUsage.Read, TimeSpan.Zero));
        Assert.True(sw.ElapsedMilliseconds < 500);
        Assert.True(resv.Wait(FenceUsage.Write, TimeSpan.Zero));
    }

    [Fact]
    public void Wait_ReturnsWhenTheFencesSignal_OrTimesOut()
    {
        var resv = new Reservation();
        var a = NewFence();
        var b = NewFence();
        resv.AddFence(a, FenceUsage.Write);
        resv.AddFence(b, FenceUsage.Read);
        Assert.False(resv.Wait(FenceUsage.Read, TimeSpan.FromMilliseconds(5)));
        using var timer = new Timer(_ =>
        {
            a.Signal();
            b.Signal();
        }, null, 10, Timeout.Infinite);
        Assert.True(resv.Wait(FenceUsage.Read, TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task WaitAsync_CompletesWhenTheFencesSignal()
    {
        var resv = new Reservation();
        var a = NewFence();
        resv.AddFence(a, FenceUsage.Kernel);
        Assert.True(await resv.WaitAsync(FenceUsage.Kernel, TimeSpan.Zero) == false);
        ValueTask<bool> wait = resv.WaitAsync(FenceUsage.Write, TimeSpan.FromSeconds(10));
        a.Signal();
        Assert.True(await wait);
    }

    [Fact]
    public void Wait_Cancelled_Throws()
    {
        var resv = new Reservation();
        resv.AddFence(NewFence(), FenceUsage.Read);
        using var cts = new CancellationTokenSource(20);
        Assert.ThrowsAny<OperationCanceledException>(() => resv.Wait(FenceUsage.Read, Timeout.InfiniteTimeSpan, cts.Token));
    }

    [Fact]
    public void CopyFrom_KeepsEveryUsageAndReplacesTheDestination()
    {
        var src = new Reservation();
        var k = NewFence();
        var w = NewFence();
        var bk = NewFence();
        src.AddFence(k, FenceUsage.Kernel);
        src.AddFence(w, FenceUsage.Write);
        src.AddFence(bk, FenceUsage.Bookkeep);
        var dst = new Reservation();
        dst.AddFence(NewFence(), FenceUsage.Read);

        dst.CopyFrom(src);
        Assert.Equal(src.Snapshot.ToArray(), dst.Snapshot.ToArray());
    }

    [Fact]
    public void Replace_SwapsEveryEntryOfTheContext()
    {
        ulong ctx = FenceContext.Allocate();
        var resv = new Reservation();
        var preempt = NewFence(ctx, 1);
        var other = NewFence();
        resv.AddFence(preempt, FenceUsage.Bookkeep);
        resv.AddFence(other, FenceUsage.Read);
        var pageTable = NewFence();

        resv.Replace(ctx, pageTable, FenceUsage.Bookkeep);
        Assert.Equal(
            [new ReservationEntry(pageTable, FenceUsage.Bookkeep), new ReservationEntry(other, FenceUsage.Read)],
            resv.Snapshot.ToArray());
    }

    [Fact]
    public void SetDeadline_ReachesMatchingFencesOnly()
    {
        var resv = new Reservation();
        var w = NewFence();
        var bk = NewFence();
        resv.AddFence(w, FenceUsage.Write);
        resv.AddFence(bk, FenceUsage.Bookkeep);
        resv.SetDeadline(FenceUsage.Read, TimeSpan.FromTicks(1234));
        Assert.Equal(TimeSpan.FromTicks(1234), w.Deadline);
        Assert.Null(bk.Deadline);
    }

    [Fact]
    public void Describe_ListsUsageAndFenceUpToRead()
    {
        var resv = new Reservation("bo7");
        var w = NewFence();
        resv.AddFence(w, FenceUsage.Write);
        resv.AddFence(NewFence(), FenceUsage.Bookkeep);
        string text = resv.Describe();
        Assert.Contains($"\twrite fence: {w.Context}:1 unbound fencecore unsignalled", text, StringComparison.Ordinal);
        Assert.DoesNotContain("bookkeep", text, StringComparison.Ordinal);
        Assert.Contains("bookkeep", resv.Describe(FenceUsage.Bookkeep), StringComparison.Ordinal);
    }

    [Fact]
    public void Readers_AllocateNothing()
    {
        var resv = new Reservation();
        for (int i = 0; i < 4; i++)
        {
            resv.AddFence(NewFence(), (FenceUsage)(i % 4));
        }

        resv.TestSignaled(FenceUsage.Read);
        long before = GC.GetAllocatedBytesForCurrentThread();
        bool signaled = resv.TestSignaled(FenceUsage.Read);
        int n = 0;
        foreach (ReservationEntry e in resv.Fences(FenceUsage.Bookkeep))
        {
            n += e.Fence.IsSignaled ? 0 : 1;
        }

        bool waited = resv.Wait(FenceUsage.Read, TimeSpan.Zero);
        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.False(signaled);
        Assert.False(waited);
        Assert.Equal(4, n);
        Assert.Equal(0, after - before);
    }

    [Fact]
    public void BadInput_IsRejected_AndStateUnchanged()
    {
        var resv = new Reservation();
        var f = NewFence();
        resv.AddFence(f, FenceUsage.Read);
        ReservationEntry[] before = resv.Snapshot.ToArray();

        Assert.Throws<ArgumentNullException>(() => resv.AddFence(null!, FenceUsage.Read));
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => resv.AddFence(NewFence(), (FenceUsage)7));
        Assert.Contains("Kernel, Write, Read or Bookkeep", ex.Message, StringComparison.Ordinal);
        var rex = Assert.Throws<ArgumentException>(() => resv.Replace(f.Context, new FenceArray([NewFence()]), FenceUsage.Read));
        Assert.Contains("plain fence", rex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentNullException>(() => resv.AddFences([NewFence(), null!], FenceUsage.Read));

        Assert.Equal(before, resv.Snapshot.ToArray());
    }
}
