namespace FenceCore.Stress.Tests;

/// <summary>The runner's command line (System.CommandLine): help, version, rules that name their option,
/// response files and completions.</summary>
[Collection("stress runner")]
public class StressCommandTests
{
    private static readonly string[] EveryOption =
    [
        "--seed", "--jobs", "--duration", "--engines", "--clients", "--buffers", "--buffers-per-job", "--fixed-buffers", "--in-flight",
        "--explicit-fraction", "--memory", "--hang-rate", "--kill-rate", "--foreign-rate", "--inject-skip-kernel", "--devices", "--mode", "--threads",
        "--cores", "--no-checks", "--watchdog-ms", "--json", "--trace", "--trace-limit", "--html", "--quiet", "--help", "--version",
    ];

    [Fact]
    public void Help_ListsEveryOption_AndExits0()
    {
        (int code, string output, string error) = StressRunner.Invoke("--help");
        Assert.Equal(0, code);
        Assert.Equal("", error);
        foreach (string option in EveryOption)
        {
            Assert.Contains(option, output, StringComparison.Ordinal);
        }

        Assert.Contains("Exit codes: 0 every invariant held", output, StringComparison.Ordinal);
        Assert.Contains("[default: 5000000]", output, StringComparison.Ordinal);
        Assert.Contains("--devices <N>", output, StringComparison.Ordinal);
        Assert.Contains("--inject-skip-kernel <explicit|importer>", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Version_PrintsTheRunnersVersion()
    {
        (int code, string output, _) = StressRunner.Invoke("--version");
        Assert.Equal(0, code);
        Assert.StartsWith(FenceCore.Stress.StressRun.Version, output.Trim(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--hang-rate must be a number from 0 to 1, not '2'.", "--hang-rate", "2")]
    [InlineData("--jobs must be a whole number from 1 to 9223372036854775807, not '0'.", "--jobs", "0")]
    [InlineData("--mode must be 'virtual' or 'threads', not 'quantum'.", "--mode", "quantum")]
    [InlineData("--engines needs at least one copy engine", "--engines", "graphics=1")]
    [InlineData("--engines takes kind=count pairs", "--engines", "gpu=2,copy=1")]
    [InlineData("--engines: the count of 'copy=0' must be a whole number from 1 to 64.", "--engines", "copy=0")]
    [InlineData("--duration must be a number of seconds from 0.001 to 10000000, not '0'.", "--duration", "0")]
    [InlineData("--clients must be a whole number from 1 to 100000, not 'many'.", "--clients", "many")]
    [InlineData("--seed must be a whole number from -2147483648 to 2147483647, not '1.5'.", "--seed", "1.5")]
    [InlineData("--bogus", "--bogus")]
    [InlineData("--devices must be a whole number from 1 to 16, not '0'.", "--devices", "0")]
    [InlineData("--inject-skip-kernel takes 'explicit' or 'importer', not 'exporter'.", "--inject-skip-kernel=exporter")]
    [InlineData("--inject-skip-kernel=importer needs --devices 2 or more", "--inject-skip-kernel=importer", "--devices", "1")]
    public void BadUsage_Exits2_WithAnErrorNamingTheOptionAndTheRule(string expected, params string[] args)
    {
        (int code, string output, string error) = StressRunner.Invoke(args);
        Assert.Equal(2, code);
        Assert.Contains(expected, error, StringComparison.Ordinal);
        Assert.Contains("Run with --help", error, StringComparison.Ordinal);
        Assert.DoesNotContain("fencecore-stress 1.", output, StringComparison.Ordinal); // nothing ran
    }

    [Fact]
    public void ResponseFile_SuppliesTheOptions()
    {
        string rsp = Path.Combine(Path.GetTempPath(), $"fencecore-{Guid.NewGuid():N}.rsp");
        File.WriteAllLines(rsp, ["--jobs 1500", "--seed 9", "--no-checks"]);
        try
        {
            (int code, var report, _) = StressRunner.Run($"@{rsp}", "--quiet");
            Assert.Equal(0, code);
            Assert.Equal(1500, report.GetProperty("config").GetProperty("jobs").GetInt64());
            Assert.Equal(9, report.GetProperty("seed").GetInt32());
            Assert.Equal("unchecked", report.GetProperty("result").GetString());
        }
        finally
        {
            File.Delete(rsp);
        }
    }

    [Fact]
    public void Completions_OfferTheModes()
    {
        // What dotnet-suggest asks the program when the user presses tab after "--mode ".
        (int code, string output, _) = StressRunner.Invoke("[suggest:7]", "--mode ");
        Assert.Equal(0, code);
        Assert.Equal(["threads", "virtual"], output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    [Fact]
    public void FailedRun_PrintsAReplayCommand_WithTheSeedFirst()
    {
        (int code, string output, _) = StressRunner.Invoke("--jobs", "20000", "--explicit-fraction", "0.5", "--inject-skip-kernel", "--seed", "5", "--quiet");
        Assert.Equal(1, code);
        Assert.Contains("replay: dotnet run --project stress/FenceCore.Stress -c Release -- --seed 5 --jobs 20000 --explicit-fraction 0.5 --inject-skip-kernel --quiet", output, StringComparison.Ordinal);
    }

    [Fact]
    public void RedirectedOutput_IsPlainText_WithTheSummaryTables()
    {
        (int code, string output, _) = StressRunner.Invoke("--jobs", "3000", "--seed", "2");
        Assert.Equal(0, code);
        Assert.DoesNotContain("\u001b[", output, StringComparison.Ordinal); // no ANSI escapes when redirected
        Assert.Contains("jobs completed", output, StringComparison.Ordinal);
        Assert.Contains("latency submit→finished", output, StringComparison.Ordinal);
        Assert.Contains("writer-exclusive", output, StringComparison.Ordinal);
        Assert.Contains("PASS: every invariant held", output, StringComparison.Ordinal);
    }
}
