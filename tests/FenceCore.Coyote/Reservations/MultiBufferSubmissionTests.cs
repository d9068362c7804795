using Microsoft.Coyote;
using Microsoft.Coyote.Specifications;
using Xunit.Abstractions;

namespace FenceCore.Coyote.Reservations;

/// <summary>
/// Multi-buffer submission: jobs lock two of two or three shared reservations in different orders with
/// <see cref="ReservationAcquireContext.LockAll"/> (wait-die), add their fence to each through the
/// context collecting dependencies, and unlock; optionally a single-object writer adds with
/// <see cref="Reservation.AddFenceWithDependencies"/> without the lock. Invariants: no deadlock or
/// livelock (the lock spins with SpinWait, which Coyote controls; a path that spins to the step bound
/// fails the test); the lock excludes; every two jobs that share an object are ordered, exactly one
/// depending on the other; and the dependency graph is acyclic.
/// </summary>
public sealed class MultiBufferSubmissionTests(ITestOutputHelper output)
{
    /// <summary>A deadlock or livelock of the spinning lock shows up as a path that never ends.
    /// Unfair strategies (prioritization, delay bounding) can starve the task a spinner waits for; at the
    /// unfair bound (1,000, several times a normal path) Coyote continues the path fairly, and a path that
    /// then reaches the fair bound (20,000) is a real livelock and fails the test. Checked by mutation: with
    /// the bug injected, this configuration reports it within a few dozen iterations.</summary>
    private static Configuration FailOnStepBound(Configuration c) =>
        c.WithMaxSchedulingSteps(1_000, 20_000).WithFailureOnMaxStepsBoundEnabled(true);

    private sealed class Job(string name, params Reservation[] objects)
    {
        public string Name { get; } = name;

        public Reservation[] Objects { get; } = objects;

        public FenceSource Fence { get; } = new(FenceContext.Allocate(), 1);

        public List<Fence> Dependencies { get; } = [];

        public int Backoffs { get; set; }
    }

    /// <summary>Per object: how many contexts think they hold it right now (must never exceed 1).</summary>
    private sealed class Exclusion
    {
        private readonly Dictionary<Reservation, int[]> _inside = [];

        public Exclusion(IEnumerable<Reservation> objects)
        {
            foreach (Reservation r in objects)
            {
                _inside[r] = new int[1];
            }
        }

        public void Enter(Reservation r) =>
            Specification.Assert(Interlocked.Increment(ref _inside[r][0]) == 1, "two contexts hold {0} at once", r.Name);

        public void Exit(Reservation r) => Interlocked.Decrement(ref _inside[r][0]);
    }

    private static void SubmitLocked(Job job, Exclusion exclusion)
    {
        using var ctx = new ReservationAcquireContext();
        ctx.LockAll(job.Objects);
        foreach (Reservation r in job.Objects)
        {
            Specification.Assert(ReferenceEquals(Volatile.Read(ref r.LockOwner), ctx), "{0}: LockAll returned without holding {1}", job.Name, r.Name);
            exclusion.Enter(r);
        }

        foreach (Reservation r in job.Objects)
        {
            ctx.AddFence(r, job.Fence, FenceUsage.Write, FenceUsages.WaitLevelFor(write: true), job.Dependencies);
        }

        foreach (Reservation r in job.Objects)
        {
            exclusion.Exit(r);
        }

        job.Backoffs = ctx.Backoffs;
        ctx.UnlockAll();
    }

    private static void SubmitLockFree(Job job)
    {
        Specification.Assert(job.Objects.Length == 1, "a lock-free writer touches one object");
        job.Objects[0].AddFenceWithDependencies(job.Fence, FenceUsage.Write, FenceUsages.WaitLevelFor(write: true), job.Dependencies);
    }

