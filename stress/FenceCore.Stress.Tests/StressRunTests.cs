using System.Text.Json;

namespace FenceCore.Stress.Tests;

/// <summary>Short runs of the stress runner (the main command) inside the test suite.</summary>
[Collection("stress runner")]
public class StressRunTests
{
    private static (int ExitCode, JsonElement Report) Run(params string[] args)
    {
        (int code, JsonElement report, _) = StressRunner.Run([.. args, "--quiet"]);
        return (code, report);
    }

    private static long Checks(JsonElement report, string invariant) =>
        report.GetProperty("invariants").EnumerateArray().Single(i => i.GetProperty("name").GetString() == invariant).GetProperty("checks").GetInt64();

    private static long Violations(JsonElement report, string invariant) =>
        report.GetProperty("invariants").EnumerateArray().Single(i => i.GetProperty("name").GetString() == invariant).GetProperty("violations").GetInt64();

    [Fact]
    public void ShortVirtualRun_Passes_AndEveryInvariantWasChecked()
    {
        (int code, JsonElement report) = Run("--jobs", "20000", "--seed", "3", "--hang-rate", "0.002", "--kill-rate", "0.001", "--foreign-rate", "0.001");

        Assert.Equal(0, code);
        Assert.Equal("pass", report.GetProperty("result").GetString());
        foreach (JsonElement inv in report.GetProperty("invariants").EnumerateArray())
        {
            Assert.True(inv.GetProperty("checks").GetInt64() > 0, $"{inv.GetProperty("name")} was never checked");
            Assert.Equal(0, inv.GetProperty("violations").GetInt64());
        }

        JsonElement counts = report.GetProperty("counts");
        Assert.Equal(20000, counts.GetProperty("clientJobs").GetInt64());

        // Checked for real, not vacuously: writer exclusivity is checked at least once per implicit-sync job
        // that ran (7 in 8 clients here). A checker that skips the jobs it should check (as one did, reading
        // a job phase that had become "done" by completion time: 36 checks in 5M jobs) fails this.
        long writerChecks = report.GetProperty("invariants").EnumerateArray().Single(i => i.GetProperty("name").GetString() == "writer-exclusive").GetProperty("checks").GetInt64();
        Assert.True(writerChecks >= 20000 / 2, $"writer-exclusive was checked {writerChecks} times in 20,000 jobs");
        Assert.True(counts.GetProperty("engineResets").GetInt64() > 0);
        Assert.Equal(counts.GetProperty("jobsSubmitted").GetInt64(), counts.GetProperty("jobsCompleted").GetInt64());
    }

    [Fact]
    public void SameSeed_GivesTheSameDigest()
    {
        (_, JsonElement a) = Run("--jobs", "5000", "--seed", "11");
        (_, JsonElement b) = Run("--jobs", "5000", "--seed", "11");
        (_, JsonElement c) = Run("--jobs", "5000", "--seed", "12");
        Assert.Equal(a.GetProperty("digest").GetString(), b.GetProperty("digest").GetString());
        Assert.NotEqual(a.GetProperty("digest").GetString(), c.GetProperty("digest").GetString());
    }

    [Fact]
    public void SeveralDevices_OnOneEventLoop_ReplayTheSameDigests()
    {
        (_, JsonElement a) = Run("--jobs", "5000", "--seed", "11", "--devices", "3");
        (_, JsonElement b) = Run("--jobs", "5000", "--seed", "11", "--devices", "3");
        string[] Digests(JsonElement r) => [.. r.GetProperty("devices").EnumerateArray().Select(d => d.GetProperty("digest").GetString()!)];
        Assert.Equal(3, Digests(a).Length);
        Assert.Equal(Digests(a), Digests(b));
        Assert.Equal(a.GetProperty("digest").GetString(), b.GetProperty("digest").GetString());
        Assert.Equal(3, Digests(a).Distinct().Count());
        Assert.True(a.GetProperty("counts").GetProperty("imports").GetInt64() > 0);
    }

