using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.Coyote;
using Microsoft.Coyote.Logging;
using Microsoft.Coyote.Rewriting;
using Microsoft.Coyote.SystematicTesting;
using Xunit.Abstractions;

namespace FenceCore.Coyote;

/// <summary>
/// Runs one Coyote systematic test: N iterations of a concurrent scenario under Coyote's scheduler,
/// telemetry off, with the report logged to the xunit output and, on a bug, the reproducible trace
/// saved next to the test binaries with the command that replays it.
/// </summary>
/// <remarks>
/// Environment:
/// <list type="bullet">
/// <item><c>FENCECORE_COYOTE_ITERATIONS=100000</c> overrides every test's iteration count (the long mode).</item>
/// <item><c>FENCECORE_COYOTE_REPLAY=/path/TestName.trace</c> replays that trace in the test of that name
/// (the file name is the test name) instead of exploring.</item>
/// <item><c>FENCECORE_COYOTE_SEED=n</c> fixes the random seed (otherwise Coyote picks one; it is logged).</item>
/// </list>
/// </remarks>
internal static class CoyoteHarness
{
    public const string IterationsVariable = "FENCECORE_COYOTE_ITERATIONS";
    public const string ReplayVariable = "FENCECORE_COYOTE_REPLAY";
    public const string SeedVariable = "FENCECORE_COYOTE_SEED";

    /// <summary>The normal run's iterations per test; the issue asks for at least 1,000.</summary>
    public const uint DefaultIterations = 1_000;

    /// <summary>The outcome of one engine run, for tests that assert on it (the canary).</summary>
    internal sealed record Outcome(int Bugs, IReadOnlyList<string> BugReports, IReadOnlyCollection<string> UncontrolledInvocations, string? TracePath);

    /// <summary>Runs <paramref name="scenario"/> and asserts that Coyote found no bug.</summary>
    /// <remarks><paramref name="expectedUncontrolled"/>: calls Coyote reports as uncontrolled that the test
    /// expects (only with systematic fuzzing, which tolerates them); any other uncontrolled call fails.</remarks>
    public static void Check(ITestOutputHelper output, Func<Task> scenario, uint iterations = DefaultIterations,
        Func<Configuration, Configuration>? configure = null, IReadOnlyCollection<string>? expectedUncontrolled = null,
        [CallerMemberName] string testName = "")
    {
        Outcome outcome = Explore(output, scenario, iterations, configure, testName);
        Assert.True(outcome.Bugs == 0,
            $"Coyote found a bug in {testName}:\n{string.Join("\n", outcome.BugReports)}\nTrace: {outcome.TracePath}\n" +
            $"Replay: {ReplayCommand(testName, outcome.TracePath)}");
        string[] unexpected = [.. outcome.UncontrolledInvocations.Where(i => expectedUncontrolled?.Contains(i) != true)];
        Assert.True(unexpected.Length == 0,
            "Uncontrolled invocations (Coyote cannot interleave these; make them controlled): " + string.Join(", ", unexpected));
    }

    /// <summary>Runs <paramref name="scenario"/> and returns what Coyote found, without asserting on bugs.</summary>
    public static Outcome Explore(ITestOutputHelper output, Func<Task> scenario, uint iterations,
        Func<Configuration, Configuration>? configure, string testName)
    {
        AssertRewritten();
        WarmUp();

        string? replay = Environment.GetEnvironmentVariable(ReplayVariable);
        bool replaying = !string.IsNullOrEmpty(replay) &&
            string.Equals(Path.GetFileNameWithoutExtension(replay), testName, StringComparison.Ordinal);

        uint n = IterationsOverride() ?? iterations;
        Configuration config = Configuration.Create()
            .WithTelemetryEnabled(false)
            .WithTestingIterations(n)
            .WithVerbosityEnabled(VerbosityLevel.Warning);
        if (Environment.GetEnvironmentVariable(SeedVariable) is { Length: > 0 } seed)
        {
            config = config.WithRandomGeneratorSeed(uint.Parse(seed, CultureInfo.InvariantCulture));
        }

        if (configure is not null)
        {
            config = configure(config);
        }

        if (replaying)
        {
            config = config.WithReproducibleTrace(File.ReadAllText(replay!));
            output.WriteLine($"Replaying {replay}");
        }

        var log = new MemoryLogger(VerbosityLevel.Warning);
        using TestingEngine engine = TestingEngine.Create(config, scenario);
        engine.SetLogger(log);
        var clock = Stopwatch.StartNew();
        engine.Run();
        clock.Stop();

        TestReport report = engine.TestReport;
        string engineLog = log.ToString();
        output.WriteLine(Summary(testName, report, clock.Elapsed));
        output.WriteLine(engine.GetReport());
        if (engineLog.Length > 0)
        {
            output.WriteLine("Coyote log (warnings and errors):");
            output.WriteLine(engineLog.Length > 4000 ? engineLog[..4000] + "…" : engineLog);
        }

        // A silent no-op is the worst failure: the engine says so in its log when an assembly is not rewritten.
        Assert.DoesNotContain("is not rewritten", engineLog, StringComparison.OrdinalIgnoreCase);

        string? tracePath = null;
        if (report.NumOfFoundBugs > 0 && !replaying)
        {
            tracePath = SaveTrace(testName, engine.ReproducibleTrace);
            output.WriteLine("Bug report(s):");
            foreach (string bug in report.BugReports)
            {
                output.WriteLine(bug);
            }

            output.WriteLine($"Readable trace:\n{Truncate(engine.ReadableTrace, 20_000)}");
            output.WriteLine($"Reproducible trace saved to {tracePath}");
            output.WriteLine($"Replay with: {ReplayCommand(testName, tracePath)}");
        }

        foreach (string invocation in report.UncontrolledInvocations)
        {
            output.WriteLine($"Uncontrolled invocation: {invocation}");
        }

        if (replaying)
        {
            Assert.True(report.NumOfFoundBugs > 0, $"{ReplayVariable}={replay}: the trace did not reproduce a bug (see the log above).");
        }

        return new Outcome(report.NumOfFoundBugs, [.. report.BugReports], report.UncontrolledInvocations, tracePath);
    }

