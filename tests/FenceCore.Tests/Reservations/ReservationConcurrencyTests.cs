using System.Collections.Concurrent;
using Xunit.Abstractions;

namespace FenceCore.Tests.Reservations;

/// <summary>Readers against writers on many threads, and multi-buffer submissions from several threads.</summary>
public class ReservationConcurrencyTests(ITestOutputHelper output)
{
    private static readonly TimeSpan s_runFor = TimeSpan.FromMilliseconds(700);

    /// <summary>
    /// Writers add fences from their own timelines (same-context replacement) and atomic batches over
    /// three batch timelines of their own, all three at the same seqno; readers check every snapshot:
    /// a batch is never torn (the three batch timelines of a writer always show one seqno), per-context
    /// seqnos a reader sees never go backwards, and at the end no writer's last fence is lost.
    /// </summary>
    [Fact]
    public void ReadersAgainstWriters_SeeWholeSnapshots_AndNoFenceIsLost()
    {
        const int writers = 2;
        const int readers = 2;
        var resv = new Reservation();
        var writerContexts = Enumerable.Range(0, writers).Select(_ => FenceContext.Allocate()).ToArray();
        var batchBase = Enumerable.Range(0, writers).Select(_ => FenceContext.Allocate(3)).ToArray();
        var batchOwner = new Dictionary<ulong, int>();
        for (int w = 0; w < writers; w++)
        {
            for (ulong i = 0; i < 3; i++)
            {
                batchOwner[batchBase[w] + i] = w;
            }
        }

        var lastFence = new Fence?[writers];
        long writes = 0, snapshots = 0, torn = 0, backwards = 0;
        using var stop = new CancellationTokenSource(s_runFor);

        var threads = new List<Thread>();
        for (int w = 0; w < writers; w++)
        {
            int me = w;
            threads.Add(new Thread(() =>
            {
                ulong seqno = 0;
                ulong batch = 0;
                var parts = new Fence[3];
                while (!stop.IsCancellationRequested)
                {
                    var f = new FenceSource(writerContexts[me], ++seqno, FenceOptions.Seqno64);
                    resv.AddFence(f, FenceUsage.Read);
                    Volatile.Write(ref lastFence[me], f);
                    if (seqno % 4 == 0)
                    {
                        batch++;
                        for (int i = 0; i < 3; i++)
                        {
                            parts[i] = new FenceSource(batchBase[me] + (ulong)i, batch, FenceOptions.Seqno64);
                        }

                        resv.AddFences(parts, FenceUsage.Write); // replaces the previous batch, atomically
                    }

                    Interlocked.Increment(ref writes);
                }
            }));
        }

        for (int r = 0; r < readers; r++)
        {
            threads.Add(new Thread(() =>
            {
                var seen = new Dictionary<ulong, ulong>();
                var batchSeqno = new ulong[writers];
                var batchCount = new int[writers];
                while (!stop.IsCancellationRequested)
                {
                    Array.Clear(batchSeqno);
                    Array.Clear(batchCount);
                    foreach (ReservationEntry e in resv.Snapshot)
                    {
                        Assert.NotNull(e.Fence);
                        ulong ctx = e.Fence.Context;
                        if (seen.TryGetValue(ctx, out ulong prev) && e.Fence.Seqno < prev)
                        {
                            Interlocked.Increment(ref backwards);
                        }

                        seen[ctx] = e.Fence.Seqno;
                        if (batchOwner.TryGetValue(ctx, out int owner))
                        {
                            if (batchCount[owner]++ > 0 && batchSeqno[owner] != e.Fence.Seqno)
                            {
                                Interlocked.Increment(ref torn);
                            }

                            batchSeqno[owner] = e.Fence.Seqno;
                        }
                    }

                    for (int w = 0; w < writers; w++)
                    {
                        if (batchCount[w] is not (0 or 3))
                        {
                            Interlocked.Increment(ref torn);
                        }
                    }

                    Interlocked.Increment(ref snapshots);
                }
            }));
        }

        threads.ForEach(t => t.Start());
        threads.ForEach(t => Assert.True(t.Join(TimeSpan.FromSeconds(30))));

        output.WriteLine($"{writers} writers, {readers} readers, {s_runFor.TotalMilliseconds} ms: {writes} writes, {snapshots} snapshots checked, {torn} torn, {backwards} backwards");
        Assert.Equal(0, torn);
        Assert.Equal(0, backwards);
        Assert.True(writes > 0 && snapshots > 0);
        Fence[] pending = resv.GetFences(FenceUsage.Read);
        for (int w = 0; w < writers; w++)
        {
            Assert.Contains(lastFence[w]!, pending); // the newest fence of each timeline is never lost
        }
    }

