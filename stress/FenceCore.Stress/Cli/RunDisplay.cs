using System.Globalization;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace FenceCore.Stress;

/// <summary>One reading of a run in progress, for the live display and the plain progress lines.</summary>
internal readonly record struct ProgressReading(TimeSpan Wall, long ClientJobs, long TargetJobs, long Moves, double GpuSeconds, int Resets, long Leaks, long Violations);

/// <summary>
/// The runner's terminal output on Spectre.Console: a live progress bar with rate and ETA on a terminal;
/// plain lines, one every <see cref="PlainLineInterval"/> (5 s), when the output is redirected or
/// <c>CI=true</c> (<c>--quiet</c> prints none); then the summary tables and the latency bar chart.
/// </summary>
internal sealed class RunDisplay
{
    /// <summary>How often the plain progress prints a line.</summary>
    public static readonly TimeSpan PlainLineInterval = TimeSpan.FromSeconds(5);

    private readonly IAnsiConsole _console;
    private readonly TextWriter _out;
    private readonly bool _quiet;
    private readonly double _interval;   // seconds between plain lines
    private double _nextPlainLine;       // timer thread only
    private ProgressTask? _task;
    private long _lastLineJobs;          // timer thread only
    private double _lastLineSeconds;     // timer thread only

    /// <summary>The runner's display on the process's console: live unless <see cref="IsLive"/> says not.</summary>
    public RunDisplay(bool quiet)
        : this(quiet, IsLive(quiet, System.Console.IsOutputRedirected, Environment.GetEnvironmentVariable("CI")), System.Console.Out, PlainLineInterval)
    {
    }

