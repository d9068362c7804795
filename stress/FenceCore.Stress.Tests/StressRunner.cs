using System.Text.Json;

namespace FenceCore.Stress.Tests;

/// <summary>Runs the stress runner's entry point in-process with the console captured. Every class that
/// uses it is in the "stress runner" collection: the console is process-wide, so they take turns.</summary>
internal static class StressRunner
{
    public static (int ExitCode, string Out, string Error) Invoke(params string[] args)
    {
        System.Reflection.MethodInfo entry = typeof(FenceCore.Stress.Invariant).Assembly.EntryPoint!;
        var output = new StringWriter();
        var error = new StringWriter();
        TextWriter previousOut = Console.Out;
        TextWriter previousError = Console.Error;
        Console.SetOut(output);
        Console.SetError(error);
        try
        {
            int code = (int)entry.Invoke(null, [args])!;
            return (code, output.ToString(), error.ToString());
        }
        finally
        {
            Console.SetOut(previousOut);
            Console.SetError(previousError);
        }
    }

    /// <summary>Runs with <c>--json</c> and returns the exit code and the parsed report.</summary>
    public static (int ExitCode, JsonElement Report, string Out) Run(params string[] args)
    {
        string json = Path.Combine(Path.GetTempPath(), $"fencecore-stress-{Guid.NewGuid():N}.json");
        try
        {
            (int code, string output, _) = Invoke([.. args, "--json", json]);
            using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(json));
            return (code, doc.RootElement.Clone(), output);
        }
        finally
        {
            File.Delete(json);
        }
    }
}

[CollectionDefinition("stress runner", DisableParallelization = true)]
public sealed class StressRunnerGroup;
