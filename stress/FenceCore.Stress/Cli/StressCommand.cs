using System.CommandLine;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Numerics;
using System.Reflection;
using FenceCore.VirtualGpu;

namespace FenceCore.Stress;

/// <summary>
/// The runner's command line, on System.CommandLine: generated help (<c>--help</c>), <c>--version</c>,
/// response files (<c>@args.rsp</c>), and completions through the <c>[suggest]</c> directive that
/// <c>dotnet-suggest</c> calls. Every rule is a validator that names its option, so a bad command line
/// fails before anything runs.
/// </summary>
/// <remarks>Exit codes: 0 every invariant held (or help and version), 1 an invariant broke, 2 bad usage.</remarks>
internal sealed class StressCommand
{
    public const int ExitPass = 0;
    public const int ExitViolation = 1;
    public const int ExitUsage = 2;

    private static readonly StressSettings Defaults = new();

    private readonly Option<int> _seed = new("--seed") { Description = "Random seed; in virtual mode the same seed replays the same run.", DefaultValueFactory = _ => Defaults.Seed, HelpName = "N" };
    private readonly Option<long> _jobs = new("--jobs") { Description = "Client jobs to submit in total.", DefaultValueFactory = _ => Defaults.Jobs, HelpName = "N" };
    private readonly Option<double?> _duration = new("--duration") { Description = "Stop submitting after this much wall-clock time instead (the digest then varies).", HelpName = "SECONDS" };
    private readonly Option<IReadOnlyList<EngineConfig>> _engines = new("--engines")
    {
        Description = "Engines as kind=count pairs [default: graphics=1,compute=2,copy=2,video=1].",
        HelpName = "LIST",
        CustomParser = r => ParseEngines(r),
    };
    private readonly Option<int> _clients = new("--clients") { Description = "Clients.", DefaultValueFactory = _ => Defaults.Clients, HelpName = "N" };
    private readonly Option<int> _buffers = new("--buffers") { Description = "Buffers of each device.", DefaultValueFactory = _ => Defaults.Buffers, HelpName = "N" };
    private readonly Option<int> _buffersPerJob = new("--buffers-per-job") { Description = "At most N buffers per job, 1..N uniformly.", DefaultValueFactory = _ => Defaults.MaxBuffersPerJob, HelpName = "N" };
    private readonly Option<bool> _fixedBuffers = new("--fixed-buffers") { Description = "Every job touches exactly --buffers-per-job buffers." };
    private readonly Option<int> _inFlight = new("--in-flight") { Description = "Jobs each client keeps in flight.", DefaultValueFactory = _ => Defaults.InFlightPerClient, HelpName = "N" };
    private readonly Option<double> _explicitFraction = new("--explicit-fraction") { Description = "Fraction of explicit-sync clients, 0..1.", DefaultValueFactory = _ => Defaults.ExplicitFraction, HelpName = "F" };
    private readonly Option<long> _memory = new("--memory") { Description = "Device memory of each device in MiB (the default is small enough that buffers get evicted and moved back).", DefaultValueFactory = _ => Defaults.DeviceMemoryMiB, HelpName = "MIB" };
    private readonly Option<double> _hangRate = new("--hang-rate") { Description = "Probability per job that it hangs; the engine timeout resets it.", DefaultValueFactory = _ => Defaults.HangRate, HelpName = "P" };
    private readonly Option<double> _killRate = new("--kill-rate") { Description = "Probability per job that its client is killed and restarted.", DefaultValueFactory = _ => Defaults.KillRate, HelpName = "P" };
    private readonly Option<double> _foreignRate = new("--foreign-rate") { Description = "Probability per job that it depends on a foreign fence that never signals.", DefaultValueFactory = _ => Defaults.ForeignRate, HelpName = "P" };
    private readonly Option<string?> _injectSkipKernel = new("--inject-skip-kernel")
    {
        Description = "Bug injection (the run must fail): 'explicit' (the default), explicit-sync jobs skip KERNEL fences; 'importer', the importing devices ignore the KERNEL fences of the buffers they imported, the driver bug of the seed thread (needs --devices 2 or more).",
        HelpName = "explicit|importer",
        Arity = ArgumentArity.ZeroOrOne,
    };

