using System.Diagnostics;
using FenceCore;

// Placeholder main command until the virtual-GPU stress runner lands (issue 5): a short sample that
// drives sw_sync timelines from several threads and checks that every point signals in order.
const int timelines = 4;
const int points = 100_000;
var sw = Stopwatch.StartNew();
int outOfOrder = 0;
var tasks = Enumerable.Range(0, timelines).Select(t => Task.Run(() =>
{
    using var tl = new SwSyncTimeline($"sample-{t}");
    ulong last = 0;
    var fences = new Fence[points];
    for (uint i = 0; i < points; i++)
    {
        fences[i] = tl.CreateFence(i + 1);
        fences[i].AddCallback(f =>
        {
            if (f.Seqno != last + 1)
            {
                Interlocked.Increment(ref outOfOrder);
            }

            last = f.Seqno;
        });
    }

    for (int i = 0; i < points; i++)
    {
        tl.Increment();
    }

    return fences.Count(f => f.IsSignaled);
})).ToArray();
int signalled = (await Task.WhenAll(tasks)).Sum();
Console.WriteLine($"sample: {timelines} sw_sync timelines, {signalled:N0} fences signalled in {sw.Elapsed.TotalMilliseconds:F0} ms, {outOfOrder} out of order");
return signalled == timelines * points && outOfOrder == 0 ? 0 : 1;