    /// <summary>
    /// Runs the library's static initializers outside the engine. Otherwise the first iteration in a
    /// process also schedules the atomics of, say, <see cref="Fence.Stub"/>'s creation, and a trace
    /// found in a later iteration does not replay in a fresh process.
    /// </summary>
    private static void WarmUp()
    {
        _ = Fence.Stub;
        var fence = new FenceSource(FenceContext.Allocate(), 1);
        fence.AddCallback(static _ => { });
        fence.Signal();
        _ = fence.WaitAsync(TimeSpan.Zero);
        using var timeline = new SwSyncTimeline("warm-up");
        Fence point = timeline.CreateFence(1);
        var array = new FenceArray([point, fence]);
        array.EnableSignaling();
        timeline.Increment();
    }

    /// <summary>Fails unless the libraries and this test assembly were all rewritten by the build.</summary>
    public static void AssertRewritten()
    {
        foreach (Assembly assembly in new[] { typeof(Fence).Assembly, typeof(FenceCore.VirtualGpu.Gpu).Assembly, typeof(CoyoteHarness).Assembly })
        {
            Assert.True(RewritingEngine.IsAssemblyRewritten(assembly),
                $"{assembly.Location} is not rewritten: the CoyoteRewrite target in FenceCore.Coyote.csproj did not run on it.");
        }
    }

    private static uint? IterationsOverride() =>
        Environment.GetEnvironmentVariable(IterationsVariable) is { Length: > 0 } value
            ? uint.Parse(value, CultureInfo.InvariantCulture)
            : null;

    private static string Summary(string testName, TestReport report, TimeSpan elapsed)
    {
        var s = new StringBuilder();
        s.Append(CultureInfo.InvariantCulture, $"[coyote] {testName}: ");
        s.Append(CultureInfo.InvariantCulture, $"iterations {report.NumOfExploredFairPaths + report.NumOfExploredUnfairPaths} ");
        s.Append(CultureInfo.InvariantCulture, $"(fair {report.NumOfExploredFairPaths}, unfair {report.NumOfExploredUnfairPaths}), ");
        if (report.NumOfExploredFairPaths > 0)
        {
            s.Append(CultureInfo.InvariantCulture,
                $"fair steps min/avg/max {report.MinExploredFairSteps}/{report.TotalExploredFairSteps / report.NumOfExploredFairPaths}/{report.MaxExploredFairSteps}, ");
        }

        if (report.NumOfExploredUnfairPaths > 0)
        {
            s.Append(CultureInfo.InvariantCulture,
                $"unfair steps min/avg/max {report.MinExploredUnfairSteps}/{report.TotalExploredUnfairSteps / report.NumOfExploredUnfairPaths}/{report.MaxExploredUnfairSteps}, ");
        }

        s.Append(CultureInfo.InvariantCulture, $"max-steps hit {report.MaxFairStepsHitInFairTests + report.MaxUnfairStepsHitInFairTests + report.MaxUnfairStepsHitInUnfairTests}, ");
        s.Append(CultureInfo.InvariantCulture, $"time {elapsed.TotalSeconds:F2}s, bugs {report.NumOfFoundBugs}, ");
        s.Append(CultureInfo.InvariantCulture, $"uncontrolled {report.UncontrolledInvocations.Count}");
        return s.ToString();
    }

    private static string SaveTrace(string testName, string trace)
    {
        string dir = Path.Combine(AppContext.BaseDirectory, "coyote-traces");
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, testName + ".trace");
        File.WriteAllText(path, trace);
        return path;
    }

    private static string ReplayCommand(string testName, string? tracePath) =>
        tracePath is null
            ? "(no trace)"
            : $"{ReplayVariable}={tracePath} dotnet test tests/FenceCore.Coyote -c Release --filter \"FullyQualifiedName~{testName}\"";

    private static string Truncate(string text, int max) => text.Length > max ? text[..max] + "…" : text;
}
