using System.Text.Json;

namespace FenceCore.Stress.Tests;

/// <summary>Runs the stress runner's entry point in-process with the console captured. Every class that
/// uses it is in the "stress runner" collection: the console is process-wide, so they take turns.</summary>
internal static class StressRunner
{
    public static (int ExitCode, string Out, string Error) Invoke(params string[] args)
    {
        System.Reflection.MethodInfo entry = typeof(FenceCore.Stress.Invariant).Assembly.EntryPoint!;
        return Capture(() => (int)entry.Invoke(null, [args])!);
    }

    /// <summary>Runs <paramref name="body"/> with the console's output and error captured.</summary>
    public static (int ExitCode, string Out, string Error) Capture(Func<int> body)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        TextWriter previousOut = Console.Out;
        TextWriter previousError = Console.Error;
        Console.SetOut(output);
        Console.SetError(error);
        try
        {
            int code = body();
            return (code, output.ToString(), error.ToString());
        }
        finally
        {
            Console.SetOut(previousOut);
            Console.SetError(previousError);
        }
    }

    /// <summary>Runs bash (no profile, no rc) with <paramref name="script"/> and returns its output; fails
    /// the test if bash fails.</summary>
    public static string Bash(string script)
    {
        var start = new System.Diagnostics.ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in (string[])["--noprofile", "--norc", "-c", script])
        {
            start.ArgumentList.Add(arg);
        }

        using var bash = System.Diagnostics.Process.Start(start)!;
        Task<string> error = bash.StandardError.ReadToEndAsync();
        string output = bash.StandardOutput.ReadToEnd();
        Assert.True(bash.WaitForExit(TimeSpan.FromSeconds(60)), "bash did not finish within 60 s");
        Assert.True(bash.ExitCode == 0, $"bash exited {bash.ExitCode}: {error.Result}");
        return output;
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
