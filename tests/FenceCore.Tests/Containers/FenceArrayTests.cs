using FenceCore.Tests.Fences;
using static FenceCore.Tests.Containers.StDmaFenceUnwrapTests;

namespace FenceCore.Tests.Containers;

/// <summary>dma_fence_array behaviour: all and any, errors, polling, deadlines, iteration, nesting.</summary>
public class FenceArrayTests
{
    private static FenceArray Any(params Fence[] fences) => new(fences, FenceContext.Allocate(), 1, signalOnAny: true);

    [Fact]
    public void All_SignalsOnlyAfterTheLastMember()
    {
        FenceSource a = Mock(), b = Mock(), c = Mock();
        var array = MockArray(a, b, c);
        array.EnableSignaling();

        a.Signal();
        b.Signal();
        bool beforeLast = array.IsSignaled;
        c.Signal();

        Assert.False(beforeLast);
        Assert.True(array.IsSignaled);
    }

    [Fact]
    public void Any_SignalsWithTheFirstMember()
    {
        FenceSource a = Mock(), b = Mock();
        var array = Any(a, b);
        array.EnableSignaling();

        b.Signal();

        Assert.True(array.IsSignaled);
        Assert.False(a.IsSignaled);
    }

    [Fact]
    public void Any_LaterMembersDoNotSignalAgain()
    {
        FenceSource a = Mock(), b = Mock();
        var array = Any(a, b);
        array.EnableSignaling();
        a.Signal();
        TimeSpan ts = array.Timestamp;

        b.Signal();

        Assert.Equal(ts, array.Timestamp);
    }

    [Fact]
    public void MembersAlreadySignalledAtEnableAreCounted()
    {
        FenceSource a = Mock(), b = Mock();
        a.Signal();
        b.Signal();
        var array = MockArray(a, b);

        array.EnableSignaling();

        Assert.True(array.IsSignaled);
    }

    [Fact]
    public void FirstMemberErrorWins()
    {
        FenceSource a = Mock(), b = Mock(), c = Mock();
        var array = MockArray(a, b, c);
        array.EnableSignaling();

        b.Signal(-Errno.ETIMEDOUT);
        a.Signal(-Errno.ECANCELED);
        c.Signal();

        Assert.Equal(-Errno.ETIMEDOUT, array.Error);
    }

    [Fact]
    public void All_TheFirstFailureInSignalOrderWins_NotTheLowestIndex_AndTiesGoToTheLowerIndex()
    {
        FenceSource a = Mock(), b = Mock(), c = Mock(), d = Mock();
        var array = MockArray(a, b, c, d);
        array.EnableSignaling();

        // The walk waits on a; c and b fail before a signals, c first: c's error is the array's.
        c.SignalWithTimestamp(-Errno.ETIMEDOUT, TimeSpan.FromTicks(100));
        b.SignalWithTimestamp(-Errno.EIO, TimeSpan.FromTicks(200));
        a.SignalWithTimestamp(TimeSpan.FromTicks(300));
        Assert.False(array.IsSignaled);
        d.SignalWithTimestamp(TimeSpan.FromTicks(400));

        Assert.Equal(-Errno.ETIMEDOUT, array.Error);
        Assert.Equal(TimeSpan.FromTicks(400), array.Timestamp); // the latest member's time

        FenceSource e = Mock(), f = Mock();
        var tie = MockArray(e, f);
        tie.EnableSignaling();
        f.SignalWithTimestamp(-Errno.EIO, TimeSpan.FromTicks(50));
        e.SignalWithTimestamp(-Errno.ECANCELED, TimeSpan.FromTicks(50));
        Assert.Equal(-Errno.ECANCELED, tie.Error);
    }

    [Fact]
    public void All_MembersSignallingInReverseOrder_SignalTheArrayOnlyWithTheLastOne()
    {
        FenceSource[] members = [Mock(), Mock(), Mock(), Mock()];
        var array = MockArray(members);
        array.EnableSignaling();
        for (int i = members.Length - 1; i > 0; i--)
        {
            members[i].SignalWithTimestamp(TimeSpan.FromTicks(10 - i));
            Assert.False(array.IsSignaled);
        }

        members[0].SignalWithTimestamp(TimeSpan.FromTicks(10));
        Assert.True(array.IsSignaled);
        Assert.Equal(0, array.PendingCount);
    }

    [Fact]
    public void All_WaitsWithOneCallbackNode_WhateverTheMemberCount()
    {
        // Before the walk: one 48-byte node per member. Now one node for the array, registered on one
        // member at a time.
        FenceSource[] members = [Mock(), Mock(), Mock(), Mock(), Mock(), Mock(), Mock(), Mock()];
        var array = MockArray(members);
        long before = GC.GetAllocatedBytesForCurrentThread();
        array.EnableSignaling();
        long enableBytes = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(1, members[0].LinkedCallbackCellsForTesting());
        Assert.All(members[1..], m => Assert.Equal(0, m.LinkedCallbackCellsForTesting()));
        members[0].SignalWithTimestamp(TimeSpan.FromTicks(1));
        Assert.Equal(1, members[1].LinkedCallbackCellsForTesting());
        Assert.True(enableBytes is > 0 and <= 48, $"enable allocated {enableBytes} B");
    }