    /// <summary>A display writing to <paramref name="output"/>, live or plain as told, with plain lines every
    /// <paramref name="plainLineInterval"/> (tests give a short one and readings of their own).</summary>
    internal RunDisplay(bool quiet, bool live, TextWriter output, TimeSpan plainLineInterval)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(plainLineInterval, TimeSpan.Zero);
        _quiet = quiet;
        _out = output;
        _interval = plainLineInterval.TotalSeconds;
        _nextPlainLine = _interval;
        Live = live;
        _console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = Live ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = Live ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = Live ? InteractionSupport.Yes : InteractionSupport.No,
        });
        if (!Live)
        {
            _console.Profile.Width = 120; // redirected: wide enough for the tables, whatever the pipe says
        }
    }

    /// <summary>Whether progress is drawn live: not quiet, output to a terminal, and <c>CI</c> not
    /// <c>true</c> (any case).</summary>
    public static bool IsLive(bool quiet, bool outputRedirected, string? ci) =>
        !quiet && !outputRedirected && !string.Equals(ci, "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>True when progress is drawn live (a terminal, not CI, not quiet).</summary>
    public bool Live { get; }

    /// <summary>A plain line, never wrapped (a replay command must stay one line to copy). Not called while
    /// the live progress is drawn.</summary>
    public static void Line(string text) => System.Console.Out.WriteLine(text);

    /// <summary>Runs <paramref name="body"/> with the live progress bar on a terminal, or directly.</summary>
    public void Run(long targetJobs, Action body)
    {
        if (!Live)
        {
            body();
            return;
        }

        _console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RateColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                _task = ctx.AddTask("jobs", maxValue: targetJobs);
                body();
                _task.Value = _task.MaxValue;
                _task.StopTask();
            });
    }

    /// <summary>Called about twice a second from the run's timer thread (one thread at a time).</summary>
    public void Update(ProgressReading r)
    {
        if (_quiet)
        {
            return;
        }

        if (Live)
        {
            if (_task is { } task)
            {
                task.Value = Math.Min(r.ClientJobs, r.TargetJobs);
                task.Description = string.Create(CultureInfo.InvariantCulture,
                    $"jobs {r.ClientJobs:N0} (+{r.Moves:N0} moves)  gpu {r.GpuSeconds:F3}s  resets {r.Resets}  leaks {r.Leaks}  violations {r.Violations}");
            }

            return;
        }

        double t = r.Wall.TotalSeconds;
        if (t >= _nextPlainLine)
        {
            // The next slot after this reading: a late timer (a GC, a loaded machine) skips the slots it
            // missed instead of printing them back to back.
            _nextPlainLine = (Math.Floor(t / _interval) + 1) * _interval;
            double rate = (r.ClientJobs - _lastLineJobs) / Math.Max(1e-9, t - _lastLineSeconds);
            _lastLineJobs = r.ClientJobs;
            _lastLineSeconds = t;
            string eta = rate > 0 && r.ClientJobs < r.TargetJobs ? TimeSpan.FromSeconds(Math.Ceiling((r.TargetJobs - r.ClientJobs) / rate)).ToString("c", CultureInfo.InvariantCulture) : "-";
            _out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"[{t,6:F1}s] jobs {r.ClientJobs,11:N0} / {r.TargetJobs:N0} (+{r.Moves:N0} moves)  {rate,9:N0} jobs/s  eta {eta}  gpu time {r.GpuSeconds,8:F3}s  resets {r.Resets,4}  leaks {r.Leaks}  violations {r.Violations}"));
        }
    }

    /// <summary>The summary: figures, faults, latency chart and the invariants.</summary>
    public void Summary(StressReport report)
    {
        var figures = new Table().Border(TableBorder.Rounded).Title("[bold]run[/]").HideHeaders().AddColumn("figure").AddColumn(new TableColumn("value").RightAligned());
        void Row(string name, string value) => figures.AddRow(Markup.Escape(name), Markup.Escape(value));
        ReportCounts c = report.Counts;
        ReportThroughput t = report.Throughput;
        Row("jobs completed", string.Create(CultureInfo.InvariantCulture, $"{c.JobsCompleted:N0} ({c.ClientJobs:N0} from clients, {c.KernelJobs:N0} moves/clears/evictions)"));
        Row("wall time", string.Create(CultureInfo.InvariantCulture, $"{t.WallSeconds:F1} s"));
        Row("GPU time", string.Create(CultureInfo.InvariantCulture, $"{t.GpuSeconds:F3} s ({report.Config.Mode})"));
        Row("throughput", string.Create(CultureInfo.InvariantCulture, $"{t.JobsPerSecond:N0} jobs/s, {t.FencesPerSecond:N0} fences/s"));
        if (t.CoreRoundTripNs is { } rt)
        {
            Row("core round trip", string.Create(CultureInfo.InvariantCulture, $"{rt.Before:F0} ns before, {rt.After:F0} ns after (one cache line between two threads; two-core figures compare only at similar values)"));
        }
        Row("latency submit→finished", string.Create(CultureInfo.InvariantCulture, $"p50 {report.Latency.P50:F1} µs  p99 {report.Latency.P99:F1} µs  max {report.Latency.Max:F1} µs"));
        Row("faults", string.Create(CultureInfo.InvariantCulture, $"{c.HangsInjected} hangs → {c.EngineResets} resets, {c.ClientsKilled} kills, {c.ForeignDependencies} foreign fences, {c.DependencyTimeouts} dependency timeouts"));
        if (report.Devices.Count > 1)
        {
            Row("devices", string.Create(CultureInfo.InvariantCulture,
                $"{string.Join(", ", report.Devices.Select(d => $"{d.Name} {d.JobsCompleted:N0} jobs"))}; {c.Imports} imports, compositors {c.CompositorJobs:N0} jobs ({c.ImportReads:N0} reads of imports), {c.MoveNotifications:N0} move notifications, {c.CrossDeviceLeaks:N0} cross-device leaks"));
        }

        Row("memory", string.Create(CultureInfo.InvariantCulture, $"device peak {report.Memory.DevicePeakBytes >> 20} / {report.Memory.DeviceCapacityBytes >> 20} MiB, {c.Evictions:N0} evictions; {report.Memory.ManagedAllocatedBytesPerJob:N0} B allocated per job"));
        Row("digest", $"{report.Digest} (seed {report.Seed})");
        _console.Write(figures);

        if (report.Latency.Distribution.Count > 0)
        {
            _console.Write(LatencyChart(report.Latency));
        }

        if (report.Invariants.Count > 0)
        {
            var invariants = new Table().Border(TableBorder.Rounded).Title("[bold]invariants[/]")
                .AddColumn("invariant").AddColumn(new TableColumn("checks").RightAligned()).AddColumn(new TableColumn("violations").RightAligned());
            foreach (ReportInvariant i in report.Invariants)
            {
                invariants.AddRow(new Markup(Markup.Escape(i.Name)), new Markup(i.Checks.ToString("N0", CultureInfo.InvariantCulture)),
                    new Markup(i.Violations == 0 ? "0" : $"[red]{i.Violations.ToString("N0", CultureInfo.InvariantCulture)}[/]"));
            }

            _console.Write(invariants);
        }
    }

    /// <summary>The latency distribution as bars, one per power of two of microseconds that holds samples.</summary>
    private static BarChart LatencyChart(ReportLatency latency)
    {
        var bars = new SortedDictionary<int, long>();
        foreach (ReportBucket b in latency.Distribution)
        {
            int exponent = (int)Math.Ceiling(Math.Log2(Math.Max(b.UpToMicroseconds, 1e-3)) - 1e-9);
            bars.TryGetValue(exponent, out long sum);
            bars[exponent] = sum + b.Count;
        }

        var chart = new BarChart().Width(100).Label(string.Create(CultureInfo.InvariantCulture, $"[bold]latency submit→finished ({latency.Clock} clock, {latency.Samples:N0} jobs)[/]"));
        foreach ((int exponent, long count) in bars)
        {
            double upTo = Math.Pow(2, exponent);
            string label = upTo >= 1000
                ? string.Create(CultureInfo.InvariantCulture, $"≤ {upTo / 1000:0.#} ms")
                : string.Create(CultureInfo.InvariantCulture, $"≤ {upTo:0.###} µs");
            chart.AddItem(label, count, Color.SteelBlue);
        }

        return chart;
    }

    /// <summary>Jobs per second, from the task's own speed estimate.</summary>
    private sealed class RateColumn : ProgressColumn
    {
        public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime) =>
            new Text(task.Speed is double speed ? string.Create(CultureInfo.InvariantCulture, $"{speed,9:N0} jobs/s") : "        - jobs/s");
    }
}
