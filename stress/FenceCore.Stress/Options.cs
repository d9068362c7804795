using System.Globalization;
using FenceCore.VirtualGpu;

namespace FenceCore.Stress;

/// <summary>Command-line options of the stress runner. Parsing errors name the option and the rule.</summary>
internal sealed class Options
{
    public int Seed { get; private set; } = 1;
    public long Jobs { get; private set; } = 5_000_000;
    public double? DurationSeconds { get; private set; }
    public List<EngineConfig> Engines { get; private set; } = [.. GpuConfig.DefaultEngines];
    public int Clients { get; private set; } = 24;
    public int Buffers { get; private set; } = 96;
    public int MaxBuffersPerJob { get; private set; } = 4;
    public bool FixedBuffersPerJob { get; private set; }
    public int InFlightPerClient { get; private set; } = 4;
    public double ExplicitFraction { get; private set; } = 0.125;
    public double HangRate { get; private set; } = 0.0002;
    public double KillRate { get; private set; } = 0.00005;
    public double ForeignRate { get; private set; } = 0.0001;
    public double ExportRate { get; private set; } = 0.01;
    public double CpuAccessRate { get; private set; } = 0.005;
    public long DeviceMemoryMiB { get; private set; } = 80;
    public GpuTimeMode Mode { get; private set; } = GpuTimeMode.Virtual;
    public int Threads { get; private set; } = Environment.ProcessorCount;
    public string? JsonPath { get; private set; }
    public string? TracePath { get; private set; }
    public int TraceLimit { get; private set; } = 20_000;
    public bool Checks { get; private set; } = true;
    public bool Quiet { get; private set; }
    public double WatchdogMs { get; private set; } = 1000;
    public int? Cores { get; private set; }
    public bool InjectSkipKernelFences { get; private set; }

    public const string Usage = """
        fencecore-stress — drive the virtual GPU with many clients and check invariants the whole time.

        Usage: dotnet run --project stress/FenceCore.Stress -c Release -- [options]

        With no options it runs the default scenario: 24 clients (1 in 8 explicit-sync), 96 buffers in
        80 MiB of device memory, 6 engines (gfx, compute0, compute1, copy0, copy1, video), 5 million
        jobs of 1-4 buffers each, with hangs, client kills and never-signalling foreign fences, in
        deterministic virtual time (seed 1). It finishes in about a minute.

        Workload
          --seed N                 random seed; in virtual mode the same seed replays the same run (default 1)
          --jobs N                 client jobs to submit in total (default 5000000)
          --duration SECONDS       stop submitting after this much wall-clock time instead (digest then varies)
          --engines LIST           engines as kind=count pairs, e.g. graphics=1,compute=2,copy=2,video=1
          --clients N              clients (default 24)
          --buffers N              shared buffers (default 96)
          --buffers-per-job N      at most N buffers per job, 1..N uniformly (default 4)
          --fixed-buffers          every job touches exactly --buffers-per-job buffers
          --in-flight N            jobs each client keeps in flight (default 4)
          --explicit-fraction F    fraction of explicit-sync clients, 0..1 (default 0.125)
          --memory MIB             device memory in MiB (default 80, so buffers get evicted and moved back)
        Faults (probabilities per job, 0..1)
          --hang-rate P            job hangs; the engine timeout resets it (default 0.0002)
          --kill-rate P            the client is killed and restarted (default 0.00005)
          --foreign-rate P         job depends on a foreign fence that never signals (default 0.0001)
          --inject-skip-kernel     bug injection: explicit-sync jobs skip KERNEL fences (the run must fail)
        Checks and output
          --mode virtual|threads   deterministic virtual time, or real worker threads (default virtual)
          --threads N              worker threads in threads mode (default: all cores)
          --cores N                pin the process to its first N cores (to compare 1 core with 2)
          --no-checks              measure throughput only (invariants not checked)
          --watchdog-ms MS         every job must finish within this much GPU time (default 1000)
          --json PATH              write the JSON report
          --trace PATH             write a Chrome trace-event JSON of engines and jobs (opens in Perfetto)
          --trace-limit N          jobs to put in the trace (default 20000)
          --quiet                  no live progress
          --help                   this text

        Exit codes: 0 every invariant held; 1 an invariant broke (the first violation and the seed are
        printed); 2 bad usage.
        """;

