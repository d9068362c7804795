using System.Text.Json;
using System.Text.Json.Nodes;
using HdrHistogram;
using Json.Schema;

namespace FenceCore.Stress.Tests;

/// <summary>The JSON report: every kind of run validates against the committed schema
/// (stress/report.schema.json), and the latency distribution is the whole HdrHistogram.</summary>
[Collection("stress runner")]
public class StressReportTests
{
    private static readonly JsonSchema Schema = JsonSchema.FromFile(Path.Combine(AppContext.BaseDirectory, "report.schema.json"));

    private static EvaluationResults Evaluate(JsonElement report) => Schema.Evaluate(report, new EvaluationOptions { OutputFormat = OutputFormat.List });

    private static string Errors(EvaluationResults results) =>
        string.Join("; ", (results.Details ?? []).Where(d => d.Errors is not null).SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Value}")));

    [Theory]
    [InlineData("pass", "--jobs", "8000", "--seed", "4", "--hang-rate", "0.002", "--kill-rate", "0.001", "--foreign-rate", "0.001")]
    [InlineData("fail", "--jobs", "20000", "--seed", "5", "--explicit-fraction", "0.5", "--inject-skip-kernel")]
    [InlineData("unchecked", "--jobs", "3000", "--no-checks")]
    [InlineData("pass", "--jobs", "3000", "--mode", "threads", "--threads", "2")]
    public void EveryKindOfRun_ValidatesAgainstTheCommittedSchema(string result, params string[] args)
    {
        (_, JsonElement report, _) = StressRunner.Run([.. args, "--quiet"]);
        Assert.Equal(result, report.GetProperty("result").GetString());
        EvaluationResults validation = Evaluate(report);
        Assert.True(validation.IsValid, Errors(validation));
    }

    /// <summary>A threads-mode run on two cores carries the round trip of a cache line between two cores, measured
    /// before and after it (a two-core throughput means little without it); a virtual-time run, and any run on one
    /// core, carries null.</summary>
    [Fact]
    public void AThreadsModeRunOnTwoCores_CarriesTheCoreRoundTrip_AndAVirtualRunNull()
    {
        (_, JsonElement threads, _) = StressRunner.Run("--jobs", "3000", "--mode", "threads", "--threads", "2", "--quiet");
        JsonElement roundTrip = threads.GetProperty("throughput").GetProperty("coreRoundTripNs");
        if (Environment.ProcessorCount >= 2)
        {
            Assert.True(roundTrip.GetProperty("before").GetDouble() > 0, roundTrip.ToString());
            Assert.True(roundTrip.GetProperty("after").GetDouble() > 0, roundTrip.ToString());
        }
        else
        {
            Assert.Equal(JsonValueKind.Null, roundTrip.ValueKind); // one core: two threads would only take turns
        }

        // One core (not run here with --cores 1: the runner runs in this process, and would pin it): no figure.
        Assert.Null(CoreRoundTrip.MeasureNs(cores: 1));
        (_, JsonElement virtualRun, _) = StressRunner.Run("--jobs", "2000", "--quiet");
        Assert.Equal(JsonValueKind.Null, virtualRun.GetProperty("throughput").GetProperty("coreRoundTripNs").ValueKind);
    }

    [Fact]
    public void ADurationRun_ValidatesAgainstTheCommittedSchema_WithItsDuration()
    {
        (_, JsonElement report, _) = StressRunner.Run("--duration", "1.5", "--seed", "9", "--quiet");
        Assert.Equal("pass", report.GetProperty("result").GetString());
        Assert.Equal(1.5, report.GetProperty("config").GetProperty("durationSeconds").GetDouble());
        Assert.True(report.GetProperty("counts").GetProperty("clientJobs").GetInt64() > 0);
        EvaluationResults validation = Evaluate(report);
        Assert.True(validation.IsValid, Errors(validation));
    }

    [Fact]
    public void AOneDeviceRun_ValidatesAgainstTheCommittedSchema()
    {
        (_, JsonElement report, _) = StressRunner.Run("--jobs", "4000", "--devices", "1", "--seed", "2", "--quiet");
        Assert.Equal("pass", report.GetProperty("result").GetString());
        Assert.Equal(1, report.GetProperty("config").GetProperty("devices").GetInt32());
        Assert.Single(report.GetProperty("devices").EnumerateArray());
        EvaluationResults validation = Evaluate(report);
        Assert.True(validation.IsValid, Errors(validation));
    }

    [Fact]
    public void AnInjectedImporterBugRun_FailsAndValidatesAgainstTheCommittedSchema()
    {
        (int code, JsonElement report, _) = StressRunner.Run("--jobs", "20000", "--seed", "5", "--devices", "2", "--inject-skip-kernel=importer", "--quiet");
        Assert.Equal(1, code);
        Assert.Equal("fail", report.GetProperty("result").GetString());
        Assert.Equal(2, report.GetProperty("config").GetProperty("devices").GetInt32());
        Assert.True(report.GetProperty("config").GetProperty("injectImporterSkipsKernelFences").GetBoolean());
        Assert.True(report.GetProperty("counts").GetProperty("crossDeviceLeaks").GetInt64() > 0);
        EvaluationResults validation = Evaluate(report);
        Assert.True(validation.IsValid, Errors(validation));
    }

