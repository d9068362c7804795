using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using FenceCore.Stress;
using FenceCore.VirtualGpu;

// fencecore-stress: the README's main command. Exit 0 when every invariant held, 1 when one broke,
// 2 for bad usage.
Options o;
try
{
    o = Options.Parse(args);
}
catch (HelpRequestedException)
{
    Console.WriteLine(Options.Usage);
    return 0;
}
catch (UsageException ex)
{
    Console.Error.WriteLine($"fencecore-stress: {ex.Message}");
    return 2;
}

if (o.Cores is int cores)
{
    if (!OperatingSystem.IsLinux() && !OperatingSystem.IsWindows())
    {
        Console.Error.WriteLine("fencecore-stress: --cores needs Linux or Windows (processor affinity).");
        return 2;
    }

    Process.GetCurrentProcess().ProcessorAffinity = (nint)((1L << cores) - 1);
}

var config = new GpuConfig
{
    Engines = o.Engines,
    DeviceMemoryBytes = o.DeviceMemoryMiB << 20,
    Mode = o.Mode,
    WorkerThreads = o.Threads,
    InjectSkipKernelFences = o.InjectSkipKernelFences,
    DependencyTimeout = o.Mode == GpuTimeMode.Threads ? TimeSpan.FromSeconds(1) : TimeSpan.FromMilliseconds(100),
    EngineTimeout = TimeSpan.FromMilliseconds(20),
};

using var gpu = new Gpu(config);
var checker = o.Checks ? new InvariantChecker(gpu, o.Mode == GpuTimeMode.Threads ? Math.Max(o.WatchdogMs, 10_000) : o.WatchdogMs, managedHeapLimitBytes: 4L << 30) : null;
checker?.Attach();
var trace = o.TracePath is null ? null : new TraceRecorder(gpu, o.TraceLimit);
var workload = new Workload(o, gpu, checker, trace);

Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"fencecore-stress: seed {o.Seed}, {o.Mode} mode, {o.Jobs:N0} jobs, {o.Clients} clients ({Math.Round(o.Clients * o.ExplicitFraction)} explicit-sync), {o.Buffers} buffers (≤{o.MaxBuffersPerJob}/job), {gpu.Engines.Count} engines [{string.Join(", ", gpu.Engines.Select(e => e.Name))}], {o.DeviceMemoryMiB} MiB, hang {o.HangRate}, kill {o.KillRate}, foreign {o.ForeignRate}{(o.Checks ? "" : ", checks off")}"));

var wall = Stopwatch.StartNew();
bool interactive = !Console.IsOutputRedirected && !o.Quiet;
long lastJobs = 0;
double lastT = 0;
double nextLine = 5;
int ticks = 0;
checker?.SampleRetainedHeap(); // the first post-GC sample: the run's own structures, before any job
using var progress = new Timer(_ =>
{
    checker?.SampleManagedHeap();
    if (++ticks % 5 == 0)
    {
        checker?.SampleRetainedHeap(trace?.RetainedBytesEstimate ?? 0); // a full GC every 5 s: a few % of the run
    }

    if (o.Quiet)
    {
        return;
    }

    double t = wall.Elapsed.TotalSeconds;
    long done = workload.CompletedClientJobs;
    double rate = (done - lastJobs) / Math.Max(1e-9, t - lastT);
    lastJobs = done;
    lastT = t;
    string line = string.Create(CultureInfo.InvariantCulture,
        $"[{t,6:F1}s] jobs {done,11:N0} / {o.Jobs:N0} (+{gpu.JobsCompleted - done:N0} moves)  {rate,9:N0} jobs/s  gpu time {gpu.NowNs / 1e9,8:F3}s  resets {gpu.Engines.Sum(e => e.Resets),4}  leaks {gpu.LeakCount}  violations {checker?.TotalViolations ?? 0}");
    if (interactive)
    {
        Console.Write("\r" + line);
    }
    else if (t >= nextLine)
    {
        nextLine += 5;
        Console.WriteLine(line);
    }
}, null, 1000, 1000);

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
}
else
{
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

    // Drain: every job must complete (timeouts included), then the workers go idle.
    var drain = Stopwatch.StartNew();
    while (gpu.JobsCompleted < gpu.JobsSubmitted && drain.Elapsed < TimeSpan.FromSeconds(60))
    {
        Thread.Sleep(5);
    }

    gpu.WaitForIdle(TimeSpan.FromSeconds(60));
}

