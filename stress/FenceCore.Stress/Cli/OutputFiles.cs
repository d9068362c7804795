using System.CommandLine;
using System.CommandLine.Parsing;
using System.Runtime.InteropServices;

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
        if (File.Exists(path))
        {
            return OpenForWriting(path) is { } why ? $"{option} '{path}' cannot be written ({why}); nothing was run." : null;
        }

        try
        {
            using var probe = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return $"{option} '{path}' cannot be written ({ex.Message}); nothing was run.";
        }

        try
        {
            DeleteProbeFile(path);
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Before, this was thrown from a finally block: an unhandled exception, exit 1 and a stack trace.
            return $"{option} '{path}' could be created, but the empty file the check made there could not be removed ({ex.Message}); remove it, or give another path. Nothing was run.";
        }
    }

    /// <summary>Removes the file the probe created. A seam for the test of a removal that fails.</summary>
    internal static Action<string> DeleteProbeFile { get; set; } = File.Delete;

    /// <summary>
    /// Why an existing file cannot be written, or null. On Linux it is asked with <c>access(W_OK)</c> (the
    /// permissions and a read-only mount), not opened: opening a FIFO for writing blocks until a reader opens
    /// it, and opening and closing it under a reader that is already there hands that reader an end of file
    /// before the report is written. A FIFO is written after the run like any file, once it has a reader.
    /// Elsewhere the file is opened for writing (not truncated) and closed again.
    /// </summary>
    private static string? OpenForWriting(string path)
    {
        if (OperatingSystem.IsLinux())
        {
            return LinuxAccess(System.Text.Encoding.UTF8.GetBytes(path + "\0"), LinuxWOk) == 0
                ? null
                : Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError());
        }

        try
        {
            using var existing = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return ex.Message;
        }
    }

    private const int LinuxWOk = 2;

    [DllImport("libc", EntryPoint = "access", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int LinuxAccess(byte[] nulTerminatedUtf8Path, int mode);

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
