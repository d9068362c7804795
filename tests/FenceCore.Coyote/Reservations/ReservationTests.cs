using Microsoft.Coyote.Specifications;
using Xunit.Abstractions;

namespace FenceCore.Coyote.Reservations;

/// <summary>
/// Reservation writers (AddFence with same-context replacement and appends, AddFences batches, a
/// container added as its leaves, Replace) against unlocked readers (Snapshot, Fences(usage),
/// TestSignaled, GetSingleton). Invariants: every reader sees a whole snapshot (a batch all or nothing,
/// a Replace all or nothing); per context, a reader never sees an older newest fence than it saw before
/// (unless that one signalled and was pruned); an older same-context fence never replaces a newer one;
/// no fence added is ever lost (at the end each is present, signalled, or covered by a later fence of
/// its context at an equal-or-stronger usage).
/// </summary>
public sealed class ReservationTests(ITestOutputHelper output)
{
    /// <summary>The fences of one scenario, by role.</summary>
    private sealed class Cast
    {
        public Cast()
        {
            ulong a = FenceContext.Allocate();
            A0 = new FenceSource(a, 1);
            A1 = new FenceSource(a, 2);
            A2 = new FenceSource(a, 3);
            K = new FenceSource(FenceContext.Allocate(), 1);
            B = new FenceSource(FenceContext.Allocate(), 1);
            C = new FenceSource(FenceContext.Allocate(), 1);
            D1 = new FenceSource(FenceContext.Allocate(), 1);
            D2 = new FenceSource(FenceContext.Allocate(), 1);
            E = new FenceSource(FenceContext.Allocate(), 1);
            R = new FenceSource(FenceContext.Allocate(), 1);
        }

        /// <summary>One context, seqnos 1 &lt; 2 &lt; 3: A1 is there first (and signals), A2 replaces it, A0 is older.</summary>
        public FenceSource A0 { get; }

        public FenceSource A1 { get; }

        public FenceSource A2 { get; }

        /// <summary>A kernel fence that never signals: every level must see it.</summary>
        public FenceSource K { get; }

        /// <summary>An AddFences batch (two contexts).</summary>
        public FenceSource B { get; }

        public FenceSource C { get; }

        /// <summary>The leaves of a FenceArray added with AddFence.</summary>
        public FenceSource D1 { get; }

        public FenceSource D2 { get; }

        /// <summary>Replaced by <see cref="R"/> (Replace of E's context).</summary>
        public FenceSource E { get; }

        public FenceSource R { get; }

        public ulong ContextA => A0.Context;
    }

    private static bool Has(ReservationEntry[] s, Fence f) => Array.Exists(s, e => ReferenceEquals(e.Fence, f));

    /// <summary>The newest A fence in the snapshot, or null.</summary>
    private static Fence? NewestA(ReservationEntry[] s, Cast c)
    {
        Fence? newest = null;
        foreach (ReservationEntry e in s)
        {
            if (e.Fence.Context == c.ContextA && (newest is null || Fence.IsLater(e.Fence, newest)))
            {
                newest = e.Fence;
            }
        }

        return newest;
    }

    /// <summary>What every snapshot must satisfy on its own.</summary>
    private static void AssertWhole(ReservationEntry[] s, Cast c, string who)
    {
        Specification.Assert(Has(s, c.K), "{0}: the never-signalled kernel fence is missing", who);
        Specification.Assert(Has(s, c.B) == Has(s, c.C), "{0}: saw half of the AddFences batch", who);
        Specification.Assert(Has(s, c.D1) == Has(s, c.D2), "{0}: saw half of the array's leaves", who);
        Specification.Assert(Has(s, c.E) != Has(s, c.R), "{0}: Replace seen half done (E {1}, R {2})", who, Has(s, c.E), Has(s, c.R));
        Specification.Assert(!(Has(s, c.A1) && Has(s, c.A2)), "{0}: A2 was added as a second entry instead of replacing A1", who);
        for (int i = 0; i < s.Length; i++)
        {
            for (int j = i + 1; j < s.Length; j++)
            {
                Specification.Assert(!ReferenceEquals(s[i].Fence, s[j].Fence), "{0}: the same fence takes two slots", who);
            }

            FenceUsage expected = ReferenceEquals(s[i].Fence, c.K) ? FenceUsage.Kernel
                : s[i].Fence.Context == c.ContextA ? FenceUsage.Write
                : ReferenceEquals(s[i].Fence, c.R) ? FenceUsage.Bookkeep
                : FenceUsage.Read;
            Specification.Assert(s[i].Usage == expected, "{0}: an entry has usage {1}, added with {2}", who, s[i].Usage, expected);
        }
    }

