using System.Text.Json;

namespace FenceCore.Stress;

/// <summary>
/// <c>--html</c>: the report as one self-contained page (Reporting/report.html, embedded in the runner)
/// with the run's JSON inside it, drawn by the page's own script as SVG. No network, no external files.
/// </summary>
internal static class HtmlReport
{
    /// <summary>The template's placeholder for the report JSON.</summary>
    public const string Placeholder = "/*REPORT_JSON*/null";

    public static void Write(string path, StressReport report) => File.WriteAllText(path, Render(report));

    public static string Render(StressReport report)
    {
        string template = Template();
        // The serializer's default encoder escapes <, > and & (as \u003C ...), so no "</script>" can appear
        // in the JSON and end the page's script early: it goes in as it is.
        string json = JsonSerializer.Serialize(report, StressReportJsonContext.Default.StressReport);
        int at = template.IndexOf(Placeholder, StringComparison.Ordinal);
        if (at < 0)
        {
            throw new InvalidOperationException($"The embedded report.html has no '{Placeholder}' placeholder.");
        }

        return string.Concat(template.AsSpan(0, at), json, template.AsSpan(at + Placeholder.Length));
    }

    private static string Template()
    {
        using Stream stream = typeof(HtmlReport).Assembly.GetManifestResourceStream("FenceCore.Stress.report.html")
            ?? throw new InvalidOperationException("The runner was built without its embedded report.html.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