    [Fact]
    public void TheDefaultScenario_SharesBuffersBetweenTwoDevices_AndTheirMovesNotifyTheImporters()
    {
        (int code, JsonElement report) = Run("--jobs", "30000", "--seed", "2");
        Assert.Equal(0, code);
        Assert.Equal(2, report.GetProperty("config").GetProperty("devices").GetInt32());
        JsonElement counts = report.GetProperty("counts");
        Assert.Equal(48, counts.GetProperty("imports").GetInt64()); // a quarter of each device's 96 buffers, imported by the other
        Assert.True(counts.GetProperty("moveNotifications").GetInt64() > 0);
        Assert.True(counts.GetProperty("evictions").GetInt64() > 0);
        Assert.Equal(0, counts.GetProperty("crossDeviceLeaks").GetInt64());
        Assert.All(report.GetProperty("devices").EnumerateArray(), d => Assert.True(d.GetProperty("jobsCompleted").GetInt64() > 1000));

        // The compositor case: each device's compositor (1 of its 12 clients) reads what the other renders;
        // nobody writes an import.
        Assert.Equal(0.25, report.GetProperty("config").GetProperty("sharedFraction").GetDouble());
        long compositorJobs = counts.GetProperty("compositorJobs").GetInt64();
        Assert.InRange(compositorJobs, 30000 / 24, 30000 / 6);
        Assert.True(counts.GetProperty("importReads").GetInt64() >= compositorJobs, "every compositor job reads an import");
        Assert.Equal(0, counts.GetProperty("importWrites").GetInt64());
        Assert.True(Checks(report, "no-access-during-move") >= 30000 / 2, "the runner checks the jobs that ran against the moves before them");
    }

    [Theory]
    [InlineData("0", 0)]
    [InlineData("0.5", 96)]
    [InlineData("1", 192)]
    public void TheSharedFraction_SetsHowManyBuffersEachDeviceExports(string fraction, long imports)
    {
        (int code, JsonElement report) = Run("--jobs", "3000", "--seed", "4", "--shared-fraction", fraction);
        Assert.Equal(0, code);
        JsonElement counts = report.GetProperty("counts");
        Assert.Equal(imports, counts.GetProperty("imports").GetInt64());
        Assert.Equal(imports > 0, counts.GetProperty("importReads").GetInt64() > 0);
        Assert.Equal(0, counts.GetProperty("importWrites").GetInt64());
    }