    /// <summary>Per context A, never older than the newest seen before, unless that one signalled (pruned).</summary>
    private static void AssertNotOlder(Fence? before, Fence? now, string who)
    {
        if (before is null || before.IsSignaled)
        {
            return;
        }

        Specification.Assert(now is not null && Fence.IsLaterOrSame(now, before),
            "{0}: the newest A fence went back from seqno {1} to {2}", who, before.Seqno, now?.Seqno ?? 0);
    }

    [Fact]
    public void WritersAgainstUnlockedReaders_WholeSnapshotsNoLostFenceReplacementRulesHold() => CoyoteHarness.Check(output, async () =>
    {
        var c = new Cast();
        var resv = new Reservation("coyote");
        resv.AddFence(c.K, FenceUsage.Kernel);
        resv.AddFence(c.A1, FenceUsage.Write);
        resv.AddFence(c.E, FenceUsage.Read);

        Task newer = Task.Run(() => resv.AddFence(c.A2, FenceUsage.Write)); // same context, later: replaces A1
        Task older = Task.Run(() => resv.AddFence(c.A0, FenceUsage.Write)); // same context, older: never replaces a newer one
        Task batch = Task.Run(() => resv.AddFences([c.B, c.C], FenceUsage.Read));
        Task container = Task.Run(() => resv.AddFence(new FenceArray([c.D1, c.D2]), FenceUsage.Read));
        Task replace = Task.Run(() => resv.Replace(c.E.Context, c.R, FenceUsage.Bookkeep));
        Task signal = Task.Run(() => c.A1.Signal()); // A1 may be pruned by any later write

        Task snapshots = Task.Run(() =>
        {
            Fence? newest = null;
            for (int i = 0; i < 3; i++)
            {
                ReservationEntry[] s = resv.Snapshot.ToArray();
                AssertWhole(s, c, "Snapshot");
                Fence? now = NewestA(s, c);
                AssertNotOlder(newest, now, "Snapshot");
                newest = now;
            }
        });

        Task queries = Task.Run(() =>
        {
            // Fences(usage) filters one snapshot by usage; a batch is all or nothing in it too.
            var seen = new List<ReservationEntry>();
            foreach (ReservationEntry e in resv.Fences(FenceUsage.Read))
            {
                Specification.Assert(e.Usage <= FenceUsage.Read, "Fences(Read) yielded usage {0}", e.Usage);
                seen.Add(e);
            }

            ReservationEntry[] view = [.. seen];
            Specification.Assert(Has(view, c.K), "Fences(Read): the kernel fence is missing");
            Specification.Assert(Has(view, c.B) == Has(view, c.C), "Fences(Read): saw half of the batch");
            Specification.Assert(Has(view, c.D1) == Has(view, c.D2), "Fences(Read): saw half of the array's leaves");
            Specification.Assert(!Has(view, c.R), "Fences(Read) yielded the bookkeep fence");

            Specification.Assert(!resv.TestSignaled(FenceUsage.Kernel), "TestSignaled(Kernel) true while the kernel fence is pending");
            Specification.Assert(ReferenceEquals(resv.GetSingleton(FenceUsage.Kernel), c.K), "GetSingleton(Kernel) is not the one kernel fence");

            // At Read level K is always pending: the singleton is K alone or an array holding K.
            Fence? single = resv.GetSingleton(FenceUsage.Read);
            Specification.Assert(single is FenceArray || ReferenceEquals(single, c.K), "GetSingleton(Read) is neither K nor an array");
            var members = new List<Fence>();
            foreach (Fence m in FenceArray.ForEach(single))
            {
                members.Add(m);
            }

            Specification.Assert(members.Contains(c.K), "GetSingleton(Read) lost the kernel fence");
            Specification.Assert(members.Contains(c.B) == members.Contains(c.C), "GetSingleton(Read) holds half of the batch");
            Specification.Assert(members.Contains(c.D1) == members.Contains(c.D2), "GetSingleton(Read) holds half of the array's leaves");
            Specification.Assert(!members.Contains(c.R), "GetSingleton(Read) holds the bookkeep fence");
        });

        await newer;
        await older;
        await batch;
        await container;
        await replace;
        await signal;
        await snapshots;
        await queries;

        ReservationEntry[] final = resv.Snapshot.ToArray();
        AssertWhole(final, c, "final");

        // No fence added is lost: present, signalled, or covered by a later same-context fence at an
        // equal-or-stronger usage. E is the one that Replace removes (R stands for it).
        foreach ((Fence f, FenceUsage u) in (ReadOnlySpan<(Fence, FenceUsage)>)[
            (c.K, FenceUsage.Kernel), (c.A0, FenceUsage.Write), (c.A1, FenceUsage.Write), (c.A2, FenceUsage.Write),
            (c.B, FenceUsage.Read), (c.C, FenceUsage.Read), (c.D1, FenceUsage.Read), (c.D2, FenceUsage.Read),
            (c.R, FenceUsage.Bookkeep)])
        {
            bool covered = f.IsSignaled || Array.Exists(final, e =>
                e.Fence.Context == f.Context && Fence.IsLaterOrSame(e.Fence, f) && e.Usage <= u);
            Specification.Assert(covered, "fence {0}:{1} was lost", f.Context, f.Seqno);
        }

        Specification.Assert(!Has(final, c.E) && Has(final, c.R), "Replace did not stick");
        Specification.Assert(ReferenceEquals(NewestA(final, c), c.A2), "the newest A fence is not A2");
    });

