using Microsoft.Coyote.Specifications;
using Xunit.Abstractions;

namespace FenceCore.Coyote.Containers;

/// <summary>
/// FenceArray's pending count and first error, for signal-on-all and signal-on-any: the array signals
/// exactly once, only when its rule is met, with an error that a signalled member actually carried;
/// and that error is final from the moment the array is seen signalled.
/// </summary>
public sealed class FenceArrayTests(ITestOutputHelper output)
{
    private sealed class ArrayWatch
    {
        private int _runs;
        private int _ruleMetWhenSignalled = 1;
        private int _errorSeen;

        public int Runs => Volatile.Read(ref _runs);

        public bool RuleMetWhenSignalled => Volatile.Read(ref _ruleMetWhenSignalled) != 0;

        public int ErrorSeen => Volatile.Read(ref _errorSeen);

        /// <summary>Adds the watching callback, which also enables signalling. If the enable itself
        /// completes the array, AddCallback returns false and the watch records what it sees right away.</summary>
        public void Attach(FenceArray array)
        {
            if (array.AddCallback(_ => Record(array)) is null)
            {
                Specification.Assert(array.IsSignaled, "AddCallback refused on a pending array");
                Record(array);
            }
        }

        private void Record(FenceArray array)
        {
            int signalled = 0;
            foreach (Fence m in FenceArray.ForEach(array))
            {
                signalled += m.IsSignaled ? 1 : 0;
            }

            bool met = array.SignalOnAny ? signalled >= 1 : signalled == array.Count;
            Volatile.Write(ref _ruleMetWhenSignalled, met ? 1 : 0);
            Volatile.Write(ref _errorSeen, array.Error);
            Interlocked.Increment(ref _runs);
        }
    }

    private static FenceSource[] Members(int n)
    {
        ulong ctx = FenceContext.Allocate();
        var members = new FenceSource[n];
        for (int i = 0; i < n; i++)
        {
            members[i] = new FenceSource(ctx, (ulong)i + 1);
        }

        return members;
    }

    private static void AssertArrayOutcome(FenceArray array, ArrayWatch watch, int[] memberErrors)
    {
        Specification.Assert(watch.Runs == 1, "array callback ran {0} times", watch.Runs);
        Specification.Assert(watch.RuleMetWhenSignalled, "array signalled before its rule was met (any={0})", array.SignalOnAny);
        int error = array.Error;
        Specification.Assert(error == 0 || Array.IndexOf(memberErrors, error) >= 0, "array error {0} is no member's error", error);
        Specification.Assert(error == watch.ErrorSeen, "array error changed after it signalled: {0} then {1}", watch.ErrorSeen, error);
        if (!array.SignalOnAny)
        {
            // With every member signalled, a failed member's error must be reported (the first by CAS).
            bool anyFailed = Array.Exists(memberErrors, e => e < 0);
            Specification.Assert(!anyFailed || error < 0, "all members signalled, one failed, array error {0}", error);
        }
    }

    private static async Task SignalMembersAgainstEnable(bool signalOnAny)
    {
        FenceSource[] members = Members(3);
        int[] errors = [-Errno.EIO, 0, -Errno.ETIMEDOUT];
        var array = new FenceArray(members, FenceContext.Allocate(), 1, signalOnAny);
        var watch = new ArrayWatch();

        // For signal-on-all, member 0 is already signalled when signalling is enabled (the enable
        // counts it); the others race the enable.
        Task s0 = signalOnAny ? Task.Run(() => members[0].Signal(errors[0])) : Task.FromResult(members[0].Signal(errors[0]));
        Task enable = Task.Run(() => watch.Attach(array));
        Task s1 = Task.Run(() => members[1].Signal(errors[1]));
        Task s2 = Task.Run(() => members[2].Signal(errors[2]));
        await s0;
        await enable;
        await s1;
        await s2;

        Specification.Assert(array.IsSignaled, "every member signalled but the array did not");
        AssertArrayOutcome(array, watch, errors);
        if (!signalOnAny)
        {
            Specification.Assert(array.PendingCount == 0, "pending count {0} after all members signalled", array.PendingCount);
        }
    }

    [Fact]
    public void SignalOnAll_MembersSignalAgainstEnable_SignalsOnceWithAMemberError() =>
        CoyoteHarness.Check(output, () => SignalMembersAgainstEnable(signalOnAny: false));

    [Fact]
    public void SignalOnAny_MembersSignalAgainstEnable_SignalsOnceWithAMemberError() =>
        CoyoteHarness.Check(output, () => SignalMembersAgainstEnable(signalOnAny: true));

    /// <summary>The canary's race (<c>CanaryTests.BrokenAllOfWalkAdvancingAfterRegistration_IsCaughtByCoyote</c>)
    /// on the real walk: the first member signals while enabling registers the walk on it.</summary>
    [Fact]
    public void SignalOnAll_FirstMemberSignalsWhileTheWalkRegisters_TheArrayWaitsForEveryMember() =>
        CoyoteHarness.Check(output, async () =>
        {
            FenceSource[] members = Members(3);
            var array = new FenceArray(members, FenceContext.Allocate(), 1, signalOnAny: false);
            Task enable = Task.Run(array.EnableSignaling);
            Task s0 = Task.Run(() => members[0].Signal());
            await enable;
            await s0;
            members[1].Signal();
            Specification.Assert(!array.IsSignaled, "the array signalled while member 2 was pending");
            members[2].Signal();
            Specification.Assert(array.IsSignaled && array.PendingCount == 0, "every member signalled but the array did not");
        });

    private static async Task PollAgainstEnableAndSignal(bool signalOnAny)
    {
        FenceSource[] members = Members(2);
        int[] errors = [-Errno.EIO, 0];
        var array = new FenceArray(members, FenceContext.Allocate(), 1, signalOnAny);
        var watch = new ArrayWatch();

        // A poller (IsSignaled without enabling: the poll path records the error itself) races an
        // enabler and the members' signals.
        Task<bool> poll = Task.Run(() => array.Poll());
        Task enable = Task.Run(() => watch.Attach(array));
        Task s0 = Task.Run(() => members[0].Signal(errors[0]));
        Task s1 = Task.Run(() => members[1].Signal(errors[1]));
        bool polledSignalled = await poll;
        await enable;
        await s0;
        await s1;

        Specification.Assert(array.IsSignaled, "every member signalled but the array did not");
        Specification.Assert(!polledSignalled || array.IsSignaled, "poll said signalled but the array is pending");
        AssertArrayOutcome(array, watch, errors);
    }

    [Fact]
    public void SignalOnAll_PollAgainstEnableAndSignal_ErrorIsFinalOnceSignalled() =>
        CoyoteHarness.Check(output, () => PollAgainstEnableAndSignal(signalOnAny: false));

    [Fact]
    public void SignalOnAny_PollAgainstEnableAndSignal_ErrorIsFinalOnceSignalled() =>
        CoyoteHarness.Check(output, () => PollAgainstEnableAndSignal(signalOnAny: true));
}
