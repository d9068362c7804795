using FenceCore.VirtualGpu;

namespace FenceCore.Stress;

/// <summary>
/// The devices of one run, on one event loop (virtual time) or one worker pool (threads), seen as one
/// system: the counters are sums over the devices, the clock is the shared one, and the engines are listed
/// device after device. With one device every figure is that device's, digest included.
/// </summary>
internal sealed class DeviceSet : IDisposable
{
    private readonly int[] _engineOffset;

    public DeviceSet(IReadOnlyList<GpuConfig> configs)
    {
        var devices = new Gpu[configs.Count];
        for (int d = 0; d < devices.Length; d++)
        {
            devices[d] = new Gpu(configs[d], d == 0 ? null : devices[0]);
        }

        Devices = devices;
        _engineOffset = new int[devices.Length];
        var engines = new List<Engine>();
        for (int d = 0; d < devices.Length; d++)
        {
            _engineOffset[d] = engines.Count;
            engines.AddRange(devices[d].Engines);
        }

        Engines = engines;
    }

    public IReadOnlyList<Gpu> Devices { get; }

    /// <summary>The first device: its loop is everyone's.</summary>
    public Gpu Primary => Devices[0];

    public GpuConfig Config => Primary.Config;

    /// <summary>Every device's engines, device after device.</summary>
    public IReadOnlyList<Engine> Engines { get; }

    /// <summary>An engine's position in <see cref="Engines"/>.</summary>
    public int Slot(Engine engine) => _engineOffset[IndexOf(engine.Device)] + engine.Index;

    public int IndexOf(Gpu device)
    {
        for (int d = 0; d < Devices.Count; d++)
        {
            if (ReferenceEquals(Devices[d], device))
            {
                return d;
            }
        }

        throw new ArgumentException($"{device.Name} is not a device of this run.", nameof(device));
    }

    /// <summary>An engine's name, with its device's when there are several.</summary>
    public string EngineName(Engine engine) => Devices.Count == 1 ? engine.Name : $"{engine.Device.Name}/{engine.Name}";

    public long NowNs => Primary.Now.Ns();
    public long JobsSubmitted => Devices.Sum(d => d.JobsSubmitted);
    public long JobsCompleted => Devices.Sum(d => d.JobsCompleted);
    public long FencesSignaled => Devices.Sum(d => d.FencesSignaled);
    public long EventCount => Devices.Sum(d => d.EventCount);
    public long LeakCount => Devices.Sum(d => d.LeakCount);
    public long DeviceMemoryUsed => Devices.Sum(d => d.DeviceMemoryUsed);
    public long DeviceMemoryBytes => Devices.Sum(d => d.Config.DeviceMemoryBytes);
    public long PeakDeviceMemoryUsed => Devices.Sum(d => d.PeakDeviceMemoryUsed);

    /// <summary>One device: its digest. Several: their digests folded in device order (FNV-1a over the words),
    /// so the same seed gives the same value only when every device replays its events.</summary>
    public ulong Digest
    {
        get
        {
            if (Devices.Count == 1)
            {
                return Primary.Digest;
            }

            ulong h = 14695981039346656037UL;
            foreach (Gpu d in Devices)
            {
                h = (h ^ d.Digest) * 1099511628211UL;
            }

            return h;
        }
    }

    public void Subscribe(Action<GpuEvent> handler)
    {
        foreach (Gpu d in Devices)
        {
            d.Subscribe(handler);
        }
    }

    public void SubscribeFenceSignals(Action<GpuFence> handler)
    {
        foreach (Gpu d in Devices)
        {
            d.SubscribeFenceSignals(handler);
        }
    }

    /// <summary>Runs the shared loop's next event (virtual mode).</summary>
    public bool RunOne() => Primary.RunOne();

    public void WaitForIdle(TimeSpan timeout)
    {
        foreach (Gpu d in Devices)
        {
            d.WaitForIdle(timeout);
        }
    }

    public void Dispose()
    {
        for (int d = Devices.Count - 1; d >= 0; d--)
        {
            Devices[d].Dispose(); // the first device, which owns the loop, last
        }
    }
}