    private readonly Option<int> _devices = new("--devices")
    {
        Description = "Devices on one event loop, each with its own engines and memory; clients are spread over them. With 2 or more, the compositor case of the seed thread: a --shared-fraction of each device's buffers is exported and imported by the others (1 in 4 of those pinned, the rest dynamic; half peer-to-peer, half bounced through system memory); each device's render clients draw into its own buffers, and its compositor (its first client) reads the imports and writes its own unshared buffers.",
        DefaultValueFactory = _ => Defaults.Devices,
        HelpName = "N",
    };
    private readonly Option<double> _sharedFraction = new("--shared-fraction")
    {
        Description = "With 2 or more devices, the fraction of each device's buffers that it exports to the others, 0..1 (spread evenly over its buffers).",
        DefaultValueFactory = _ => Defaults.SharedFraction,
        HelpName = "F",
    };
    private readonly Option<GpuTimeMode?> _mode = new("--mode") { Description = "Deterministic virtual time, or real worker threads. [default: virtual]", HelpName = "virtual|threads", CustomParser = ParseMode };
    private readonly Option<int> _threads = new("--threads") { Description = "Worker threads in threads mode (by default one per core).", DefaultValueFactory = _ => Defaults.Threads, HelpName = "N" };
    private readonly Option<int?> _cores = new("--cores") { Description = "Pin the process to its first N cores (to compare 1 core with 2).", HelpName = "N" };
    private readonly Option<bool> _noChecks = new("--no-checks") { Description = "Measure throughput only (invariants not checked)." };
    private readonly Option<double> _watchdogMs = new("--watchdog-ms") { Description = "Every job must finish within this much GPU time.", DefaultValueFactory = _ => Defaults.WatchdogMs, HelpName = "MS" };
    private readonly Option<string?> _json = new("--json") { Description = "Write the JSON report (schema: stress/report.schema.json).", HelpName = "PATH" };
    private readonly Option<string?> _trace = new("--trace") { Description = "Write a Perfetto trace (JSON trace events): engine and entity tracks, dependency arrows, counters, faults.", HelpName = "PATH" };
    private readonly Option<int> _traceLimit = new("--trace-limit") { Description = "Jobs to put in the trace.", DefaultValueFactory = _ => Defaults.TraceLimit, HelpName = "N" };
    private readonly Option<string?> _html = new("--html") { Description = "Write a self-contained HTML report page (charts, invariants) that works offline.", HelpName = "PATH" };
    private readonly Option<bool> _quiet = new("--quiet") { Description = "No live progress." };

    public StressCommand()
    {
        Root = new RootCommand(
            """
            fencecore-stress: drive the virtual GPU with many clients and check invariants the whole time.

            With no options it runs the default scenario: 2 devices on one event loop, each with 6 engines (gfx,
            compute0, compute1, copy0, copy1, video), 96 buffers and 80 MiB of device memory; one buffer in four
            of each device is exported and imported by the other (the compositor case); 24 clients (1 in 8
            explicit-sync) spread over the devices; 5 million jobs of 1-4 buffers each, with hangs, client kills
            and never-signalling foreign fences, in deterministic virtual time (seed 1).

            Exit codes: 0 every invariant held; 1 an invariant broke (the first violation and a replay command are
            printed); 2 bad usage.
            """);
        foreach (Option option in (Option[])[_seed, _jobs, _duration, _engines, _clients, _buffers, _buffersPerJob, _fixedBuffers, _inFlight, _explicitFraction, _memory,
                     _hangRate, _killRate, _foreignRate, _injectSkipKernel, _devices, _sharedFraction, _mode, _threads, _cores, _noChecks, _watchdogMs, _json, _trace, _traceLimit, _html, _quiet])
        {
            Root.Options.Add(option);
        }

        InRange(_seed, int.MinValue, int.MaxValue);
        InRange(_jobs, 1, long.MaxValue);
        InRange(_clients, 1, 100_000);
        InRange(_buffers, 1, 1_000_000);
        InRange(_buffersPerJob, 0, 64);
        InRange(_inFlight, 1, 1024);
        InRange(_explicitFraction, 0, 1);
        InRange(_memory, 1, 1 << 20);
        InRange(_hangRate, 0, 1);
        InRange(_killRate, 0, 1);
        InRange(_foreignRate, 0, 1);
        InRange(_threads, 1, 1024);
        InRange(_watchdogMs, 1, 1e9);
        InRange(_traceLimit, 0, 10_000_000);
        InRange(_devices, 1, 16);
        InRange(_sharedFraction, 0, 1);
        _injectSkipKernel.CustomParser = r =>
        {
            string value = r.Tokens.Count == 0 ? "explicit" : r.Tokens[0].Value;
            if (value is "explicit" or "importer")
            {
                return value;
            }

            r.AddError($"--inject-skip-kernel takes 'explicit' or 'importer', not '{value}'.");
            return null;
        };
        _injectSkipKernel.CompletionSources.Add("explicit", "importer");
        Root.Validators.Add(r =>
        {
            // Only once both options parsed: a value that broke its own rule has its own error already (and
            // reading it throws).
            string? inject;
            int devices;
            try
            {
                inject = r.GetValue(_injectSkipKernel);
                devices = r.GetResult(_devices) is null ? Defaults.Devices : r.GetValue(_devices);
            }
            catch (InvalidOperationException)
            {
                return;
            }

            if (inject == "importer" && devices < 2)
            {
                r.AddError("--inject-skip-kernel=importer needs --devices 2 or more: with one device nothing is imported.");
            }
        });
        _duration.CustomParser = r => ParseNumber(r, "--duration must be a number of seconds", 0.001, 1e7);
        _cores.CustomParser = r => ParseNumber(r, $"--cores must be a whole number (the cores this machine has)", 1, Environment.ProcessorCount);
        _mode.CompletionSources.Clear(); // the enum's own names are capitalised; the option takes these
        _mode.CompletionSources.Add("virtual", "threads");
        VersionOption version = Root.Options.OfType<VersionOption>().Single();
        version.Action = new PrintVersion();
        foreach (Option<string?> path in (Option<string?>[])[_json, _trace, _html])
        {
            path.Validators.Add(r =>
            {
                if (OutputPathError(path.Name, r.GetValueOrDefault<string?>()) is { } error)
                {
                    r.AddError(error);
                }
            });
        }
    }

