using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text.Json;
using FenceCore.VirtualGpu;

namespace FenceCore.Stress;

/// <summary>One stress run: builds the GPU and the workload from the settings, drives it to the end with
/// progress, then prints the summary and writes the requested report, trace and page.</summary>
internal static class StressRun
{
    public static int Execute(StressSettings o)
    {
        if (o.Cores is int cores)
        {
            if (!OperatingSystem.IsLinux() && !OperatingSystem.IsWindows())
            {
                Console.Error.WriteLine("fencecore-stress: --cores needs Linux or Windows (processor affinity).");
                return StressCommand.ExitUsage;
            }

            Process.GetCurrentProcess().ProcessorAffinity = (nint)((1L << cores) - 1);
        }

        GpuConfig[] configs = [.. Enumerable.Range(0, o.Devices).Select(d => new GpuConfig
        {
            Name = $"gpu{d}",
            Engines = o.Engines,
            DeviceMemoryBytes = o.DeviceMemoryMiB << 20,
            Mode = o.Mode,
            WorkerThreads = o.Threads,
            InjectSkipKernelFences = o.InjectSkipKernelFences,
            InjectImporterSkipsKernelFences = o.InjectImporterSkipsKernelFences,
            DependencyTimeout = o.Mode == GpuTimeMode.Threads ? TimeSpan.FromSeconds(1) : TimeSpan.FromMilliseconds(100),
            EngineTimeout = TimeSpan.FromMilliseconds(20),
        })];
        GpuConfig config = configs[0];

        using var gpu = new DeviceSet(configs);
        var checker = o.Checks ? new InvariantChecker(gpu, o.Mode == GpuTimeMode.Threads ? Math.Max(o.WatchdogMs, 10_000) : o.WatchdogMs, managedHeapLimitBytes: 4L << 30) : null;
        checker?.Attach();
        var stats = new RunStatistics(gpu);
        var trace = o.TracePath is null ? null : new PerfettoTrace(gpu, o.TraceLimit);
        var workload = new Workload(o, gpu, checker, trace);
        var display = new RunDisplay(o.Quiet);

        RunDisplay.Line(string.Create(CultureInfo.InvariantCulture,
            $"fencecore-stress {Version}: seed {o.Seed}, {o.Mode} mode, {o.Jobs:N0} jobs, {Devices(o, workload)}{o.Clients} clients ({Math.Round(o.Clients * o.ExplicitFraction)} explicit-sync), {o.Buffers} buffers (≤{o.MaxBuffersPerJob}/job), {gpu.Primary.Engines.Count} engines{(o.Devices > 1 ? " each" : "")} [{string.Join(", ", gpu.Primary.Engines.Select(e => e.Name))}], {o.DeviceMemoryMiB} MiB{(o.Devices > 1 ? " each" : "")}, hang {o.HangRate:0.######}, kill {o.KillRate:0.######}, foreign {o.ForeignRate:0.######}{(o.Checks ? "" : ", checks off")}{(o.InjectImporterSkipsKernelFences ? ", importers skip KERNEL fences (injected)" : o.InjectSkipKernelFences ? ", explicit-sync jobs skip KERNEL fences (injected)" : "")}"));

        // Threads mode: the round trip of a cache line between two cores, which sets what a second core gives
        // (see CoreRoundTrip); before and after, as the host may move the vCPUs during the run.
        int runCores = o.Cores ?? Environment.ProcessorCount;
        double? roundTripBefore = o.Mode == GpuTimeMode.Threads ? CoreRoundTrip.MeasureNs(runCores) : null;
        Stopwatch wall = stats.Wall;
        wall.Start();
        int ticks = 0;
        checker?.SampleRetainedHeap(); // the first post-GC sample: the run's own structures, before any job
        ProgressReading Reading() => new(wall.Elapsed, workload.CompletedClientJobs, o.Jobs, gpu.JobsCompleted - workload.CompletedClientJobs,
            gpu.NowNs / 1e9, gpu.Engines.Sum(e => e.Resets), gpu.LeakCount, checker?.TotalViolations ?? 0);
        using var timer = new Timer(_ =>
        {
            ticks++;
            stats.Sample(wall.Elapsed, workload.CompletedClientJobs);
            if (ticks % 2 == 0)
            {
                checker?.SampleManagedHeap();
            }

            if (ticks % 10 == 0)
            {
                checker?.SampleRetainedHeap(trace?.RetainedBytesEstimate ?? 0); // a full GC every 5 s: a few % of the run
            }

            display.Update(Reading());
        }, null, 500, 500);

        display.Run(o.Jobs, () => Drive(o, gpu, workload, wall));
        wall.Stop();
        timer.Change(Timeout.Infinite, Timeout.Infinite);
        ReportCoreRoundTrip? roundTrip = roundTripBefore is { } before ? new ReportCoreRoundTrip(before, CoreRoundTrip.MeasureNs(runCores) ?? before) : null;
        stats.Sample(wall.Elapsed, workload.CompletedClientJobs);

        checker?.SampleManagedHeap();
        checker?.SampleRetainedHeap(trace?.RetainedBytesEstimate ?? 0); // drained: nothing is in flight
        checker?.CheckDrained();

        Invariant? broken = checker?.FirstBroken;
        string? replay = broken is null ? null : StressCommand.ReplayCommand(o.ReplayArguments);
        StressReport report = BuildReport(o, config, gpu, checker, workload, stats, wall.Elapsed.TotalSeconds, replay, roundTrip);
        RunDisplay.Line("");
        display.Summary(report);

        // An output that cannot be written is reported in one line; the verdict still stands.
        bool written = true;
        if (o.JsonPath is not null)
        {
            written &= OutputFiles.TryWrite("--json", o.JsonPath, path =>
            {
                File.WriteAllText(path, JsonSerializer.Serialize(report, StressReportJsonContext.Default.StressReport));
                RunDisplay.Line($"report: {path}");
            });
        }

        if (o.HtmlPath is not null)
        {
            written &= OutputFiles.TryWrite("--html", o.HtmlPath, path =>
            {
                HtmlReport.Write(path, report);
                RunDisplay.Line($"page: {path} (self-contained, opens offline)");
            });
        }

        if (trace is not null && o.TracePath is not null)
        {
            written &= OutputFiles.TryWrite("--trace", o.TracePath, path =>
            {
                var writing = Stopwatch.StartNew();
                IReadOnlyDictionary<string, long> kinds = trace.Write(path);
                writing.Stop();
                RunDisplay.Line(trace.Summary(path, kinds, writing.Elapsed));
            });
        }

        if (broken is not null)
        {
            RunDisplay.Line("");
            RunDisplay.Line($"FAIL: invariant '{broken.Name}' broke: {broken.FirstViolation}");
            RunDisplay.Line($"replay: {replay}");
            return StressCommand.ExitViolation; // whatever was written: 1 means an invariant broke
        }

        RunDisplay.Line(checker is null ? "done (invariants not checked)" : "PASS: every invariant held");
        return written ? StressCommand.ExitPass : StressCommand.ExitUsage;
    }

