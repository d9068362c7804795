namespace FenceCore.Tests.Fences;

/// <summary>Small fence implementations used across the tests (the kernel's "mock" fences).</summary>
internal static class TestFences
{
    public static FenceSource Pending(ulong? context = null, ulong seqno = 1) =>
        new(context ?? FenceContext.Allocate(), seqno);

    /// <summary>Records every callback invocation in order.</summary>
    public sealed class Recorder : FenceCallback
    {
        private int _count;
        public List<string> Log { get; } = [];
        public string Name { get; init; } = "";
        public int Count => Volatile.Read(ref _count);

        protected internal override void Invoke(Fence fence)
        {
            Interlocked.Increment(ref _count);
            lock (Log)
            {
                Log.Add(Name);
            }
        }
    }

    /// <summary>A fence whose hooks are observable.</summary>
    public sealed class HookedFence(ulong context, ulong seqno, bool enableResult = true) : FenceSource(context, seqno)
    {
        public int EnableCalls;
        public volatile bool HardwareDone;
        public int PollError;
        public List<TimeSpan> DeadlinesSeen { get; } = [];

        protected override bool OnEnableSignaling()
        {
            Interlocked.Increment(ref EnableCalls);
            return enableResult;
        }

        protected override bool PollSignaled()
        {
            if (!HardwareDone)
            {
                return false;
            }

            if (PollError != 0 && !IsSignaled)
            {
                SetError(PollError);
            }

            return true;
        }

        protected override void OnDeadlineSet(TimeSpan deadline)
        {
            lock (DeadlinesSeen)
            {
                DeadlinesSeen.Add(deadline);
            }
        }
    }
}