    /// <summary>
    /// The cycle the issue describes, made deterministic: with per-object CAS alone, two jobs that write
    /// buffers A and B can interleave so each depends on the other. The acquire context makes the
    /// second job wait until the first has added its fence to both.
    /// </summary>
    [Fact]
    public void PerObjectCasAlone_CanFormACycle_WhichTheAcquireContextPrevents()
    {
        var a = new Reservation("A");
        var b = new Reservation("B");
        var j1 = new FenceSource(FenceContext.Allocate(), 1);
        var j2 = new FenceSource(FenceContext.Allocate(), 1);
        var deps1 = new List<Fence>();
        var deps2 = new List<Fence>();
        a.AddFenceWithDependencies(j1, FenceUsage.Write, FenceUsage.Read, deps1);
        b.AddFenceWithDependencies(j2, FenceUsage.Write, FenceUsage.Read, deps2);
        a.AddFenceWithDependencies(j2, FenceUsage.Write, FenceUsage.Read, deps2);
        b.AddFenceWithDependencies(j1, FenceUsage.Write, FenceUsage.Read, deps1);
        Assert.Contains(j2, deps1);
        Assert.Contains(j1, deps2); // a cycle: neither job can ever run

        var a2 = new Reservation("A");
        var b2 = new Reservation("B");
        var k1 = new FenceSource(FenceContext.Allocate(), 1);
        var k2 = new FenceSource(FenceContext.Allocate(), 1);
        var kd1 = new List<Fence>();
        var kd2 = new List<Fence>();
        using var c1 = new ReservationAcquireContext();
        using var c2 = new ReservationAcquireContext();
        c1.LockAll([a2, b2]);
        c1.AddFence(a2, k1, FenceUsage.Write, FenceUsage.Read, kd1);
        var second = Task.Run(() =>
        {
            c2.LockAll([b2, a2]); // blocks until c1 unlocks
            c2.AddFence(b2, k2, FenceUsage.Write, FenceUsage.Read, kd2);
            c2.AddFence(a2, k2, FenceUsage.Write, FenceUsage.Read, kd2);
            c2.UnlockAll();
        });
        Assert.False(second.Wait(50));
        c1.AddFence(b2, k1, FenceUsage.Write, FenceUsage.Read, kd1);
        c1.UnlockAll();
        Assert.True(second.Wait(TimeSpan.FromSeconds(10)));
        Assert.Empty(kd1);
        Assert.Equal([k1, k1], kd2);
    }

    [Fact]
    public void AddFence_ThroughAContextWithoutTheLock_IsRejected()
    {
        var a = new Reservation("A");
        using var ctx = new ReservationAcquireContext();
        var ex = Assert.Throws<InvalidOperationException>(() =>
            ctx.AddFence(a, new FenceSource(FenceContext.Allocate(), 1), FenceUsage.Write, FenceUsage.Read, []));
        Assert.Contains("not locked by this acquire context", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0, a.Count);
    }

    [Fact]
    public void LockAll_Twice_IsRejected()
    {
        using var ctx = new ReservationAcquireContext();
        ctx.LockAll([new Reservation()]);
        Assert.Throws<InvalidOperationException>(() => ctx.LockAll([new Reservation()]));
        Assert.Single(ctx.Held);
    }