    private static string Devices(StressSettings o, Workload workload) =>
        o.Devices == 1 ? "" : string.Create(CultureInfo.InvariantCulture, $"{o.Devices} devices sharing {workload.Imports} imports, ");

    /// <summary>The informational version of the runner (the same string <c>--version</c> prints).</summary>
    public static string Version { get; } =
        typeof(StressRun).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    private static void Drive(StressSettings o, DeviceSet gpu, Workload workload, Stopwatch wall)
    {
        if (o.Mode == GpuTimeMode.Virtual)
        {
            workload.StartVirtual();
            long steps = 0;
            while (gpu.RunOne())
            {
                if ((++steps & 4095) == 0 && o.DurationSeconds is double limit && wall.Elapsed.TotalSeconds >= limit)
                {
                    workload.Stop();
                }
            }

            return;
        }

        Thread[] clients = workload.StartThreads(Math.Max(1, o.Threads));
        while (!workload.Stopped)
        {
            Thread.Sleep(20);
            if (o.DurationSeconds is double limit && wall.Elapsed.TotalSeconds >= limit)
            {
                workload.Stop();
            }
        }

        foreach (Thread t in clients)
        {
            t.Join(TimeSpan.FromSeconds(60));
        }

        if (workload.ClientFailure is { } failure)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure); // the run fails (exit 1)
        }

        // Drain: every job must complete (timeouts included), then the workers go idle.
        var drain = Stopwatch.StartNew();
        while (gpu.JobsCompleted < gpu.JobsSubmitted && drain.Elapsed < TimeSpan.FromSeconds(60))
        {
            Thread.Sleep(5);
        }

        gpu.WaitForIdle(TimeSpan.FromSeconds(60));
    }

    private static StressReport BuildReport(StressSettings o, GpuConfig config, DeviceSet gpu, InvariantChecker? checker, Workload workload, RunStatistics stats, double seconds, string? replay, ReportCoreRoundTrip? roundTrip)
    {
        long allocated = GC.GetTotalAllocatedBytes();
        return new StressReport
        {
            Version = Version,
            Result = checker is null ? "unchecked" : checker.TotalViolations == 0 ? "pass" : "fail",
            Seed = o.Seed,
            Digest = $"0x{gpu.Digest:x16}",
            Config = new ReportConfig(
                o.Mode.ToString().ToLowerInvariant(), o.Jobs, o.DurationSeconds, o.Clients, o.ExplicitFraction, o.Buffers, o.MaxBuffersPerJob, o.FixedBuffersPerJob,
                o.InFlightPerClient, [.. gpu.Primary.Engines.Select(e => new ReportEngineConfig(e.Name, RunStatistics.Kind(e.Kind), e.Config.CreditLimit))],
                config.DeviceMemoryBytes, o.HangRate, o.KillRate, o.ForeignRate, o.Mode == GpuTimeMode.Threads ? o.Threads : 1,
                o.Cores ?? Environment.ProcessorCount, o.Checks, o.InjectSkipKernelFences, o.Devices, o.InjectImporterSkipsKernelFences, o.SharedFraction),
            Counts = new ReportCounts(
                gpu.JobsSubmitted, gpu.JobsCompleted, workload.Submitted, stats.KernelJobs, stats.Evictions, gpu.FencesSignaled, gpu.EventCount,
                gpu.Engines.Sum(e => e.Resets), workload.Hangs, workload.Kills, workload.ForeignDependencies, stats.DependencyTimeouts,
                workload.Exports, workload.CpuAccesses, workload.SyncObjQueries, gpu.LeakCount,
                workload.Imports, workload.MoveNotifications, stats.CrossDeviceLeaks, workload.CompositorJobs, workload.ImportReads, workload.ImportWrites),
            Throughput = new ReportThroughput(Math.Round(seconds, 3), Math.Round(gpu.NowNs / 1e9, 6), Math.Round(gpu.JobsCompleted / seconds), Math.Round(gpu.FencesSignaled / seconds), roundTrip),
            Latency = stats.LatencyReport(o.Mode == GpuTimeMode.Virtual ? "virtual" : "monotonic"),
            Memory = new ReportMemory(
                gpu.DeviceMemoryBytes, gpu.PeakDeviceMemoryUsed, checker?.PeakManagedBytes ?? GC.GetTotalMemory(false),
                checker?.BaselineRetainedBytes, checker?.PeakRetainedBytes, Process.GetCurrentProcess().PeakWorkingSet64,
                allocated, gpu.JobsCompleted == 0 ? 0 : allocated / gpu.JobsCompleted,
                [GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2)]),
            Devices = [.. gpu.Devices.Select(d => new ReportDevice(d.Name, $"0x{d.Digest:x16}", d.JobsSubmitted, d.JobsCompleted, d.LeakCount, d.Config.DeviceMemoryBytes, d.PeakDeviceMemoryUsed))],
            Engines = stats.Engines(),
            Timeline = stats.Timeline,
            Invariants = checker?.All.Select(i => new ReportInvariant(i.Name, i.Description, i.Checks, i.Violations, i.FirstViolation)).ToArray() ?? [],
            Replay = replay,
        };
    }
}