    [Fact]
    public void NoMemberErrorGivesStatusOne()
    {
        FenceSource a = Mock(), b = Mock();
        var array = MockArray(a, b);
        array.EnableSignaling();

        a.Signal();
        b.Signal();

        Assert.Equal(1, array.Status);
    }

    [Fact]
    public void Polling_AllArraySignalsWithoutSignallingEverEnabled()
    {
        FenceSource a = Mock(), b = Mock();
        var array = MockArray(a, b);
        a.Signal();
        bool half = array.Poll();
        b.Signal();

        bool all = array.Poll();

        Assert.False(half);
        Assert.True(all);
        Assert.False(array.IsSignalingEnabled);
    }

    [Fact]
    public void Polling_AnyArrayNeedsOneMemberWithoutEnabling()
    {
        FenceSource a = Mock(), b = Mock();
        var array = Any(a, b);
        b.Signal();

        Assert.False(array.IsSignaled); // a plain read does not poll
        Assert.True(array.Poll());
        Assert.False(array.IsSignalingEnabled);
    }

    [Fact]
    public void Polling_ReportsTheFirstFailedMembersError()
    {
        FenceSource a = Mock(), b = Mock();
        var array = MockArray(a, b);
        a.Signal(-Errno.EIO);
        b.Signal();

        array.Poll();
        int status = array.Status;

        Assert.Equal(-Errno.EIO, status);
    }

    [Fact]
    public void Polling_HardwarePollOfAMemberIsSeen()
    {
        var hw = new TestFences.HookedFence(FenceContext.Allocate(), 1);
        var array = MockArray(hw);
        hw.HardwareDone = true;

        Assert.True(array.Poll());
    }

    [Fact]
    public void Deadline_IsForwardedToEveryMember()
    {
        var members = Enumerable.Range(0, 3).Select(_ => new TestFences.HookedFence(FenceContext.Allocate(), 1)).ToArray();
        var array = MockArray(members);

        array.SetDeadline(TimeSpan.FromTicks(777));

        Assert.All(members, m => Assert.Equal(TimeSpan.FromTicks(777), m.Deadline));
    }

    [Fact]
    public void ForEach_ArrayYieldsMembersPlainFenceOnceNullNothing()
    {
        FenceSource a = Mock(), b = Mock();
        var array = MockArray(a, b);
        var fromArray = new List<Fence>();
        var fromPlain = new List<Fence>();
        int fromNull = 0;

        foreach (Fence f in FenceArray.ForEach(array))
        {
            fromArray.Add(f);
        }

        foreach (Fence f in FenceArray.ForEach(a))
        {
            fromPlain.Add(f);
        }

        foreach (Fence _ in FenceArray.ForEach(null))
        {
            fromNull++;
        }

        Assert.Equal([a, b], fromArray);
        Assert.Equal([a], fromPlain);
        Assert.Equal(0, fromNull);
    }

    [Fact]
    public void ForEach_AllocatesNothingForArrayPlainOrNull()
    {
        FenceSource a = Mock(), b = Mock();
        var array = MockArray(a, b);
        static int Count(Fence? head)
        {
            int n = 0;
            foreach (Fence _ in FenceArray.ForEach(head))
            {
                n++;
            }

            return n;
        }

        Count(array);
        Count(a);
        Count(null);
        long before = GC.GetAllocatedBytesForCurrentThread();
        int total = Count(array) + Count(a) + Count(null);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal((3, 0L), (total, allocated));
    }

    [Fact]
    public void FirstAndNext_FollowTheKernelsRules()
    {
        FenceSource a = Mock(), b = Mock();
        var array = MockArray(a, b);

        Assert.Null(FenceArray.First(null));
        Assert.Same(a, FenceArray.First(a));
        Assert.Same(a, FenceArray.First(array));
        Assert.Same(b, FenceArray.Next(array, 1));
        Assert.Null(FenceArray.Next(array, 2));
        Assert.Null(FenceArray.Next(a, 1));
    }

    [Fact]
    public void MatchContext_TrueOnlyWhenEveryMemberIsOnTheContext()
    {
        ulong ctx = FenceContext.Allocate();
        var same = MockArray(Mock(ctx, 1), Mock(ctx, 2));
        var mixed = MockArray(Mock(ctx, 1), Mock());

        Assert.True(FenceArray.MatchContext(same, ctx));
        Assert.False(FenceArray.MatchContext(mixed, ctx));
        Assert.True(FenceArray.MatchContext(Mock(ctx, 3), ctx));
    }

