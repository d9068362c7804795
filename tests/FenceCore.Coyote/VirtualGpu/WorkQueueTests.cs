using FenceCore.VirtualGpu;
using Microsoft.Coyote.Specifications;
using Xunit.Abstractions;

namespace FenceCore.Coyote.VirtualGpu;

/// <summary>
/// The threads-mode run queue (<see cref="WorkQueue{T}"/>): posters and sleeping workers race; every item
/// is taken exactly once, no worker sleeps while an item waits (a lost wake-up shows as a deadlock: the
/// test waits for every item before it closes the queue), and closing lets every worker leave.
/// </summary>
public sealed class WorkQueueTests(ITestOutputHelper output)
{
    /// <summary>Two workers, two posters of two items each; then close. <paramref name="post"/>,
    /// <paramref name="take"/> and <paramref name="close"/> are the queue under test (the real one or the
    /// canary's copy).</summary>
    internal static async Task Scenario(Action<int> post, Func<(bool Taken, int Item)> take, Action<int> close)
    {
        const int Items = 4;
        var taken = new List<int>();
        var allTaken = new TaskCompletionSource();

        void Worker()
        {
            while (take() is (true, int item))
            {
                int count;
                lock (taken)
                {
                    taken.Add(item);
                    count = taken.Count;
                }

                if (count == Items)
                {
                    allTaken.SetResult();
                }
            }
        }

        Task[] workers = [Task.Run(Worker), Task.Run(Worker)];
        Task[] posters =
        [
            Task.Run(() =>
            {
                post(1);
                post(2);
            }),
            Task.Run(() =>
            {
                post(3);
                post(4);
            }),
        ];

        await Task.WhenAll(posters);
        await allTaken.Task; // with a lost wake-up an item waits while every worker sleeps: a deadlock
        close(workers.Length);
        await Task.WhenAll(workers);

        int[] sorted;
        lock (taken)
        {
            sorted = [.. taken.Order()];
        }

        Specification.Assert(sorted.SequenceEqual([1, 2, 3, 4]), $"items taken: {string.Join(",", sorted)}");
    }

    [Fact]
    public void PostersAndSleepingWorkers_EveryItemTakenOnce_NoLostWakeUp() => CoyoteHarness.Check(output, () =>
    {
        var queue = new WorkQueue<int>();
        return Scenario(queue.Post, () => (queue.Take(out int item), item), queue.Close);
    });
}
