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
/// <remarks>Exit codes, the issue's three and no more: 0 every invariant held and every output was written (or
/// help, version, completions); 1 the run failed: an invariant broke, or the run stopped on an exception (a
/// bug in the library or the runner, which a stress run exists to find; the exception and the replay
/// command are printed); 2 bad usage, an output path that cannot be written, or an output that failed to
/// write after a passing run.</remarks>
internal sealed class StressCommand
{
    public const int ExitPass = 0;
    public const int ExitViolation = 1;
    public const int ExitUsage = 2;


    private static readonly StressSettings Defaults = new();

    private readonly Option<int> _seed = new("--seed") { Description = "Random seed; in virtual mode the same seed replays the same run.", DefaultValueFactory = _ => Defaults.Seed, HelpName = "N" };
    private readonly Option<long> _jobs = new("--jobs") { Description = "Client jobs to submit in total.", DefaultValueFactory = _ => Defaults.Jobs, HelpName = "N" };
    private readonly Option<double?> _duration = new("--duration") { Description = "Also stop submitting after this much wall-clock time (the run ends at --jobs or at this time, whichever comes first; the digest then varies).", HelpName = "SECONDS" };
    private readonly Option<IReadOnlyList<EngineConfig>> _engines = new("--engines")
    {
        Description = "Engines as kind=count pairs [default: graphics=1,compute=2,copy=2,video=1].",
        HelpName = "LIST",
        CustomParser = r => ParseEngines(r),
    };
    private readonly Option<int> _clients = new("--clients") { Description = "Closed-loop clients, spread over the devices (a killed client is replaced by a new one).", DefaultValueFactory = _ => Defaults.Clients, HelpName = "N" };
    private readonly Option<int> _buffers = new("--buffers") { Description = "Buffers of each device (64 KiB to 2 MiB each, at most a sixteenth of --memory).", DefaultValueFactory = _ => Defaults.Buffers, HelpName = "N" };
    private readonly Option<int> _buffersPerJob = new("--buffers-per-job") { Description = "At most N buffers per job, drawn uniformly from 1..N (capped at the buffers a device sees); 0: jobs touch no buffers, so only the scheduler is exercised.", DefaultValueFactory = _ => Defaults.MaxBuffersPerJob, HelpName = "N" };
    private readonly Option<bool> _fixedBuffers = new("--fixed-buffers") { Description = "Every job touches exactly --buffers-per-job buffers (not 1..N)." };
    private readonly Option<int> _inFlight = new("--in-flight") { Description = "Jobs each client keeps in flight (it submits the next when one finishes).", DefaultValueFactory = _ => Defaults.InFlightPerClient, HelpName = "N" };
    private readonly Option<double> _explicitFraction = new("--explicit-fraction") { Description = "Fraction of the clients that use explicit sync, 0..1 (rounded to whole clients).", DefaultValueFactory = _ => Defaults.ExplicitFraction, HelpName = "F" };
    private readonly Option<long> _memory = new("--memory") { Description = "Device memory of each device in MiB (the default is small enough that buffers get evicted and moved back).", DefaultValueFactory = _ => Defaults.DeviceMemoryMiB, HelpName = "MIB" };
    private readonly Option<double> _hangRate = new("--hang-rate") { Description = "Probability per job that it hangs; the engine timeout resets it.", DefaultValueFactory = _ => Defaults.HangRate, HelpName = "P" };
    private readonly Option<double> _killRate = new("--kill-rate") { Description = "Probability per job that its client is killed and restarted.", DefaultValueFactory = _ => Defaults.KillRate, HelpName = "P" };
    private readonly Option<double> _foreignRate = new("--foreign-rate") { Description = "Probability per job that it depends on a foreign fence that never signals; the dependency timeout releases it.", DefaultValueFactory = _ => Defaults.ForeignRate, HelpName = "P" };
    private readonly Option<string?> _injectSkipKernel = new("--inject-skip-kernel")
    {
        Description = "Bug injection, off unless given; a run with it must fail. 'explicit' (also what the bare option means): explicit-sync jobs skip KERNEL fences (needs explicit-sync clients, see --explicit-fraction). 'importer': the importing devices ignore the KERNEL fences of the buffers they imported, the driver bug of the seed thread (needs --devices 2 or more).",
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
    private readonly Option<int> _threads = new("--threads") { Description = "Threads mode: GPU worker threads, and as many client threads submitting jobs (by default one per core).", DefaultValueFactory = _ => Defaults.Threads, HelpName = "N" };
    private readonly Option<int?> _cores = new("--cores") { Description = "Pin the process to its first N cores (to compare 1 core with 2).", HelpName = "N" };
    private readonly Option<bool> _noChecks = new("--no-checks") { Description = "Measure throughput only (invariants not checked)." };
    private readonly Option<double> _watchdogMs = new("--watchdog-ms") { Description = "Every job must finish within this much GPU time (in threads mode at least 10000 ms, since a loaded machine stalls threads).", DefaultValueFactory = _ => Defaults.WatchdogMs, HelpName = "MS" };
    private readonly Option<string?> _json = new("--json") { Description = "Write the JSON report (schema: stress/report.schema.json).", HelpName = "PATH" };
    private readonly Option<string?> _trace = new("--trace") { Description = "Write a Perfetto trace (Perfetto's protobuf format; JSON trace events instead when PATH ends in .json): engine and entity tracks, dependency arrows, counters, faults.", HelpName = "PATH" };
    private readonly Option<int> _traceLimit = new("--trace-limit") { Description = "The first N client jobs submitted go into the trace whole, with the memory manager's moves they wait on.", DefaultValueFactory = _ => Defaults.TraceLimit, HelpName = "N" };
    private readonly Option<string?> _html = new("--html") { Description = "Write a self-contained HTML report page (charts, invariants) that works offline.", HelpName = "PATH" };
    private readonly Option<bool> _quiet = new("--quiet") { Description = "No progress while running (neither the live bar nor the plain lines); the summary is still printed." };

    /// <summary>Every option but <c>--seed</c>, in help order, with the tokens that give its parsed value
    /// back (<see cref="ReplayArguments"/>); <c>--seed</c> is always the first option of a replay.</summary>
    private readonly List<(Option Option, Func<ParseResult, IEnumerable<string>> Tokens)> _replayed = [];

    public StressCommand()
    {
        Root = new RootCommand(
            """
            fencecore-stress: drive the virtual GPU with many clients and check invariants the whole time.

            With no options it runs the default scenario: 2 devices on one event loop, each with 6 engines (gfx,
            compute0, compute1, copy0, copy1, video), 96 buffers and 80 MiB of device memory; one buffer in four
            of each device is exported and imported by the other (the compositor case: each device's compositor,
            its first client, reads what the other device renders into them); 24 clients (1 in 8
            explicit-sync) spread over the devices; 5 million jobs of 1-4 buffers each, with hangs, client kills
            and never-signalling foreign fences, in deterministic virtual time (seed 1).

            Exit codes: 0 every invariant held and every output was written; 1 the run failed: an invariant
            broke (the first violation and a replay command are printed; an output that could not be written
            is reported too), or the run stopped on an exception, a bug in the library or the runner (the
            exception and a replay command are printed); 2 bad usage: an option broke its rule, an output path
            cannot be written (both checked before the run), or an output failed to write after a run in which
            every invariant held.
            """);
        Root.Options.Add(_seed);
        Replayed(_jobs, Number);
        Replayed(_duration, Number);
        Replayed(_engines, (name, engines) => engines is null ? [] : [name, EngineSpec(engines)]);
        Replayed(_clients, Number);
        Replayed(_buffers, Number);
        Replayed(_buffersPerJob, Number);
        Replayed(_fixedBuffers, Flag);
        Replayed(_inFlight, Number);
        Replayed(_explicitFraction, Number);
        Replayed(_memory, Number);
        Replayed(_hangRate, Number);
        Replayed(_killRate, Number);
        Replayed(_foreignRate, Number);
        Replayed(_injectSkipKernel, Text);
        Replayed(_devices, Number);
        Replayed(_sharedFraction, Number);
        Replayed(_mode, (name, mode) => mode is null ? [] : [name, mode == GpuTimeMode.Threads ? "threads" : "virtual"]);
        Replayed(_threads, Number);
        Replayed(_cores, Number);
        Replayed(_noChecks, Flag);
        Replayed(_watchdogMs, Number);
        Replayed(_json, Text);
        Replayed(_trace, Text);
        Replayed(_traceLimit, Number);
        Replayed(_html, Text);
        Replayed(_quiet, Flag);

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
        Option<string?>[] outputs = [_json, _trace, _html];
        foreach (Option<string?> path in outputs)
        {
            path.Validators.Add(r =>
            {
                if (OutputFiles.PathError(path.Name, r.GetValueOrDefault<string?>()) is { } error)
                {
                    r.AddError(error);
                }
            });
        }

        Root.Validators.Add(r => OutputFiles.SameFileError(r, outputs));
    }

    public RootCommand Root { get; }

    /// <summary>Parses <paramref name="args"/> and either runs <paramref name="run"/> with the settings or
    /// handles help, version, completions and usage errors itself. Before <paramref name="run"/> starts,
    /// every output path is checked by creating (or opening) the file, so a long run cannot end unable to
    /// write its report; an exception from <paramref name="run"/> is a bug the run found, reported in one
    /// line with the replay command, as <see cref="ExitViolation"/> (the run failed).</summary>
    public static int Invoke(string[] args, Func<StressSettings, int> run)
    {
        var command = new StressCommand();
        ParseResult parse = command.Root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            return UsageErrors(parse.Errors.Select(e => e.Message));
        }

        command.Root.SetAction(p =>
        {
            StressSettings settings = command.Bind(p);
            string[] unwritable = [.. OutputFiles.Probe(("--json", settings.JsonPath), ("--trace", settings.TracePath), ("--html", settings.HtmlPath))];
            return unwritable.Length > 0 ? UsageErrors(unwritable) : run(settings);
        });
        try
        {
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
#pragma warning disable CA1031 // the runner's last line: any exception is a bug the run found
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Console.Error.WriteLine($"fencecore-stress: FAIL: the run stopped on an exception (a bug in the library or the runner): {ex}");
            Console.Error.WriteLine($"replay: {ReplayCommand(command.ReplayArguments(parse))}");
            return ExitViolation;
        }
    }