wall.Stop();
progress.Change(Timeout.Infinite, Timeout.Infinite);
if (interactive)
{
    Console.WriteLine();
}

checker?.SampleManagedHeap();
checker?.SampleRetainedHeap(trace?.RetainedBytesEstimate ?? 0); // drained: nothing is in flight
checker?.CheckDrained();

// Report.
double seconds = wall.Elapsed.TotalSeconds;
long[] lat = workload.Latencies.ToArray();
Array.Sort(lat);
double P(double q) => lat.Length == 0 ? 0 : lat[Math.Min(lat.Length - 1, (int)(q * lat.Length))] / 1000.0;
var report = new Dictionary<string, object?>
{
    ["tool"] = "fencecore-stress",
    ["result"] = checker is null ? "unchecked" : checker.TotalViolations == 0 ? "pass" : "fail",
    ["seed"] = o.Seed,
    ["digest"] = $"0x{gpu.Digest:x16}",
    ["config"] = new Dictionary<string, object?>
    {
        ["mode"] = o.Mode.ToString().ToLowerInvariant(),
        ["jobs"] = o.Jobs,
        ["durationSeconds"] = o.DurationSeconds,
        ["clients"] = o.Clients,
        ["explicitFraction"] = o.ExplicitFraction,
        ["buffers"] = o.Buffers,
        ["maxBuffersPerJob"] = o.MaxBuffersPerJob,
        ["inFlightPerClient"] = o.InFlightPerClient,
        ["engines"] = gpu.Engines.Select(e => new { name = e.Name, kind = e.Kind.ToString().ToLowerInvariant(), creditLimit = e.Config.CreditLimit }).ToArray(),
        ["deviceMemoryBytes"] = config.DeviceMemoryBytes,
        ["hangRate"] = o.HangRate,
        ["killRate"] = o.KillRate,
        ["foreignRate"] = o.ForeignRate,
        ["threads"] = o.Mode == GpuTimeMode.Threads ? o.Threads : 1,
        ["cores"] = o.Cores ?? Environment.ProcessorCount,
        ["checks"] = o.Checks,
        ["injectSkipKernelFences"] = o.InjectSkipKernelFences,
    },
    ["counts"] = new Dictionary<string, object?>
    {
        ["jobsSubmitted"] = gpu.JobsSubmitted,
        ["jobsCompleted"] = gpu.JobsCompleted,
        ["clientJobs"] = workload.Submitted,
        ["fencesSignaled"] = gpu.FencesSignaled,
        ["events"] = gpu.EventCount,
        ["engineResets"] = gpu.Engines.Sum(e => e.Resets),
        ["hangsInjected"] = workload.Hangs,
        ["clientsKilled"] = workload.Kills,
        ["foreignDependencies"] = workload.ForeignDependencies,
        ["exports"] = workload.Exports,
        ["cpuAccesses"] = workload.CpuAccesses,
        ["syncobjQueries"] = workload.SyncObjQueries,
        ["leaks"] = gpu.LeakCount,
    },
    ["throughput"] = new Dictionary<string, object?>
    {
        ["wallSeconds"] = Math.Round(seconds, 3),
        ["gpuSeconds"] = Math.Round(gpu.NowNs / 1e9, 6),
        ["jobsPerSecond"] = Math.Round(gpu.JobsCompleted / seconds),
        ["fencesPerSecond"] = Math.Round(gpu.FencesSignaled / seconds),
    },
    ["latencyMicroseconds"] = new Dictionary<string, object?>
    {
        ["clock"] = o.Mode == GpuTimeMode.Virtual ? "virtual" : "monotonic",
        ["samples"] = lat.Length,
        ["p50"] = P(0.5),
        ["p90"] = P(0.9),
        ["p99"] = P(0.99),
        ["p999"] = P(0.999),
        ["max"] = lat.Length == 0 ? 0 : lat[^1] / 1000.0,
    },
    ["memory"] = new Dictionary<string, object?>
    {
        ["deviceCapacityBytes"] = config.DeviceMemoryBytes,
        ["devicePeakBytes"] = gpu.PeakDeviceMemoryUsed,
        ["managedPeakBytes"] = checker?.PeakManagedBytes ?? GC.GetTotalMemory(false),
        ["retainedBaselineBytes"] = checker?.BaselineRetainedBytes,
        ["retainedPeakBytes"] = checker?.PeakRetainedBytes,
        ["processPeakWorkingSetBytes"] = Process.GetCurrentProcess().PeakWorkingSet64,
        ["managedAllocatedBytes"] = GC.GetTotalAllocatedBytes(),
        ["managedAllocatedBytesPerJob"] = gpu.JobsCompleted == 0 ? 0 : GC.GetTotalAllocatedBytes() / gpu.JobsCompleted,
        ["gcCollections"] = new[] { GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2) },
    },
    ["invariants"] = checker?.All.Select(i => new Dictionary<string, object?>
    {
        ["name"] = i.Name,
        ["description"] = i.Description,
        ["checks"] = i.Checks,
        ["violations"] = i.Violations,
        ["firstViolation"] = i.FirstViolation,
    }).ToArray() ?? [],
};