    /// <summary>No fence signals in these scenarios, so every job that shares an object with another must
    /// have the other as a dependency or be one of its dependencies, never both and never neither; and
    /// following dependencies never leads back to where it started.</summary>
    private static void AssertOrderedAndAcyclic(Job[] jobs)
    {
        for (int i = 0; i < jobs.Length; i++)
        {
            Specification.Assert(!jobs[i].Dependencies.Contains(jobs[i].Fence), "{0} depends on itself", jobs[i].Name);
            for (int j = i + 1; j < jobs.Length; j++)
            {
                if (!jobs[i].Objects.Intersect(jobs[j].Objects).Any())
                {
                    continue;
                }

                bool iAfterJ = jobs[i].Dependencies.Contains(jobs[j].Fence);
                bool jAfterI = jobs[j].Dependencies.Contains(jobs[i].Fence);
                Specification.Assert(iAfterJ != jAfterI, "{0} and {1} share an object but are {2}", jobs[i].Name, jobs[j].Name,
                    iAfterJ ? "each waiting for the other (a cycle)" : "unordered");
            }
        }

        // Depth-first search for a cycle over fence -> dependency edges.
        var byFence = jobs.ToDictionary(j => (Fence)j.Fence);
        var state = new Dictionary<Job, int>(); // 0 new, 1 on stack, 2 done
        bool Cycle(Job job)
        {
            state[job] = 1;
            foreach (Fence d in job.Dependencies)
            {
                if (!byFence.TryGetValue(d, out Job? next))
                {
                    continue;
                }

                int s = state.GetValueOrDefault(next);
                if (s == 1 || (s == 0 && Cycle(next)))
                {
                    return true;
                }
            }

            state[job] = 2;
            return false;
        }

        foreach (Job job in jobs)
        {
            Specification.Assert(state.GetValueOrDefault(job) != 0 || !Cycle(job), "the dependency graph has a cycle through {0}", job.Name);
        }
    }

    private static void AssertAllAdded(Job[] jobs)
    {
        foreach (Job job in jobs)
        {
            foreach (Reservation r in job.Objects)
            {
                bool present = false;
                foreach (ReservationEntry e in r.Snapshot)
                {
                    present |= ReferenceEquals(e.Fence, job.Fence);
                }

                Specification.Assert(present, "{0}'s fence is missing from {1}", job.Name, r.Name);
                Specification.Assert(!r.IsLocked, "{0} is still locked after every job finished", r.Name);
            }
        }
    }

    [Fact]
    public void ThreeJobsLockTwoOfThreeInCyclicOrders_NoDeadlockNoCycle() => CoyoteHarness.Check(output, async () =>
    {
        Reservation x = new("X"), y = new("Y"), z = new("Z");
        var exclusion = new Exclusion([x, y, z]);
        Job[] jobs = [new("J1", x, y), new("J2", y, z), new("J3", z, x)];
        Task[] running = [.. jobs.Select(j => Task.Run(() => SubmitLocked(j, exclusion)))];
        foreach (Task t in running)
        {
            await t;
        }

        AssertAllAdded(jobs);
        AssertOrderedAndAcyclic(jobs);
    }, configure: FailOnStepBound);

    [Fact]
    public void TwoJobsLockTwoInOppositeOrdersWithALockFreeWriter_NoDeadlockNoCycle() => CoyoteHarness.Check(output, async () =>
    {
        Reservation x = new("X"), y = new("Y");
        var exclusion = new Exclusion([x, y]);
        Job j1 = new("J1", x, y), j2 = new("J2", y, x), w = new("W", x);
        Task t1 = Task.Run(() => SubmitLocked(j1, exclusion));
        Task t2 = Task.Run(() => SubmitLocked(j2, exclusion));
        Task tw = Task.Run(() => SubmitLockFree(w));
        await t1;
        await t2;
        await tw;

        Job[] jobs = [j1, j2, w];
        AssertAllAdded(jobs);
        AssertOrderedAndAcyclic(jobs);
    }, configure: FailOnStepBound);
}
