using CsCheck;

namespace FenceCore.Tests.Properties;

/// <summary>
/// Timelines against models: a syncobj timeline and its chain (<c>drm_syncobj</c> with
/// <c>dma_fence_chain_find_seqno</c>: point p signals once every point up to the first submitted point
/// at or after p has signalled; the query payload is the highest point with all points up to it
/// signalled; a point after the last one submitted is -EINVAL; a zero-timeout wait on a point answers
/// whether it is done; a transfer takes the point's fence), and
/// sw_sync (points signal exactly when the value reaches them, in seqno order, one fence per point).
/// </summary>
public class TimelineModelTests
{
    /// <summary>An operation on a syncobj timeline: 0 add the next point (gap B), 1 signal point index A,
    /// 2 look up point A's value, 3 transfer point A to a binary syncobj.</summary>
    public readonly record struct TimelineOp(int Kind, int A, int B)
    {
        public override string ToString() => Kind switch
        {
            0 => $"add(+{B})",
            1 => $"signal #{A}",
            2 => $"find p{A}",
            _ => $"transfer p{A}",
        };
    }

    private static readonly Gen<TimelineOp> GenTimelineOp = Gen.Select(Gen.Int[0, 9], Gen.Int[0, 12], Gen.Int[1, 3],
        (k, a, b) => new TimelineOp(k < 4 ? 0 : k < 7 ? 1 : k < 9 ? 2 : 3, a, b));

    [Fact]
    public void SyncObjTimeline_AgreesWithTheChainModel() =>
        GenTimelineOp.Array[1, 25].Sample(ops =>
        {
            var syncobj = new SyncObj();
            ulong context = FenceContext.Allocate();
            var points = new List<(ulong Point, FenceSource Fence)>();
            foreach (TimelineOp op in ops)
            {
                ulong last = points.Count == 0 ? 0 : points[^1].Point;
                switch (op.Kind)
                {
                    case 0:
                        var fence = new FenceSource(context, last + (ulong)op.B);
                        points.Add((last + (ulong)op.B, fence));
                        syncobj.AddPoint(last + (ulong)op.B, fence);
                        break;
                    case 1 when points.Count > 0:
                        points[op.A % points.Count].Fence.Signal();
                        break;
                    case 2:
                    case 3:
                        ulong p = (ulong)op.A + 1;
                        bool found = syncobj.TryFindFence(p, out Fence? f);
                        Assert.Equal(p <= last, found); // a point after the last submitted is -EINVAL
                        if (found)
                        {
                            // Point p is done once every submitted point up to the first one at or after p is.
                            int upTo = points.FindIndex(x => x.Point >= p);
                            bool done = points.Take(upTo + 1).All(x => x.Fence.IsSignaled);
                            Assert.Equal(done, f!.IsSignaled);
                            Assert.Equal(done, SyncObj.Wait([syncobj], [p], TimeSpan.Zero, SyncObjWaitOptions.WaitAny, out _));
                            if (op.Kind == 3)
                            {
                                var binary = new SyncObj();
                                SyncObj.Transfer(syncobj, p, binary, 0);
                                Assert.Equal(done, binary.Fence!.IsSignaled);
                            }
                        }

                        break;
                }

                // The payload: the highest point with every point up to it signalled.
                last = points.Count == 0 ? 0 : points[^1].Point;
                int firstPending = points.FindIndex(x => !x.Fence.IsSignaled);
                ulong expected = firstPending < 0 ? last : firstPending == 0 ? 0 : points[firstPending - 1].Point;
                Assert.Equal(expected, syncobj.QueryPoint());
                Assert.Equal(last, syncobj.QueryPoint(lastSubmitted: true));
            }
        }, iter: PropertyRuns.Iterations, print: ops => string.Join("; ", ops));

    /// <summary>0: create a fence for point A; 1: increment by A.</summary>
    public readonly record struct SwSyncOp(bool Create, int A)
    {
        public override string ToString() => Create ? $"create {A}" : $"inc {A}";
    }

    private static readonly Gen<SwSyncOp> GenSwSyncOp = Gen.Select(Gen.Bool, Gen.Int[1, 12], (c, a) => new SwSyncOp(c, c ? a : (a % 4) + 1));

    [Fact]
    public void SwSync_AgreesWithTheTimelineModel() =>
        GenSwSyncOp.Array[1, 25].Sample(ops =>
        {
            using var timeline = new SwSyncTimeline("model");
            uint value = 0;
            var created = new Dictionary<uint, Fence>();
            var order = new List<ulong>();
            foreach (SwSyncOp op in ops)
            {
                if (op.Create)
                {
                    Fence f = timeline.CreateFence((uint)op.A);
                    if (created.TryGetValue((uint)op.A, out Fence? earlier) && !earlier.IsSignaled)
                    {
                        Assert.Same(earlier, f); // one pending point, one fence
                    }

                    if (!f.IsSignaled)
                    {
                        f.AddCallback(x => order.Add(x.Seqno));
                    }

                    created[(uint)op.A] = f;
                }
                else
                {
                    timeline.Increment((uint)op.A);
                    value += (uint)op.A;
                }

                Assert.Equal(value, timeline.Value);
                foreach ((uint point, Fence f) in created)
                {
                    Assert.Equal(point <= value, f.IsSignaled); // signalled exactly when reached
                }
            }

            Assert.Equal(order.Order(), order); // in seqno order
        }, iter: PropertyRuns.Iterations, print: ops => string.Join("; ", ops));
}