    /// <summary>The other side of the seed's importer bug: importers that honour KERNEL fences never touch
    /// an import while its exporter moves it, whatever the seed (the same short two-device runs as the bug's).</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void ACorrectImporter_NeverAccessesAnImportDuringAMove_InEveryRun(int seed)
    {
        (int code, JsonElement report) = Run("--jobs", "20000", "--seed", seed.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(0, code);
        Assert.Equal(2, report.GetProperty("config").GetProperty("devices").GetInt32());
        JsonElement counts = report.GetProperty("counts");
        Assert.True(counts.GetProperty("imports").GetInt64() > 0);
        Assert.True(counts.GetProperty("moveNotifications").GetInt64() > 0, "no import was moved: the run does not test the rule");
        Assert.Equal(0, counts.GetProperty("crossDeviceLeaks").GetInt64());
        Assert.Equal(0, counts.GetProperty("leaks").GetInt64());
        Assert.Equal(0, Violations(report, "no-access-during-move"));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void TheSeedsImporterBug_IsCaughtAsCrossDeviceAccessDuringAMove_InEveryRun(int seed)
    {
        (int code, JsonElement report) = Run("--jobs", "20000", "--seed", seed.ToString(System.Globalization.CultureInfo.InvariantCulture), "--inject-skip-kernel=importer");
        Assert.Equal(1, code);
        long leaks = report.GetProperty("counts").GetProperty("leaks").GetInt64();
        Assert.True(leaks > 0);
        Assert.Equal(leaks, report.GetProperty("counts").GetProperty("crossDeviceLeaks").GetInt64()); // all on imports
        Assert.True(report.GetProperty("config").GetProperty("injectImporterSkipsKernelFences").GetBoolean());

        // The runner's own check (each job against the moves pending on its storage when it was submitted)
        // agrees with the devices' leak detectors, up to jobs that started behind earlier ring work at the very
        // time their move ended (judged by timestamps, such a move counts as ended; the detector's check at
        // that instant may run before the move's signal). A job that starts at once is judged in event order.
        long violations = Violations(report, "no-access-during-move");
        Assert.InRange(violations, leaks - (leaks / 100) - 2, leaks);
        string first = report.GetProperty("invariants").EnumerateArray().Single(i => i.GetProperty("name").GetString() == "no-access-during-move").GetProperty("firstViolation").GetString()!;
        Assert.Contains("a cross-device access to memory being moved", first, StringComparison.Ordinal);
        Assert.Contains("comp", first, StringComparison.Ordinal); // a compositor read what the other device moved
    }

    [Fact]
    public void SkippedKernelFences_AreCaught_AndTheRunFails()
    {
        (int code, JsonElement report) = Run("--jobs", "20000", "--seed", "5", "--explicit-fraction", "0.5", "--inject-skip-kernel");
        Assert.Equal(1, code);
        Assert.Equal("fail", report.GetProperty("result").GetString());
        Assert.True(Violations(report, "no-access-during-move") > 0);
    }

    /// <summary>An exception on a threads-mode client thread fails the run with exit 1 and is printed; before,
    /// it ended the whole process (exit 134, outside the runner's 0/1/2, and this test's host with it).</summary>
    [Fact]
    public void AClientThreadThatThrows_FailsTheRun_WithExit1_NotTheProcess()
    {
        (int code, _, string error) = StressRunner.Capture(() => StressCommand.Invoke(
            ["--mode", "threads", "--threads", "2", "--jobs", "5000", "--quiet"],
            s => StressRun.Execute(s with { BeforeSubmitForTests = n => { if (n >= 500) throw new InvalidOperationException("client 500 broke"); } })));
        Assert.Equal(StressCommand.ExitViolation, code);
        Assert.Contains("the run stopped on an exception", error, StringComparison.Ordinal);
        Assert.Contains("client 500 broke", error, StringComparison.Ordinal);
    }

    [Fact]
    public void ShortThreadsRun_Passes()
    {
        (int code, JsonElement report) = Run("--mode", "threads", "--threads", "2", "--jobs", "5000", "--hang-rate", "0.001");
        Assert.Equal(0, code);
        Assert.Equal("pass", report.GetProperty("result").GetString());
    }

    [Theory]
    [InlineData("--bogus")]
    [InlineData("--jobs", "0")]
    [InlineData("--mode", "quantum")]
    [InlineData("--engines", "graphics=1")]
    [InlineData("--shared-fraction", "1.5")]
    public void BadUsage_ExitsWith2(params string[] args)
    {
        System.Reflection.MethodInfo entry = typeof(FenceCore.Stress.Invariant).Assembly.EntryPoint!;
        Assert.Equal(2, (int)entry.Invoke(null, [args])!);
    }

    [Theory]
    [InlineData("--json")]
    [InlineData("--trace")]
    [InlineData("--html")]
    public void OutputPathInAFolderThatDoesNotExist_IsUsageError_BeforeTheRun(string option)
    {
        System.Reflection.MethodInfo entry = typeof(FenceCore.Stress.Invariant).Assembly.EntryPoint!;
        var error = new StringWriter();
        TextWriter previous = Console.Error;
        Console.SetError(error);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        int code;
        try
        {
            // 5M jobs would take about a minute: a check after the run could not finish this fast.
            code = (int)entry.Invoke(null, [(string[])["--quiet", option, "/nonexistent/dir/x.json"]])!;
        }
        finally
        {
            Console.SetError(previous);
        }

        Assert.Equal(2, code);
        Assert.Contains($"{option} '/nonexistent/dir/x.json'", error.ToString(), StringComparison.Ordinal);
        Assert.Contains("does not exist", error.ToString(), StringComparison.Ordinal);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"took {sw.Elapsed}: the run started before the check");
    }
}