    /// <summary>Parses <paramref name="args"/> into the settings a run would get, for tests of the
    /// binding and of the replay command; throws <see cref="ArgumentException"/> with the usage errors.</summary>
    internal static StressSettings Parse(IReadOnlyList<string> args)
    {
        var command = new StressCommand();
        ParseResult parse = command.Root.Parse(args);
        return parse.Errors.Count == 0
            ? command.Bind(parse)
            : throw new ArgumentException(string.Join(" ", parse.Errors.Select(e => e.Message)), nameof(args));
    }

    private static int UsageErrors(IEnumerable<string> errors)
    {
        foreach (string error in errors)
        {
            Console.Error.WriteLine($"fencecore-stress: {error}");
        }

        Console.Error.WriteLine("Run with --help for the options and their rules.");
        return ExitUsage;
    }

    private StressSettings Bind(ParseResult p) => new()
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
        ReplayArguments = ReplayArguments(p),
    };

    /// <summary>The arguments that replay the run <paramref name="p"/> describes: <c>--seed</c> with the
    /// parsed seed, then every other option that was given (on the command line or in a response file), with
    /// its parsed value, in help order. Built from the parse, not the raw tokens, so <c>--seed=3</c>, a seed
    /// in an <c>@file.rsp</c> or a repeated option cannot leave a second seed or a file that may be gone.</summary>
    private string[] ReplayArguments(ParseResult p)
    {
        var replay = new List<string> { _seed.Name, p.GetValue(_seed).ToString(CultureInfo.InvariantCulture) };
        foreach ((Option option, Func<ParseResult, IEnumerable<string>> tokens) in _replayed)
        {
            if (p.GetResult(option) is { Implicit: false })
            {
                replay.AddRange(tokens(p));
            }
        }

        return [.. replay];
    }

    /// <summary>Adds <paramref name="option"/> to the command, and to the options a replay gives back
    /// through <paramref name="tokens"/> (the option's name and its parsed value).</summary>
    private void Replayed<T>(Option<T> option, Func<string, T, IEnumerable<string>> tokens)
    {
        Root.Options.Add(option);
        _replayed.Add((option, p => tokens(option.Name, p.GetValue(option)!)));
    }

    private static string[] Number<T>(string name, T value)
        where T : IFormattable => [name, value.ToString(null, CultureInfo.InvariantCulture)];

    private static string[] Number<T>(string name, T? value)
        where T : struct, IFormattable => value is T v ? Number(name, v) : [];

    private static string[] Flag(string name, bool value) => value ? [name] : [];

    /// <summary>A text value joined to its option by '=', so one that starts with '@' or '-' stays the
    /// option's value (not a response file or another option).</summary>
    private static string[] Text(string name, string? value) => value is null ? [] : [$"{name}={value}"];

    /// <summary>The <c>kind=count</c> spec of <paramref name="engines"/> (kinds in the order given, as
    /// <see cref="ParseEngines"/> reads them).</summary>
    private static string EngineSpec(IReadOnlyList<EngineConfig> engines)
    {
        var parts = new List<string>();
        for (int i = 0; i < engines.Count;)
        {
            int run = 1;
            while (i + run < engines.Count && engines[i + run].Kind == engines[i].Kind)
            {
                run++;
            }

            parts.Add(string.Create(CultureInfo.InvariantCulture, $"{engines[i].Kind.ToString().ToLowerInvariant()}={run}"));
            i += run;
        }

        return string.Join(',', parts);
    }

    /// <summary>The replay command line: <paramref name="arguments"/> quoted for a POSIX shell where they
    /// hold anything but plain characters, so a path with a space still copies and runs.</summary>
    public static string ReplayCommand(IEnumerable<string> arguments) =>
        $"dotnet run --project stress/FenceCore.Stress -c Release -- {string.Join(' ', arguments.Select(ShellWord))}";

    private static string ShellWord(string word) =>
        word.Length > 0 && word.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=,:@%+".Contains(c, StringComparison.Ordinal))
            ? word
            : $"'{word.Replace("'", "'\\''", StringComparison.Ordinal)}'";

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

    /// <summary>Parses <c>kind=count</c> pairs (kinds graphics, compute, copy, video, each at most once) into
    /// named engines; at least one copy engine, because the memory manager runs its moves there.</summary>
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

            if (engines.Any(e => e.Kind == kind))
            {
                // Two runs of one kind would name two engines alike (copy0 twice).
                result.AddError($"--engines gives each kind once; '{kv[0]}' appears twice (give one count).");
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
}
