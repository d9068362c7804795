using System.Diagnostics.Metrics;

namespace FenceCore.VirtualGpu;

/// <summary>
/// The GPU's <see cref="System.Diagnostics.Metrics"/> instruments, on a meter named <see cref="Gpu.MeterName"/>:
/// from <see cref="GpuConfig.MeterFactory"/> (which then owns it), or its own. Instruments are thread-safe;
/// this type holds no lock.
/// </summary>
internal sealed class GpuMetrics : IDisposable
{
    private readonly bool _ownsMeter;

    public GpuMetrics(IMeterFactory? factory)
    {
        _ownsMeter = factory is null;
        Meter = factory?.Create(new MeterOptions(Gpu.MeterName) { Version = "0.1.0" }) ?? new Meter(Gpu.MeterName, "0.1.0");
        JobsSubmitted = Meter.CreateCounter<long>("vgpu.jobs.submitted", "{job}", "Jobs submitted");
        JobsCompleted = Meter.CreateCounter<long>("vgpu.jobs.completed", "{job}", "Jobs whose finished fence signalled");
        FencesSignaled = Meter.CreateCounter<long>("vgpu.fences.signaled", "{fence}", "GPU fences signalled");
        DependencyWaits = Meter.CreateCounter<long>("vgpu.dependency.waits", "{wait}", "Jobs that had to wait for dependencies");
        DependencyTimeouts = Meter.CreateCounter<long>("vgpu.dependency.timeouts", "{job}", "Jobs failed because a dependency did not signal in time");
        EngineResets = Meter.CreateCounter<long>("vgpu.engine.resets", "{reset}", "Engine resets after a timeout");
        Moves = Meter.CreateCounter<long>("vgpu.memory.moves", "{move}", "Buffer moves, evictions and clears");
    }

    public Meter Meter { get; }
    public Counter<long> JobsSubmitted { get; }
    public Counter<long> JobsCompleted { get; }
    public Counter<long> FencesSignaled { get; }
    public Counter<long> DependencyWaits { get; }
    public Counter<long> DependencyTimeouts { get; }
    public Counter<long> EngineResets { get; }
    public Counter<long> Moves { get; }

    public void Dispose()
    {
        if (_ownsMeter)
        {
            Meter.Dispose(); // a factory's meter is the factory's to dispose
        }
    }
}
