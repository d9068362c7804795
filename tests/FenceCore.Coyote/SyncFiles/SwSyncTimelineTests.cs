using Microsoft.Coyote.Specifications;
using Xunit.Abstractions;

namespace FenceCore.Coyote.SyncFiles;

/// <summary>
/// SwSyncTimeline increments against fence creation and close: points signal in seqno order and never
/// before the value reaches them; close signals every pending point with -ENOENT; a point created at a
/// reached value is born signalled. Nobody polls IsSignaled here: a poll may signal a reached point on
/// the polling thread ahead of the drainer, as in the kernel, which is outside the ordering promise.
/// </summary>
public sealed class SwSyncTimelineTests(ITestOutputHelper output)
{
    /// <summary>Records the order points signal in and what the timeline said when each did.</summary>
    private sealed class SignalLog(SwSyncTimeline timeline)
    {
        private readonly uint[] _order = new uint[16];
        private int _count;
        private int _early;

        public int Count => Volatile.Read(ref _count);

        public uint this[int i] => _order[i];

        public bool AnySignalledEarly => Volatile.Read(ref _early) != 0;

        public void Watch(Fence point)
        {
            point.AddCallback(f =>
            {
                if (f.Error == 0 && Fence.IsSeqnoLater(f.Seqno, timeline.Value, seqno64: false))
                {
                    Volatile.Write(ref _early, 1);
                }

                _order[Interlocked.Increment(ref _count) - 1] = (uint)f.Seqno;
            });
        }
    }

    [Fact]
    public void IncrementAgainstCreate_PointsSignalInOrderAndNeverBeforeReached() => CoyoteHarness.Check(output, async () =>
    {
        using var timeline = new SwSyncTimeline("coyote");
        var log = new SignalLog(timeline);
        Fence p3 = timeline.CreateFence(3);
        log.Watch(p3);

        Task<Fence[]> creator = Task.Run(() =>
        {
            Fence p1 = timeline.CreateFence(1);
            log.Watch(p1);
            Fence p2 = timeline.CreateFence(2);
            log.Watch(p2);
            return new[] { p1, p2 };
        });
        Task inc1 = Task.Run(() => timeline.Increment());
        Task inc2 = Task.Run(() => timeline.Increment(2));

        Fence[] created = await creator;
        await inc1;
        await inc2;

        Specification.Assert(timeline.Value == 3, "value {0} after 1 + 2 increments", timeline.Value);
        Specification.Assert(!log.AnySignalledEarly, "a point signalled before the timeline reached it");
        foreach (Fence point in (Fence[])[.. created, p3])
        {
            Specification.Assert(point.IsSignaled && point.Error == 0, "point {0} not signalled cleanly at value 3", point.Seqno);
        }

        // Watched points that signalled through the drainer did so in seqno order (a point created at a
        // reached value is born signalled and never logged).
        for (int i = 1; i < log.Count; i++)
        {
            Specification.Assert(log[i] > log[i - 1], "points signalled out of order: {0} after {1}", log[i], log[i - 1]);
        }

        Specification.Assert(timeline.PendingCount == 0, "{0} points left pending", timeline.PendingCount);
    });

    [Fact]
    public void CreateAtReachedValue_IsBornSignalled_WhileIncrementsRace() => CoyoteHarness.Check(output, async () =>
    {
        using var timeline = new SwSyncTimeline("coyote");
        Task inc = Task.Run(() => timeline.Increment());
        Task<(uint Before, Fence Point)> creator = Task.Run(() =>
        {
            uint before = timeline.Value;
            return (before, timeline.CreateFence(1));
        });

        await inc;
        (uint before, Fence point) = await creator;
        Specification.Assert(before < 1 || point.IsSignaled, "a point at a value already reached was created pending");
        Specification.Assert(point.IsSignaled, "point 1 pending after the timeline reached 1");
    });

    [Fact]
    public void CloseAgainstIncrementAndCreate_PendingPointsGetEnoentAndReachedOnesSignalCleanly() => CoyoteHarness.Check(output, async () =>
    {
        var timeline = new SwSyncTimeline("coyote");
        var log = new SignalLog(timeline);
        Fence p1 = timeline.CreateFence(1);
        Fence p2 = timeline.CreateFence(2);
        log.Watch(p1);
        log.Watch(p2);

        Task<Fence?> creator = Task.Run(() =>
        {
            try
            {
                Fence p3 = timeline.CreateFence(3);
                log.Watch(p3);
                return p3;
            }
            catch (ObjectDisposedException)
            {
                return null; // closed first
            }
        });
        Task<bool> inc = Task.Run(() =>
        {
            try
            {
                timeline.Increment();
                return true;
            }
            catch (ObjectDisposedException)
            {
                return false;
            }
        });
        Task close = Task.Run(timeline.Close);

        Fence? p3 = await creator;
        bool incremented = await inc;
        await close;

        Specification.Assert(timeline.IsClosed && timeline.PendingCount == 0, "close left points pending");
        Specification.Assert(timeline.Value == (incremented ? 1u : 0u), "value {0}, incremented {1}", timeline.Value, incremented);
        Specification.Assert(!log.AnySignalledEarly, "a point signalled cleanly before the timeline reached it");
        Specification.Assert(p1.IsSignaled && p1.Error == (incremented ? 0 : -Errno.ENOENT),
            "point 1: error {0}, incremented {1}", p1.Error, incremented);
        Specification.Assert(p2.IsSignaled && p2.Error == -Errno.ENOENT, "point 2: error {0}, expected -ENOENT", p2.Error);
        Specification.Assert(p3 is null || (p3.IsSignaled && p3.Error == -Errno.ENOENT), "point 3 not closed with -ENOENT");
        for (int i = 1; i < log.Count; i++)
        {
            Specification.Assert(log[i] > log[i - 1], "points signalled out of order: {0} after {1}", log[i], log[i - 1]);
        }
    });
}
