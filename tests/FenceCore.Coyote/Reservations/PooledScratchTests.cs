using Microsoft.Coyote.Specifications;
using Xunit.Abstractions;

namespace FenceCore.Coyote.Reservations;

/// <summary>
/// The only pooling in FenceCore: scratch arrays rented from <c>ArrayPool&lt;Fence&gt;.Shared</c> inside
/// one call (<see cref="Reservation.GetSingleton"/>, and <see cref="FenceUnwrap.Merge"/> above its
/// inline capacity), cleared and returned before the call returns. Invariant: a result never refers to
/// a rented array, so an array reused by a later rent (on this or another task) never changes a result
/// still held; and a result holds exactly the caller's pending fences, while fences signal concurrently.
/// </summary>
public sealed class PooledScratchTests(ITestOutputHelper output)
{
    private static FenceSource[] NewFences(int n)
    {
        var fences = new FenceSource[n];
        for (int i = 0; i < n; i++)
        {
            fences[i] = new FenceSource(FenceContext.Allocate(), 1);
        }

        return fences;
    }

    private static HashSet<Fence> Members(Fence? f)
    {
        var set = new HashSet<Fence>(ReferenceEqualityComparer.Instance);
        foreach (Fence m in FenceArray.ForEach(f))
        {
            set.Add(m);
        }

        return set;
    }

    /// <summary>Two rounds of rent-and-return on one task; the first round's results are checked after the
    /// second reused the pool.</summary>
    private static void Client(Fence[] singletonInputs, Fence[] mergeInputs, string who)
    {
        var resv = new Reservation(who);
        resv.AddFences(singletonInputs, FenceUsage.Read);
        Fence? first = resv.GetSingleton(FenceUsage.Read);
        Fence firstMerge = FenceUnwrap.Merge(mergeInputs);
        HashSet<Fence> before = Members(first), beforeMerge = Members(firstMerge);

        // Round two rents again (the pool hands back the arrays just returned).
        _ = resv.GetSingleton(FenceUsage.Read);
        _ = FenceUnwrap.Merge(mergeInputs);

        Specification.Assert(Members(first).SetEquals(before), "{0}: a singleton changed after its scratch array was reused", who);
        Specification.Assert(Members(firstMerge).SetEquals(beforeMerge), "{0}: a merge changed after its scratch array was reused", who);
        foreach (Fence m in before)
        {
            Specification.Assert(Array.IndexOf(singletonInputs, m) >= 0, "{0}: the singleton holds a fence that is not its own", who);
        }

        foreach (Fence m in beforeMerge)
        {
            Specification.Assert(Array.IndexOf(mergeInputs, m) >= 0 || m.IsSignaled, "{0}: the merge holds a fence that is not its own", who);
        }

        foreach (Fence f in singletonInputs)
        {
            Specification.Assert(f.IsSignaled || before.Contains(f), "{0}: the singleton lost a pending fence", who);
        }
    }

    [Fact]
    public void ConcurrentRentsAgainstSignals_ResultsNeverShareOrChangeWithAReturnedArray() => CoyoteHarness.Check(output, async () =>
    {
        FenceSource[] a = NewFences(3), b = NewFences(3);
        FenceSource[] ma = NewFences(9), mb = NewFences(9); // more than Merge's inline capacity of 8: rented
        Task ta = Task.Run(() => Client(a, ma, "A"));
        Task tb = Task.Run(() => Client(b, mb, "B"));
        Task signaller = Task.Run(() =>
        {
            a[1].Signal();
            mb[4].Signal();
        });
        await ta;
        await tb;
        await signaller;
    });
}