    [Theory]
    [InlineData("digest", null)]               // a required field missing
    [InlineData("result", "\"ok\"")]           // not one of pass, fail, unchecked
    [InlineData("digest", "\"c1f3cebb\"")]     // not 0x and 16 hex digits
    [InlineData("surprise", "1")]              // a field the schema does not know
    public void Schema_RejectsAReportThatBreaksIt(string field, string? value)
    {
        (_, JsonElement report, _) = StressRunner.Run("--jobs", "1000", "--no-checks", "--quiet");
        JsonObject broken = JsonNode.Parse(report.GetRawText())!.AsObject();
        if (value is null)
        {
            broken.Remove(field);
        }
        else
        {
            broken[field] = JsonNode.Parse(value);
        }

        Assert.True(Evaluate(report).IsValid);
        Assert.False(Evaluate(JsonDocument.Parse(broken.ToJsonString()).RootElement).IsValid);
    }

    [Fact]
    public void Latency_CarriesTheWholeDistribution()
    {
        (_, JsonElement report, _) = StressRunner.Run("--jobs", "6000", "--seed", "8", "--quiet", "--hang-rate", "0.002");
        JsonElement latency = report.GetProperty("latency");
        long samples = latency.GetProperty("samples").GetInt64();
        Assert.Equal(report.GetProperty("counts").GetProperty("clientJobs").GetInt64(), samples);

        // The buckets hold every sample, ascending, and the percentile iteration ends at 100 % with all of them.
        JsonElement[] buckets = [.. latency.GetProperty("distribution").EnumerateArray()];
        Assert.True(buckets.Length > 5, $"only {buckets.Length} buckets");
        Assert.Equal(samples, buckets.Sum(b => b.GetProperty("count").GetInt64()));
        Assert.True(buckets.Zip(buckets.Skip(1)).All(p => p.First.GetProperty("upToMicroseconds").GetDouble() < p.Second.GetProperty("upToMicroseconds").GetDouble()));
        JsonElement last = latency.GetProperty("percentiles").EnumerateArray().Last();
        Assert.Equal(100.0, last.GetProperty("percentile").GetDouble());
        Assert.Equal(samples, last.GetProperty("totalCount").GetInt64());

        // The encoded histogram reads back with HdrHistogram itself, with the same count and percentiles.
        byte[] encoded = Convert.FromBase64String(latency.GetProperty("hdrHistogramBase64").GetString()!);
        HistogramBase decoded = HistogramEncoding.DecodeFromCompressedByteBuffer(HdrHistogram.Utilities.ByteBuffer.Allocate(encoded), 0);
        Assert.Equal(samples, decoded.TotalCount);
        Assert.Equal(latency.GetProperty("p99").GetDouble(), Math.Round(decoded.GetValueAtPercentile(99) / 1000.0, 3));
        Assert.True(latency.GetProperty("p50").GetDouble() <= latency.GetProperty("p99").GetDouble());
    }

    [Fact]
    public void Engines_AndTimeline_AreReported()
    {
        (_, JsonElement report, _) = StressRunner.Run("--jobs", "20000", "--seed", "3", "--quiet");
        JsonElement[] engines = [.. report.GetProperty("engines").EnumerateArray()];
        Assert.Equal(12, engines.Length); // 6 per device, 2 devices by default
        Assert.Equal(["gpu0/gfx", "gpu1/gfx"], engines.Select(e => e.GetProperty("name").GetString()).Where(n => n!.EndsWith("/gfx", StringComparison.Ordinal)));
        // Jobs that ran on a ring: all of them but those that failed before running (kills, timeouts).
        long completed = report.GetProperty("counts").GetProperty("jobsCompleted").GetInt64();
        Assert.InRange(engines.Sum(e => e.GetProperty("jobs").GetInt64()), completed * 9 / 10, completed);
        Assert.All(engines, e => Assert.InRange(e.GetProperty("utilisation").GetDouble(), 0.0, 1.0));
        Assert.Contains(engines, e => e.GetProperty("utilisation").GetDouble() > 0.01);
        Assert.Contains(engines, e => e.GetProperty("kind").GetString() == "copy" && e.GetProperty("jobs").GetInt64() > 0); // moves run there
        JsonElement[] timeline = [.. report.GetProperty("timeline").EnumerateArray()];
        Assert.NotEmpty(timeline);
        Assert.Equal(20000, timeline[^1].GetProperty("clientJobs").GetInt64()); // the last sample is taken after the drain
    }
}