    /// <summary>
    /// Several threads submit jobs that write or read random sets of 2–4 of 8 buffers, each through an
    /// acquire context; single-buffer jobs use the lock-free path. Every job's fence signals once all its
    /// dependencies have (an executor), so a cycle would leave fences unsignalled. Checks: every LockAll
    /// returns (no deadlock), the dependency graph is acyclic, and every fence signals.
    /// </summary>
    [Fact]
    public void MultiBufferSubmissions_NeverDeadlock_AndNeverFormACycle()
    {
        const int threadsCount = 4;
        const int buffers = 8;
        var objects = Enumerable.Range(0, buffers).Select(i => new Reservation($"bo{i}")).ToArray();
        var jobOf = new ConcurrentDictionary<Fence, int>(ReferenceEqualityComparer.Instance);
        var depsOf = new ConcurrentDictionary<int, Fence[]>();
        var executors = new ConcurrentBag<Task>();
        int nextJob = 0;
        long backoffs = 0;
        using var stop = new CancellationTokenSource(s_runFor);

        var threads = Enumerable.Range(0, threadsCount).Select(seed => new Thread(() =>
        {
            var rng = new Random(seed);
            var deps = new List<Fence>();
            while (!stop.IsCancellationRequested)
            {
                int job = Interlocked.Increment(ref nextJob);
                var fence = new FenceSource(FenceContext.Allocate(), 1);
                jobOf[fence] = job;
                deps.Clear();
                int n = rng.Next(1, 5);
                var set = Enumerable.Range(0, n).Select(_ => objects[rng.Next(buffers)]).Distinct().ToArray();
                bool write = rng.Next(2) == 0;
                FenceUsage usage = write ? FenceUsage.Write : FenceUsage.Read;
                if (set.Length == 1)
                {
                    set[0].AddFenceWithDependencies(fence, usage, FenceUsages.WaitLevelFor(write), deps);
                }
                else
                {
                    using var ctx = new ReservationAcquireContext();
                    ctx.LockAll(set);
                    foreach (Reservation obj in set)
                    {
                        ctx.AddFence(obj, fence, usage, FenceUsages.WaitLevelFor(write), deps);
                    }

                    ctx.UnlockAll();
                    Interlocked.Add(ref backoffs, ctx.Backoffs);
                }

                Fence[] myDeps = [.. deps];
                depsOf[job] = myDeps;

                // The executor: the job "runs" once its dependencies have signalled.
                executors.Add(Task.Run(async () =>
                {
                    foreach (Fence d in myDeps)
                    {
                        await d.WaitAsync();
                    }

                    fence.Signal();
                }));
            }
        })).ToList();

        threads.ForEach(t => t.Start());
        threads.ForEach(t => Assert.True(t.Join(TimeSpan.FromSeconds(30)), "a submitter never returned: deadlock"));

        // Acyclic: every dependency is on an earlier-published job along a topological order.
        var state = new Dictionary<int, int>(); // 0 unvisited, 1 on stack, 2 done
        bool HasCycle(int job)
        {
            var stack = new Stack<(int Job, int Next)>();
            stack.Push((job, 0));
            state[job] = 1;
            while (stack.Count > 0)
            {
                (int j, int next) = stack.Pop();
                Fence[] ds = depsOf.GetValueOrDefault(j, []);
                if (next < ds.Length)
                {
                    stack.Push((j, next + 1));
                    int d = jobOf[ds[next]];
                    int s = state.GetValueOrDefault(d);
                    if (s == 1)
                    {
                        return true;
                    }

                    if (s == 0)
                    {
                        state[d] = 1;
                        stack.Push((d, 0));
                    }
                }
                else
                {
                    state[j] = 2;
                }
            }

            return false;
        }

        foreach (int job in depsOf.Keys)
        {
            if (state.GetValueOrDefault(job) == 0)
            {
                Assert.False(HasCycle(job), "the dependency graph has a cycle");
            }
        }

        Assert.True(Task.WaitAll([.. executors], TimeSpan.FromSeconds(30)), "some job never signalled");
        output.WriteLine($"{threadsCount} threads, {s_runFor.TotalMilliseconds} ms: {depsOf.Count} jobs, {depsOf.Values.Sum(d => d.Length)} dependency edges, {backoffs} back-offs, 0 cycles, all signalled");
        Assert.True(depsOf.Count > 100);
    }

    [Fact]
    public void Renew_GivesAFreshYoungerStamp_AndRefusesWhileHolding()
    {
        var a = new Reservation("a");
        var ctx = new ReservationAcquireContext();
        long first = ctx.Stamp;
        var other = new ReservationAcquireContext();
        ctx.LockAll([a]);
        var ex = Assert.Throws<InvalidOperationException>(ctx.Renew);
        Assert.Contains("UnlockAll", ex.Message, StringComparison.Ordinal);
        Assert.Equal(first, ctx.Stamp); // unchanged by the refused call
        ctx.UnlockAll();
        ctx.Renew();
        Assert.True(ctx.Stamp > other.Stamp, "a renewed context must be younger than every context created before");
        ctx.Dispose();
        Assert.Throws<ObjectDisposedException>(ctx.Renew);
        other.Dispose();
    }
}