    public static Options Parse(string[] args)
    {
        var o = new Options();
        for (int i = 0; i < args.Length; i++)
        {
            string name = args[i];
            string Value()
            {
                if (i + 1 >= args.Length)
                {
                    throw new UsageException($"Option {name} needs a value.");
                }

                return args[++i];
            }

            switch (name)
            {
                case "--help" or "-h":
                    throw new HelpRequestedException();
                case "--seed": o.Seed = Int(name, Value(), int.MinValue, int.MaxValue); break;
                case "--jobs": o.Jobs = Long(name, Value(), 1, long.MaxValue); break;
                case "--duration": o.DurationSeconds = Double(name, Value(), 0.001, 1e7); break;
                case "--engines": o.Engines = ParseEngines(Value()); break;
                case "--clients": o.Clients = Int(name, Value(), 1, 100_000); break;
                case "--buffers": o.Buffers = Int(name, Value(), 1, 1_000_000); break;
                case "--buffers-per-job": o.MaxBuffersPerJob = Int(name, Value(), 0, 64); break;
                case "--fixed-buffers": o.FixedBuffersPerJob = true; break;
                case "--in-flight": o.InFlightPerClient = Int(name, Value(), 1, 1024); break;
                case "--explicit-fraction": o.ExplicitFraction = Double(name, Value(), 0, 1); break;
                case "--memory": o.DeviceMemoryMiB = Long(name, Value(), 1, 1 << 20); break;
                case "--hang-rate": o.HangRate = Double(name, Value(), 0, 1); break;
                case "--kill-rate": o.KillRate = Double(name, Value(), 0, 1); break;
                case "--foreign-rate": o.ForeignRate = Double(name, Value(), 0, 1); break;
                case "--inject-skip-kernel": o.InjectSkipKernelFences = true; break;
                case "--mode":
                    o.Mode = Value() switch
                    {
                        "virtual" => GpuTimeMode.Virtual,
                        "threads" => GpuTimeMode.Threads,
                        var v => throw new UsageException($"--mode must be 'virtual' or 'threads', not '{v}'."),
                    };
                    break;
                case "--threads": o.Threads = Int(name, Value(), 1, 1024); break;
                case "--cores": o.Cores = Int(name, Value(), 1, Environment.ProcessorCount); break;
                case "--no-checks": o.Checks = false; break;
                case "--watchdog-ms": o.WatchdogMs = Double(name, Value(), 1, 1e9); break;
                case "--json": o.JsonPath = Value(); break;
                case "--trace": o.TracePath = Value(); break;
                case "--trace-limit": o.TraceLimit = Int(name, Value(), 0, 10_000_000); break;
                case "--quiet": o.Quiet = true; break;
                default: throw new UsageException($"Unknown option '{name}'. Run with --help for the list.");
            }
        }

        // Output paths are checked before the run: a long run must not end in a stack trace.
        CheckOutputPath("--json", o.JsonPath);
        CheckOutputPath("--trace", o.TracePath);
        return o;
    }

    /// <summary>The file may be created: its folder exists and is not a file, and the path is not a folder.</summary>
    private static void CheckOutputPath(string option, string? path)
    {
        if (path is null)
        {
            return;
        }

        string full;
        try
        {
            full = Path.GetFullPath(path);
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new UsageException($"{option} '{path}' is not a valid file path ({ex.Message}).");
        }

        string? folder = Path.GetDirectoryName(full);
        if (Directory.Exists(full))
        {
            throw new UsageException($"{option} '{path}' is a folder; give a file path.");
        }

        if (folder is null || !Directory.Exists(folder))
        {
            throw new UsageException($"{option} '{path}': the folder '{folder}' does not exist; create it first (nothing was run).");
        }
    }

    private static List<EngineConfig> ParseEngines(string spec)
    {
        var engines = new List<EngineConfig>();
        foreach (string part in spec.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            string[] kv = part.Split('=');
            if (kv.Length != 2 || !Enum.TryParse(kv[0], ignoreCase: true, out EngineKind kind) || !Enum.IsDefined(kind))
            {
                throw new UsageException($"--engines takes kind=count pairs with kinds graphics, compute, copy, video; '{part}' is not one.");
            }

            int count = Int("--engines", kv[1], 1, 64);
            string prefix = kind switch { EngineKind.Graphics => "gfx", EngineKind.Compute => "compute", EngineKind.Copy => "copy", _ => "video" };
            for (int i = 0; i < count; i++)
            {
                engines.Add(new EngineConfig(count == 1 && kind is EngineKind.Graphics or EngineKind.Video ? prefix : $"{prefix}{i}", kind));
            }
        }

        if (!engines.Any(e => e.Kind == EngineKind.Copy))
        {
            throw new UsageException("--engines needs at least one copy engine (copy=1): the memory manager runs moves on it.");
        }

        return engines;
    }

    private static int Int(string name, string v, int min, int max) =>
        int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int x) && x >= min && x <= max
            ? x
            : throw new UsageException($"{name} must be a whole number from {min} to {max}, not '{v}'.");

    private static long Long(string name, string v, long min, long max) =>
        long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out long x) && x >= min && x <= max
            ? x
            : throw new UsageException($"{name} must be a whole number from {min} to {max}, not '{v}'.");

    private static double Double(string name, string v, double min, double max) =>
        double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double x) && x >= min && x <= max
            ? x
            : throw new UsageException($"{name} must be a number from {min} to {max}, not '{v}'.");
}

internal sealed class UsageException(string message) : Exception(message);

internal sealed class HelpRequestedException : Exception;