    public RootCommand Root { get; }

    /// <summary>Parses <paramref name="args"/> and either runs <paramref name="run"/> with the settings or
    /// handles help, version, completions and usage errors itself.</summary>
    public static int Invoke(string[] args, Func<StressSettings, int> run)
    {
        var command = new StressCommand();
        ParseResult parse = command.Root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (ParseError error in parse.Errors)
            {
                Console.Error.WriteLine($"fencecore-stress: {error.Message}");
            }

            Console.Error.WriteLine("Run with --help for the options and their rules.");
            return ExitUsage;
        }

        int exitCode = ExitPass;
        command.Root.SetAction(p => exitCode = run(command.Bind(p, args)));
        int invoked = parse.Invoke();
        return invoked != 0 ? invoked : exitCode;
    }

    private StressSettings Bind(ParseResult p, string[] args) => new()
    {
        Seed = p.GetValue(_seed),
        Jobs = p.GetValue(_jobs),
        DurationSeconds = p.GetValue(_duration),
        Engines = p.GetValue(_engines) ?? Defaults.Engines,
        Clients = p.GetValue(_clients),
        Buffers = p.GetValue(_buffers),
        MaxBuffersPerJob = p.GetValue(_buffersPerJob),
        FixedBuffersPerJob = p.GetValue(_fixedBuffers),
        InFlightPerClient = p.GetValue(_inFlight),
        ExplicitFraction = p.GetValue(_explicitFraction),
        DeviceMemoryMiB = p.GetValue(_memory),
        HangRate = p.GetValue(_hangRate),
        KillRate = p.GetValue(_killRate),
        ForeignRate = p.GetValue(_foreignRate),
        InjectSkipKernelFences = p.GetValue(_injectSkipKernel) == "explicit",
        InjectImporterSkipsKernelFences = p.GetValue(_injectSkipKernel) == "importer",
        Devices = p.GetValue(_devices),
        SharedFraction = p.GetValue(_sharedFraction),
        Mode = p.GetValue(_mode) ?? GpuTimeMode.Virtual,
        Threads = p.GetValue(_threads),
        Cores = p.GetValue(_cores),
        Checks = !p.GetValue(_noChecks),
        WatchdogMs = p.GetValue(_watchdogMs),
        JsonPath = p.GetValue(_json),
        TracePath = p.GetValue(_trace),
        TraceLimit = p.GetValue(_traceLimit),
        HtmlPath = p.GetValue(_html),
        Quiet = p.GetValue(_quiet),
        ReplayArguments = ReplayArguments(p.GetValue(_seed), args),
    };

    private static string[] ReplayArguments(int seed, string[] args)
    {
        var rest = new List<string> { "--seed", seed.ToString(CultureInfo.InvariantCulture) };
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--seed")
            {
                i++;
                continue;
            }

            rest.Add(args[i]);
        }

        return [.. rest];
    }

    /// <summary>The option's value must parse (invariant culture) and lie in [min, max]; the error names the
    /// option, the rule and what was given.</summary>
    private static void InRange<T>(Option<T> option, T min, T max)
        where T : struct, INumber<T>
    {
        string rule = $"{option.Name} must be {(typeof(T) == typeof(double) ? "a number" : "a whole number")}";
        option.CustomParser = r => ParseNumber(r, rule, min, max) ?? min;
    }

    private static T? ParseNumber<T>(ArgumentResult result, string rule, T min, T max)
        where T : struct, INumber<T>
    {
        string token = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
        NumberStyles styles = typeof(T) == typeof(double) ? NumberStyles.Float : NumberStyles.Integer;
        if (T.TryParse(token, styles, CultureInfo.InvariantCulture, out T value) && value >= min && value <= max)
        {
            return value;
        }

        result.AddError(string.Create(CultureInfo.InvariantCulture, $"{rule} from {min} to {max}, not '{token}'."));
        return null;
    }

    /// <summary><c>--version</c>: the runner's own informational version (with the source revision), not
    /// the entry assembly's, which is the test host's when the runner is called in-process.</summary>
    private sealed class PrintVersion : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            Console.Out.WriteLine(typeof(StressCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? StressRun.Version);
            return ExitPass;
        }
    }

    private static GpuTimeMode? ParseMode(ArgumentResult result)
    {
        string value = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
        switch (value)
        {
            case "virtual":
                return GpuTimeMode.Virtual;
            case "threads":
                return GpuTimeMode.Threads;
            default:
                result.AddError($"--mode must be 'virtual' or 'threads', not '{value}'.");
                return GpuTimeMode.Virtual;
        }
    }

    /// <summary>Parses <c>kind=count</c> pairs (kinds graphics, compute, copy, video) into named engines; at
    /// least one copy engine, because the memory manager runs its moves there.</summary>
    private static List<EngineConfig> ParseEngines(ArgumentResult result)
    {
        var engines = new List<EngineConfig>();
        string spec = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
        foreach (string part in spec.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            string[] kv = part.Split('=');
            if (kv.Length != 2 || !Enum.TryParse(kv[0], ignoreCase: true, out EngineKind kind) || !Enum.IsDefined(kind) || int.TryParse(kv[0], out _))
            {
                result.AddError($"--engines takes kind=count pairs with kinds graphics, compute, copy, video; '{part}' is not one.");
                return [];
            }

            if (!int.TryParse(kv[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int count) || count is < 1 or > 64)
            {
                result.AddError($"--engines: the count of '{part}' must be a whole number from 1 to 64.");
                return [];
            }

            string prefix = kind switch { EngineKind.Graphics => "gfx", EngineKind.Compute => "compute", EngineKind.Copy => "copy", _ => "video" };
            for (int i = 0; i < count; i++)
            {
                engines.Add(new EngineConfig(count == 1 && kind is EngineKind.Graphics or EngineKind.Video ? prefix : $"{prefix}{i}", kind));
            }
        }

        if (!engines.Any(e => e.Kind == EngineKind.Copy))
        {
            result.AddError("--engines needs at least one copy engine (copy=1): the memory manager runs moves on it.");
        }

        return engines;
    }

    /// <summary>Why <paramref name="path"/> cannot be created, or null: its folder must exist, and it must
    /// not be a folder. Checked before the run, so a long run cannot end in a stack trace.</summary>
    private static string? OutputPathError(string option, string? path)
    {
        if (path is null)
        {
            return null;
        }

        string full;
        try
        {
            full = Path.GetFullPath(path);
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
        {
            return $"{option} '{path}' is not a valid file path ({ex.Message}).";
        }

        string? folder = Path.GetDirectoryName(full);
        if (Directory.Exists(full))
        {
            return $"{option} '{path}' is a folder; give a file path.";
        }

        return folder is null || !Directory.Exists(folder)
            ? $"{option} '{path}': the folder '{folder}' does not exist; create it first (nothing was run)."
            : null;
    }
}