    [Fact]
    public void Nesting_ContainerMemberIsRejectedWithItsIndex()
    {
        var inner = MockArray(Mock());

        var ex = Assert.Throws<ArgumentException>(() => MockArray(Mock(), inner));

        Assert.Contains("index 1", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EmptySetIsRejected() => Assert.Throws<ArgumentException>(() => MockArray());

    [Fact]
    public void NullMemberIsRejected() => Assert.Throws<ArgumentNullException>(() => MockArray(Mock(), null!));

    [Fact]
    public void MemberSignalledConcurrentlyFromManyThreadsSignalsTheArrayOnce()
    {
        var members = Enumerable.Range(0, 256).Select(_ => Mock()).ToArray();
        var array = MockArray(members);
        var cb = new TestFences.Recorder();
        array.AddCallback(cb);

        Parallel.ForEach(members, m => m.Signal());

        Assert.Equal(1, cb.Count);
        Assert.True(array.IsSignaled);
    }

    [Fact]
    public void WaitAll_TakesTheLatestMemberTime_EvenWhenAnEarlierStampedMemberCompletesIt()
    {
        ulong ctx = FenceContext.Allocate(2);
        var m0 = new FenceSource(ctx, 1);
        var m1 = new FenceSource(ctx + 1, 1);
        var array = new FenceArray([m0, m1]);
        array.EnableSignaling();
        m1.SignalWithTimestamp(TimeSpan.FromTicks(900));
        m0.SignalWithTimestamp(TimeSpan.FromTicks(100)); // completes the array, but with the earlier time
        Assert.True(array.IsSignaled);
        Assert.Equal(TimeSpan.FromTicks(900), array.Timestamp); // never before a member it waited for
    }

    [Fact]
    public void WaitAny_TakesTheCompletingMembersTime()
    {
        ulong ctx = FenceContext.Allocate(2);
        var m0 = new FenceSource(ctx, 1);
        var m1 = new FenceSource(ctx + 1, 1);
        var array = new FenceArray([m0, m1], FenceContext.Allocate(), 1, signalOnAny: true);
        array.EnableSignaling();
        m1.SignalWithTimestamp(TimeSpan.FromTicks(300));
        Assert.Equal(TimeSpan.FromTicks(300), array.Timestamp);
        m0.SignalWithTimestamp(TimeSpan.FromTicks(400));
        Assert.Equal(TimeSpan.FromTicks(300), array.Timestamp);
    }

    /// <summary>Arrays of up to four members keep them in the array's own object, larger ones in a member
    /// array: every view of the members is the same on both sides of that boundary.</summary>
    [Theory]
    [InlineData(1, false)]
    [InlineData(3, false)]
    [InlineData(4, false)]
    [InlineData(5, false)]
    [InlineData(6, false)]
    [InlineData(4, true)]
    [InlineData(5, true)]
    public void MembersReadTheSame_AcrossTheInlineBoundary(int count, bool signalOnAny)
    {
        ulong ctx = FenceContext.Allocate(count);
        var members = new FenceSource[count];
        for (int i = 0; i < count; i++)
        {
            members[i] = new FenceSource(ctx + (ulong)i, 1);
        }

        var array = new FenceArray(members, FenceContext.Allocate(), 1, signalOnAny);
        Assert.Equal(count, array.Count);
        Assert.Equal(members, array.Fences.ToArray());
        var walked = new List<Fence>();
        foreach (Fence f in FenceArray.ForEach(array))
        {
            walked.Add(f);
        }

        Assert.Equal(members, walked);
        Assert.Same(members[0], FenceArray.First(array));
        Assert.Same(members[count - 1], FenceArray.Next(array, count - 1));
        Assert.Null(FenceArray.Next(array, count));
        Assert.False(FenceArray.MatchContext(array, ctx) && count > 1);

        array.SetDeadline(TimeSpan.FromTicks(77));
        Assert.All(members, m => Assert.Equal(TimeSpan.FromTicks(77), m.Deadline));

        array.EnableSignaling();
        for (int i = 0; i < count; i++)
        {
            Assert.Equal(signalOnAny ? i > 0 : false, array.IsSignaled);
            members[i].SignalWithTimestamp(i == 0 ? -Errno.EIO : 0, TimeSpan.FromTicks(100 + i));
        }

        Assert.True(array.IsSignaled);
        Assert.Equal(-Errno.EIO, array.Status);
        Assert.Equal(TimeSpan.FromTicks(signalOnAny ? 100 : 100 + count - 1), array.Timestamp);
    }

    [Fact]
    public void MergesOfTwoAndThree_BuildOneObjectArrays_WithTheMembersInContextOrder()
    {
        ulong ctx = FenceContext.Allocate(3);
        var a = new FenceSource(ctx + 2, 1);
        var b = new FenceSource(ctx, 1);
        var c = new FenceSource(ctx + 1, 1);

        var two = Assert.IsType<FenceArray>(FenceUnwrap.Merge(a, b));
        Assert.Equal(new Fence[] { b, a }, two.Fences.ToArray());
        var three = Assert.IsType<FenceArray>(FenceUnwrap.Merge(a, b, c));
        Assert.Equal(new Fence[] { b, c, a }, three.Fences.ToArray());

        long before = GC.GetAllocatedBytesForCurrentThread();
        Fence merged = FenceUnwrap.Merge(a, b, c);
        long bytes = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(104, bytes); // one object: the array and its three members' slots
        GC.KeepAlive(merged);
    }
}
