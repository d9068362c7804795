using FenceCore;
using FenceCore.VirtualGpu;

// A trimmed application's use of both libraries; exits non-zero when a result is not the expected one.
int failures = 0;
void Check(bool ok, string what)
{
    if (!ok)
    {
        failures++;
        Console.Error.WriteLine($"trim sample: {what} failed");
    }
}

ulong context = FenceContext.Allocate(2);
var a = new FenceSource(context, 1);
var b = new FenceSource(context + 1, 1);
int ran = 0;
a.AddCallback(_ => ran++);
Fence merged = FenceUnwrap.Merge(a, b);
Check(merged is FenceArray, "merge of two contexts builds an array");

var reservation = new Reservation("sample");
reservation.AddFence(a, FenceUsage.Write);
reservation.AddFence(b, FenceUsage.Read);
Check(!reservation.TestSignaled(FenceUsage.Read), "a reservation with pending fences is busy");
a.Signal();
b.Signal();
Check(ran == 1 && merged.Poll() && reservation.TestSignaled(FenceUsage.Bookkeep), "signals reach callbacks, arrays and reservations");

using (var timeline = new SwSyncTimeline("sample"))
{
    Fence point = timeline.CreateFence(2);
    timeline.Increment(2);
    Check(point.IsSignaled, "sw_sync increment signals its point");
}

using var gpu = new Gpu(new GpuConfig { Mode = GpuTimeMode.Virtual });
GpuClient client = gpu.CreateClient("sample");
GpuBuffer buffer = gpu.CreateBuffer(64 * 1024, "bo");
GpuJob last = null!;
for (int i = 0; i < 1000; i++)
{
    last = client.Submit(new JobDescription { Engine = EngineKind.Graphics, Duration = TimeSpan.FromMicroseconds(1), Buffers = [new BufferAccess(buffer, Write: i % 2 == 0)] });
}

gpu.RunUntilIdle();
Check(last.Finished.IsSignaled && last.Finished.Error == 0, "1,000 GPU jobs complete");

Console.WriteLine(failures == 0 ? "trim sample: ok" : $"trim sample: {failures} check(s) failed");
return failures == 0 ? 0 : 1;