    [Fact]
    public void SameContextWritersRace_NewestAlwaysWinsAndReadersNeverGoBack() => CoyoteHarness.Check(output, async () =>
    {
        // Three writers of one context add seqnos 1, 2, 3 in any order, one of them through a batch; two
        // readers poll. Whatever the order, the newest stays and a reader never sees the newest go back.
        ulong ctx = FenceContext.Allocate();
        FenceSource f1 = new(ctx, 1), f2 = new(ctx, 2), f3 = new(ctx, 3);
        FenceSource other = new(FenceContext.Allocate(), 1);
        var resv = new Reservation("coyote");

        Task w1 = Task.Run(() => resv.AddFence(f1, FenceUsage.Write));
        Task w2 = Task.Run(() => resv.AddFence(f2, FenceUsage.Write));
        Task w3 = Task.Run(() => resv.AddFences([other, f3], FenceUsage.Write));

        void Reader()
        {
            Fence? newest = null;
            for (int i = 0; i < 3; i++)
            {
                Fence? now = null;
                foreach (ReservationEntry e in resv.Fences(FenceUsage.Bookkeep, includeSignaled: true))
                {
                    if (e.Fence.Context == ctx && (now is null || Fence.IsLater(e.Fence, now)))
                    {
                        now = e.Fence;
                    }
                }

                AssertNotOlder(newest, now, "reader");
                newest = now;
            }
        }

        Task r1 = Task.Run(Reader);
        Task r2 = Task.Run(Reader);
        await w1;
        await w2;
        await w3;
        await r1;
        await r2;

        ReservationEntry[] final = resv.Snapshot.ToArray();
        Specification.Assert(Has(final, f3) && Has(final, other), "the batch was lost");
        foreach (ReservationEntry e in final)
        {
            // An older fence may sit beside a newer one (appended when it came later), but f3 is never
            // replaced, and each fence takes at most one slot.
            Specification.Assert(Array.FindAll(final, x => ReferenceEquals(x.Fence, e.Fence)).Length == 1, "a fence takes two slots");
        }
    });
}