// Summary table.
Console.WriteLine();
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"{gpu.JobsCompleted:N0} jobs ({workload.Submitted:N0} from clients) in {seconds:F1} s wall, {gpu.NowNs / 1e9:F3} s GPU time: {gpu.JobsCompleted / seconds:N0} jobs/s, {gpu.FencesSignaled / seconds:N0} fences/s"));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"latency (submit→finished, µs): p50 {P(0.5):F1}  p90 {P(0.9):F1}  p99 {P(0.99):F1}  max {(lat.Length == 0 ? 0 : lat[^1] / 1000.0):F1}"));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"faults: {workload.Hangs} hangs → {gpu.Engines.Sum(e => e.Resets)} engine resets, {workload.Kills} clients killed, {workload.ForeignDependencies} never-signalling foreign fences; {workload.Exports} exports, {workload.CpuAccesses} CPU accesses; device memory peak {gpu.PeakDeviceMemoryUsed >> 20} / {config.DeviceMemoryBytes >> 20} MiB"));
Console.WriteLine($"digest 0x{gpu.Digest:x16} (seed {o.Seed})");
if (checker is not null)
{
    Console.WriteLine();
    Console.WriteLine($"{"invariant",-26} {"checks",14} {"violations",11}");
    foreach (Invariant i in checker.All)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{i.Name,-26} {i.Checks,14:N0} {i.Violations,11:N0}"));
    }
}

if (o.JsonPath is not null)
{
    File.WriteAllText(o.JsonPath, JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }));
    Console.WriteLine($"report: {o.JsonPath}");
}

if (trace is not null && o.TracePath is not null)
{
    trace.Write(o.TracePath);
    Console.WriteLine($"trace: {o.TracePath} ({trace.Count:N0} jobs; open in https://ui.perfetto.dev)");
}

if (checker is { } c2 && c2.FirstBroken is { } broken)
{
    Console.WriteLine();
    Console.WriteLine($"FAIL: invariant '{broken.Name}' broke: {broken.FirstViolation}");
    var rest = new List<string>();
    for (int i = 0; i < args.Length; i++)
    {
        if (args[i] == "--seed")
        {
            i++;
            continue;
        }

        rest.Add(args[i]);
    }

    Console.WriteLine($"replay: dotnet run --project stress/FenceCore.Stress -c Release -- --seed {o.Seed} {string.Join(' ', rest)}".TrimEnd());
    return 1;
}

Console.WriteLine(checker is null ? "done (invariants not checked)" : "PASS: every invariant held");
return 0;
