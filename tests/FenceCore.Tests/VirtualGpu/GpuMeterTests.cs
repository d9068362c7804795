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
            client.Submit(new JobDescription { Engine = EngineKind.Graphics, Duration = TimeSpan.FromMicroseconds(1) });
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

    /// <summary>The README lists the meter's instruments (issue 16); the list must be the meter's, name and unit.</summary>
    [Fact]
    public void ReadmeInstrumentTable_IsTheMetersInstruments()
    {
        string? dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "FenceCore.sln")))
        {
            dir = Path.GetDirectoryName(dir);
        }

        Assert.NotNull(dir);
        string readme = File.ReadAllText(Path.Combine(dir, "README.md"));
        int start = readme.IndexOf("<!-- meter-instruments:start -->", StringComparison.Ordinal);
        int end = readme.IndexOf("<!-- meter-instruments:end -->", StringComparison.Ordinal);
        Assert.True(start >= 0 && end > start, "README.md has no meter-instruments table");
        var documented = System.Text.RegularExpressions.Regex.Matches(readme[start..end], @"^\| `(vgpu\.[a-z.]+)` \| `([^`]+)` \|", System.Text.RegularExpressions.RegexOptions.Multiline)
            .Select(m => $"{m.Groups[1].Value} {m.Groups[2].Value}").Order(StringComparer.Ordinal).ToArray();

        using var factory = new TestMeterFactory();
        using var gpu = new Gpu(new GpuConfig { MeterFactory = factory });
        var published = new List<string>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, _) =>
        {
            if (factory.Created.Contains(instrument.Meter))
            {
                published.Add($"{instrument.Name} {instrument.Unit}");
            }
        };
        listener.Start();
        Assert.Equal(Gpu.MeterName, Assert.Single(factory.Created).Name);
        Assert.Equal(documented, published.Order(StringComparer.Ordinal).ToArray());
    }
}
