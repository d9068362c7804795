using System.CommandLine;
using System.CommandLine.Parsing;

namespace FenceCore.Stress;

/// <summary>
/// The run's output files (<c>--json</c>, <c>--trace</c>, <c>--html</c>): checked before the run, so a bad
/// path is bad usage and not a stack trace after minutes of work, and written after it with an I/O failure
/// reported in one line that names the option and the path.
/// </summary>
internal static class OutputFiles
{
    /// <summary>Why <paramref name="path"/> cannot name an output file, or null: it must be a valid path,
    /// not a folder, in a folder that exists. A parse rule: it reads the file system and never writes.</summary>
    public static string? PathError(string option, string? path)
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

    /// <summary>A parse rule: two outputs must not name one file (the later would overwrite the earlier).</summary>
    public static void SameFileError(CommandResult result, IReadOnlyList<Option<string?>> outputs)
    {
        var seen = new Dictionary<string, string>(OperatingSystem.IsWindows() ? StringComparer.OrdinalIgnoreCase : StringComparer.Ordinal);
        foreach (Option<string?> option in outputs)
        {
            string? path = result.GetResult(option)?.GetValueOrDefault<string?>();
            if (path is null || PathError(option.Name, path) is not null)
            {
                continue; // not given, or its own rule already failed
            }

            if (!seen.TryAdd(Path.GetFullPath(path), option.Name))
            {
                result.AddError($"{option.Name} '{path}' is the file {seen[Path.GetFullPath(path)]} writes too; give each output its own path.");
            }
        }
    }

    /// <summary>
    /// Checks that each given output can be written, the way the run will write it, and returns an error
    /// naming the option and the path for each that cannot. A file that exists is opened for writing and
    /// left as it was (not truncated); one that does not is created and deleted again, so nothing is left
    /// behind whatever the outcome.
    /// </summary>
    public static IEnumerable<string> Probe(params (string Option, string? Path)[] outputs)
    {
        foreach ((string option, string? path) in outputs)
        {
            if (path is not null && ProbeError(option, path) is { } error)
            {
                yield return error;
            }
        }
    }

    private static string? ProbeError(string option, string path)
    {
        bool created = false;
        try
        {
            if (File.Exists(path))
            {
                using var existing = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
            }
            else
            {
                using var probe = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None);
                created = true;
            }

            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return $"{option} '{path}' cannot be written ({ex.Message}); nothing was run.";
        }
        finally
        {
            if (created)
            {
                File.Delete(path);
            }
        }
    }

    /// <summary>Runs <paramref name="write"/> (which writes <paramref name="path"/> and prints its own line);
    /// on an I/O failure prints one line naming <paramref name="option"/> and the path, no stack trace, and
    /// returns false.</summary>
    public static bool TryWrite(string option, string path, Action<string> write)
    {
        try
        {
            write(path);
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"fencecore-stress: {option} '{path}' could not be written after the run: {ex.Message}");
            return false;
        }
    }
}
