using System.Diagnostics.Metrics;
using FenceCore.VirtualGpu;

namespace FenceCore.Tests.VirtualGpu;

/// <summary>Issue 13: each GPU reports on its own meter, from the host's <see cref="IMeterFactory"/> when
/// it gives one, instead of one static meter shared by every GPU in the process.</summary>
public sealed class GpuMeterTests
{
    private sealed class TestMeterFactory : IMeterFactory
    {
        public List<Meter> Created { get; } = [];

        public Meter Create(MeterOptions options)
        {
            var meter = new Meter(options.Name, options.Version, options.Tags, scope: this);
            Created.Add(meter);
            return meter;
        }

        public void Dispose()
        {
            foreach (Meter m in Created)
            {
                m.Dispose();
            }
        }
    }

    private static long CountSubmitted(Meter meter, Action run)
    {
        long total = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, meter) && instrument.Name == "vgpu.jobs.submitted")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => total += value);
        listener.Start();
        run();
        return total;
    }

    private static void SubmitJobs(Gpu gpu, int n)
    {
        GpuClient client = gpu.CreateClient("c");
        for (int i = 0; i < n; i++)
        {
            client.Submit(new JobDescription { Engine = EngineKind.Graphics, DurationNs = 1_000 });
        }

        gpu.RunUntilIdle();
    }

    [Fact]
    public void EachGpu_CountsOnTheMeterItsFactoryCreated_AndNotOnAnotherGpus()
    {
        using var factoryA = new TestMeterFactory();
        using var factoryB = new TestMeterFactory();
        using var a = new Gpu(new GpuConfig { MeterFactory = factoryA });
        using var b = new Gpu(new GpuConfig { MeterFactory = factoryB });
        Meter meterA = Assert.Single(factoryA.Created);
        Assert.Equal(Gpu.MeterName, meterA.Name);

        long seenOnA = CountSubmitted(meterA, () =>
        {
            SubmitJobs(a, 3);
            SubmitJobs(b, 5); // another GPU's jobs must not show on A's meter
        });

        Assert.Equal(3, seenOnA);
        Assert.Single(factoryB.Created);
    }

    [Fact]
    public void WithoutAFactory_TheGpuOwnsItsMeter_AndDisposesIt()
    {
        var gpu = new Gpu(new GpuConfig());
        Meter meter = gpu.MeterForTesting;
        Assert.Equal(Gpu.MeterName, meter.Name);
        Assert.NotEmpty(PublishedInstruments(meter));
        gpu.Dispose();
        Assert.Empty(PublishedInstruments(meter)); // a disposed meter publishes nothing to a new listener
    }

    private static List<string> PublishedInstruments(Meter meter)
    {
        var names = new List<string>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, _) =>
        {
            if (ReferenceEquals(instrument.Meter, meter))
            {
                names.Add(instrument.Name);
            }
        };
        listener.Start();
        return names;
    }
}
