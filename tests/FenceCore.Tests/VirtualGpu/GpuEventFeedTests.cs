using System.Threading.Channels;
using FenceCore.VirtualGpu;

namespace FenceCore.Tests.VirtualGpu;

/// <summary>The bounded event feed (issue 13): observers read a channel instead of running code on the scheduler's paths.</summary>
public class GpuEventFeedTests
{
    private static readonly TimeSpan Us = TimeSpan.FromMicroseconds(1);

    private static JobDescription Job(TimeSpan duration) => new() { Engine = EngineKind.Graphics, Duration = duration };

    [Fact]
    public void Feed_CarriesTheSameEventsAsASubscriber_InOrder()
    {
        using var gpu = new Gpu(new GpuConfig());
        var seen = new List<GpuEvent>();
        using IDisposable sub = gpu.Subscribe(seen.Add);
        using GpuEventFeed feed = gpu.OpenEventFeed();
        GpuClient client = gpu.CreateClient("c");
        for (int i = 0; i < 5; i++)
        {
            client.Submit(Job(10 * Us));
        }

        gpu.RunUntilIdle();
        var read = new List<GpuEvent>();
        while (feed.Reader.TryRead(out GpuEvent e))
        {
            read.Add(e);
        }

        Assert.NotEmpty(read);
        Assert.Equal(seen, read);
        Assert.Equal(0, feed.Dropped);
        Assert.Contains(read, e => e.Kind == GpuEventKind.JobCompleted);
    }

    [Fact]
    public void FullFeed_NeverBlocksTheGpu_AndCountsWhatItDropped()
    {
        using var gpu = new Gpu(new GpuConfig());
        using GpuEventFeed feed = gpu.OpenEventFeed(capacity: 4);
        var all = 0;
        using IDisposable sub = gpu.Subscribe(_ => all++);
        GpuClient client = gpu.CreateClient("c");
        for (int i = 0; i < 20; i++)
        {
            client.Submit(Job(Us));
        }

        gpu.RunUntilIdle(); // nobody reads: the GPU must still finish

        Assert.Equal(4, feed.Reader.Count);
        Assert.Equal(all - 4, feed.Dropped);
        Assert.Equal(0, gpu.ConsumerFailures);
    }

    [Fact]
    public async Task Dispose_CompletesTheReader_AfterItIsDrained()
    {
        using var gpu = new Gpu(new GpuConfig());
        GpuEventFeed feed = gpu.OpenEventFeed();
        gpu.CreateClient("c").Submit(Job(Us));
        gpu.RunUntilIdle();
        feed.Dispose();
        gpu.CreateClient("d").Submit(Job(Us));
        gpu.RunUntilIdle(); // after Dispose: not offered

        int count = 0;
        await foreach (GpuEvent _ in feed.Reader.ReadAllAsync().WithCancellation(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token))
        {
            count++;
        }

        Assert.True(count > 0);
        Assert.True(feed.Reader.Completion.IsCompleted);
        Assert.Throws<ArgumentOutOfRangeException>(() => gpu.OpenEventFeed(0));
    }
}
