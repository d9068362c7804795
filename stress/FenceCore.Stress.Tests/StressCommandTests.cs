using System.CommandLine.Parsing;
using FenceCore.VirtualGpu;

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
    [InlineData("--engines gives each kind once; 'copy' appears twice", "--engines", "copy=1,copy=2")]
    [InlineData("--html 'same.json' is the file --json writes too; give each output its own path.", "--json", "same.json", "--html", "same.json")]
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
        (int code, string output, _) = StressRunner.Invoke("--jobs", "20000", "--explicit-fraction", "0.5", "--inject-skip-kernel", "--seed=5", "--quiet");
        Assert.Equal(1, code);
        Assert.Contains("replay: dotnet run --project stress/FenceCore.Stress -c Release -- --seed 5 --jobs 20000 --explicit-fraction 0.5 --inject-skip-kernel=explicit --quiet", output, StringComparison.Ordinal);
    }

    [Fact]
    public void FailedRun_ReplayCommand_ParsesToTheSameSettings()
    {
        string[] args = ["--jobs", "20000", "--explicit-fraction", "0.5", "--inject-skip-kernel", "--seed=5", "--quiet", "--engines", "copy=1,graphics=2"];
        (int code, string output, _) = StressRunner.Invoke(args);
        Assert.Equal(1, code);
        const string Prefix = "replay: dotnet run --project stress/FenceCore.Stress -c Release -- ";
        string replay = output.Split('\n').Single(l => l.StartsWith(Prefix, StringComparison.Ordinal))[Prefix.Length..].TrimEnd();
        AssertSameRun(StressCommand.Parse(args), StressCommand.Parse([.. CommandLineParser.SplitCommandLine(replay)]));
    }

    [Fact]
    public void Replay_OfSeedWithEquals_GivesTheSeedOnce()
    {
        StressSettings settings = StressCommand.Parse(["--seed=3", "--jobs", "100"]);
        Assert.Equal(["--seed", "3", "--jobs", "100"], settings.ReplayArguments);
    }

    [Fact]
    public void Replay_OfAResponseFile_GivesItsOptions_NotTheFile()
    {
        string rsp = Path.Combine(Path.GetTempPath(), $"fencecore-{Guid.NewGuid():N}.rsp");
        File.WriteAllLines(rsp, ["--seed 5", "--jobs 20000", "--explicit-fraction 0.5", "--inject-skip-kernel"]);
        try
        {
            StressSettings settings = StressCommand.Parse([$"@{rsp}", "--quiet"]);
            Assert.Equal(["--seed", "5", "--jobs", "20000", "--explicit-fraction", "0.5", "--inject-skip-kernel=explicit", "--quiet"], settings.ReplayArguments);
        }
        finally
        {
            File.Delete(rsp);
        }
    }

    [Theory]
    [InlineData("--seed", "-7", "--jobs", "1000", "--duration", "2.5", "--hang-rate", "1e-5", "--kill-rate", "0")]
    [InlineData("--engines", "copy=1,graphics=2,compute=3", "--mode", "threads", "--threads", "2", "--cores", "1", "--no-checks")]
    [InlineData("--inject-skip-kernel=importer", "--devices", "3", "--buffers-per-job", "0", "--fixed-buffers", "--memory", "512", "--watchdog-ms", "2.5")]
    [InlineData("--json=@odd name.json", "--trace=-t.json", "--trace-limit", "0", "--html", "r.html", "--quiet", "--clients", "3")]
    [InlineData("--seed", "2147483647", "--in-flight", "2", "--buffers", "7", "--foreign-rate", "0.25", "--explicit-fraction", "1")]
    public void Replay_ParsesToTheSameSettings(params string[] args)
    {
        StressSettings first = StressCommand.Parse(args);
        AssertSameRun(first, StressCommand.Parse([.. first.ReplayArguments]));
    }

    [Fact]
    public void ReplayCommand_QuotesEachArgument_SoAShellGivesItBack()
    {
        string[] args = ["--seed", "-3", "--json=/tmp/a report.json", "--html=it's.html", "--trace=$HOME`x`.json"];
        string command = StressCommand.ReplayCommand(args);
        string words = command["dotnet run --project stress/FenceCore.Stress -c Release -- ".Length..];
        Assert.Equal(args, StressRunner.Bash($"printf '%s\\n' {words}").Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void BareInjectSkipKernel_InjectsTheExplicitSyncBug_AndNoneIsInjectedWithoutIt()
    {
        StressSettings bare = StressCommand.Parse(["--inject-skip-kernel"]);
        StressSettings none = StressCommand.Parse([]);
        Assert.True(bare.InjectSkipKernelFences);
        Assert.False(bare.InjectImporterSkipsKernelFences);
        Assert.False(none.InjectSkipKernelFences || none.InjectImporterSkipsKernelFences);
    }

    [Theory]
    [InlineData("--trace <PATH> Write a Perfetto trace (Perfetto's protobuf format; JSON trace events instead when PATH ends in .json)")]
    [InlineData("Bug injection, off unless given; a run with it must fail. 'explicit' (also what the bare option means)")]
    [InlineData("--buffers-per-job <N> At most N buffers per job, drawn uniformly from 1..N (capped at the buffers a device sees); 0: jobs touch no buffers")]
    [InlineData("(the run ends at --jobs or at this time, whichever comes first;")]
    [InlineData("Every job must finish within this much GPU time (in threads mode at least 10000 ms")]
    [InlineData("The first N client jobs submitted go into the trace whole, with the memory manager's moves they wait on.")]
    [InlineData("1 the run failed: an invariant broke (the first violation and a replay command are printed;")]
    [InlineData("or the run stopped on an exception, a bug in the library or the runner (the exception and a replay command are printed)")]
    [InlineData("of each device is exported and imported by the other (the compositor case: each device's compositor, its first client, reads what the other device renders into them)")]
    public void Help_SaysWhatTheCodeDoes(string phrase)
    {
        Assert.Contains(phrase, UnwrappedHelp(), StringComparison.Ordinal);
    }

    [Fact]
    public void Help_CallsNoInjectionTheDefault()
    {
        Assert.DoesNotContain("(the default)", UnwrappedHelp(), StringComparison.Ordinal);
    }

    [Fact]
    public void BuffersPerJobZero_IsAccepted_AsJobsWithoutBuffers()
    {
        (int code, var report, _) = StressRunner.Run("--buffers-per-job", "0", "--jobs", "2000", "--quiet");
        Assert.Equal(0, code);
        Assert.Equal(0, report.GetProperty("config").GetProperty("maxBuffersPerJob").GetInt32());
    }

    [Fact]
    public void UnwritableOutputPath_Exits2_BeforeTheRun_NamingTheOptionAndThePath()
    {
        (int code, string output, string error) = StressRunner.Invoke("--jobs", "100", "--json", "/proc/x.json");
        Assert.Equal(2, code);
        Assert.Contains("fencecore-stress: --json '/proc/x.json' cannot be written (", error, StringComparison.Ordinal);
        Assert.Contains("Run with --help", error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", error, StringComparison.Ordinal); // no stack trace
        Assert.DoesNotContain("fencecore-stress 1.", output, StringComparison.Ordinal); // nothing ran
    }

    [Fact]
    public void UnwritableOutputPath_LeavesTheOtherOutputsAsTheyWere()
    {
        string folder = Directory.CreateTempSubdirectory("fencecore-").FullName;
        try
        {
            string json = Path.Combine(folder, "new.json");
            string html = Path.Combine(folder, "old.html");
            File.WriteAllText(html, "keep");
            (int code, _, string error) = StressRunner.Invoke("--jobs", "100", "--json", json, "--html", html, "--trace", "/proc/x.pftrace");
            Assert.Equal(2, code);
            Assert.Contains("--trace '/proc/x.pftrace' cannot be written", error, StringComparison.Ordinal);
            Assert.Equal(["old.html"], Directory.GetFiles(folder).Select(Path.GetFileName));
            Assert.Equal("keep", File.ReadAllText(html));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>A FIFO is a valid output: the check before the run must neither block on it while it has no
    /// reader (a blocking open did, until some reader opened the FIFO) nor hand a reader that is already there
    /// an end of file (an open and close did); the report reaches the reader after the run.</summary>
    [Fact]
    public void FifoOutput_DoesNotBlockTheCheck_AndTheReportReachesItsReader()
    {
        string folder = Directory.CreateTempSubdirectory("fencecore-").FullName;
        string fifo = Path.Combine(folder, "report.fifo");
        try
        {
            using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", [fifo]))
            {
                mkfifo.WaitForExit();
                Assert.Equal(0, mkfifo.ExitCode);
            }

            Task<string[]> probe = Task.Run(() => OutputFiles.Probe(("--json", fifo)).ToArray());
            bool returned = probe.Wait(TimeSpan.FromSeconds(10));
            if (!returned)
            {
                using var unblock = new FileStream(fifo, FileMode.Open, FileAccess.Read); // let the stuck probe go
            }

            Assert.True(returned, "the output check blocked on a FIFO that has no reader");
            Assert.Empty(probe.Result);

            Task<string> reader = Task.Run(() => File.ReadAllText(fifo)); // there before the run starts, or soon after
            (int code, _, string error) = StressRunner.Invoke("--jobs", "300", "--devices", "1", "--quiet", "--json", fifo);
            Assert.True(reader.Wait(TimeSpan.FromSeconds(30)), "the reader got no end of file");
            Assert.True(code == 0, error);
            Assert.Contains("\"schemaVersion\"", reader.Result, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>A path where the check can create its empty file but not remove it again exits 2 with one line
    /// naming the option, the path and what to do; before, the removal threw from a finally block, an unhandled
    /// exception (exit 1, a stack trace).</summary>
    [Fact]
    public void OutputWhoseProbeFileCannotBeRemoved_Exits2_NamingTheOption()
    {
        string folder = Directory.CreateTempSubdirectory("fencecore-").FullName;
        string json = Path.Combine(folder, "new.json");
        Action<string> delete = OutputFiles.DeleteProbeFile;
        OutputFiles.DeleteProbeFile = p => throw new UnauthorizedAccessException($"Access to the path '{p}' is denied.");
        try
        {
            (int code, string output, string error) = StressRunner.Invoke("--jobs", "100", "--json", json);
            Assert.Equal(2, code);
            Assert.Contains($"--json '{json}' could be created, but the empty file the check made there could not be removed (Access to the path", error, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
            Assert.DoesNotContain("fencecore-stress 1.", output, StringComparison.Ordinal); // nothing ran
        }
        finally
        {
            OutputFiles.DeleteProbeFile = delete;
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>/dev/full (Linux) opens for writing, so it passes the check before the run, and every
    /// write to it fails with "no space left on device".</summary>
    [Fact]
    public void OutputFailingAfterAPassingRun_Exits2_WithOneLineNamingTheOption()
    {
        (int code, string output, string error) = StressRunner.Invoke("--jobs", "1000", "--quiet", "--json", "/dev/full");
        Assert.Equal(2, code);
        Assert.Contains("PASS: every invariant held", output, StringComparison.Ordinal);
        string line = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("fencecore-stress: --json '/dev/full' could not be written after the run: ", line, StringComparison.Ordinal);
    }

    [Fact]
    public void OutputFailingAfterAFailedRun_StillExits1()
    {
        (int code, string output, string error) = StressRunner.Invoke("--jobs", "20000", "--explicit-fraction", "0.5", "--inject-skip-kernel", "--seed", "5", "--quiet", "--html", "/dev/full");
        Assert.Equal(1, code);
        Assert.Contains("FAIL: invariant", output, StringComparison.Ordinal);
        Assert.Contains("fencecore-stress: --html '/dev/full' could not be written after the run: ", error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
    }

    [Fact]
    public void ExceptionInTheRun_FailsTheRun_WithOneLineAndTheReplayCommand_WithinZeroOneTwo()
    {
        (int code, _, string error) = StressRunner.Capture(() => StressCommand.Invoke(["--jobs", "10", "--seed=7"], _ => throw new InvalidOperationException("the runner broke")));
        Assert.Equal(StressCommand.ExitViolation, code);
        Assert.Contains("fencecore-stress: FAIL: the run stopped on an exception (a bug in the library or the runner): System.InvalidOperationException: the runner broke", error, StringComparison.Ordinal);
        Assert.Contains("replay: dotnet run --project stress/FenceCore.Stress -c Release -- --seed 7 --jobs 10", error, StringComparison.Ordinal);
    }

    /// <summary>The help text with its line wrapping undone (every run of white space one space).</summary>
    private static string UnwrappedHelp() =>
        string.Join(' ', StressRunner.Invoke("--help").Out.Split((char[])[' ', '\n', '\r'], StringSplitOptions.RemoveEmptyEntries));

    /// <summary>The settings of two parses describe the same run (the replay arguments aside, which a replay
    /// of a replay gives back unchanged).</summary>
    private static void AssertSameRun(StressSettings expected, StressSettings actual)
    {
        Assert.Equal(expected.Engines, actual.Engines);
        Assert.Equal(expected.ReplayArguments, actual.ReplayArguments);
        Assert.Equal(expected, actual with { Engines = expected.Engines, ReplayArguments = expected.ReplayArguments });
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
