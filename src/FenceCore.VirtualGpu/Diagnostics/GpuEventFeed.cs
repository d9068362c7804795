using System.Threading.Channels;

namespace FenceCore.VirtualGpu;

/// <summary>
/// A bounded feed of a <see cref="Gpu"/>'s events (<see cref="Gpu.OpenEventFeed"/>). The GPU only
/// offers each event to the channel, without waiting: the observer's code runs wherever it reads
/// <see cref="Reader"/>, never on the scheduler's paths. Dispose it to stop the feed and complete the
/// reader.
/// </summary>
public sealed class GpuEventFeed : IDisposable
{
    private readonly Channel<GpuEvent> _channel;

    /// <summary>Events that arrived while the feed was full. Written with Interlocked.Increment.</summary>
    private long _dropped;

    internal GpuEventFeed(int capacity)
    {
        // Wait mode, used only through TryWrite: a full channel refuses the event instead of blocking the
        // GPU or silently dropping it, so every drop is counted.
        _channel = Channel.CreateBounded<GpuEvent>(new BoundedChannelOptions(capacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = false,
            SingleWriter = false,
        });
    }

    /// <summary>The events, oldest first.</summary>
    public ChannelReader<GpuEvent> Reader => _channel.Reader;

    /// <summary>How many events did not fit because the reader was behind.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    internal IDisposable? Subscription { get; set; }

    /// <summary>Stops the feed: no later event is offered, and the reader completes once drained.</summary>
    public void Dispose()
    {
        Subscription?.Dispose();
        _channel.Writer.TryComplete();
    }

    internal void Offer(GpuEvent e)
    {
        if (!_channel.Writer.TryWrite(e))
        {
            Interlocked.Increment(ref _dropped);
        }
    }
}
