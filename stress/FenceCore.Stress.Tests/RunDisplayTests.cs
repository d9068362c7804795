using System.Globalization;
using System.Text.RegularExpressions;

namespace FenceCore.Stress.Tests;

/// <summary>The plain progress (redirected output, <c>CI=true</c>): a line per interval with the rate and
/// the time left, and no terminal escapes. Readings are fed by the test, so the clock is the test's.</summary>
public partial class RunDisplayTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);

    [Fact]
    public void PlainProgress_PrintsOneLinePerInterval_WithRateAndEta()
    {
        // Readings twice a second for 10 s at 1,000 jobs/s, of 20,000.
        string[] lines = Lines(Enumerable.Range(1, 20).Select(i => i * 0.5));
        Assert.Equal([2.0, 4.0, 6.0, 8.0, 10.0], lines.Select(l => Field(l, "at")));
        Assert.All(lines, l => Assert.Equal(1000, Field(l, "rate")));
        Assert.Equal(["00:00:18", "00:00:16", "00:00:14", "00:00:12", "00:00:10"], lines.Select(l => Match(l).Groups["eta"].Value));
    }

    [Fact]
    public void PlainProgress_AfterALateReading_SkipsTheMissedSlots_InsteadOfPrintingThemBackToBack()
    {
        // The timer stalls from 4.5 s to 11 s (a long GC): one line at 11 s, the next at the 12 s slot.
        string[] lines = Lines([.. Enumerable.Range(1, 9).Select(i => i * 0.5), 11.0, 11.5, 12.0, 12.5]);
        Assert.Equal([2.0, 4.0, 11.0, 12.0], lines.Select(l => Field(l, "at")));
    }

    [Fact]
    public void PlainProgress_HasNoTerminalEscapes()
    {
        Assert.All(Lines(Enumerable.Range(1, 10).Select(i => i * 0.5)), l => Assert.DoesNotContain('\u001b', l));
    }

    [Fact]
    public void QuietProgress_PrintsNothing()
    {
        Assert.Empty(Lines(Enumerable.Range(1, 10).Select(i => i * 0.5), quiet: true));
    }

    [Theory]
    [InlineData(false, false, null, true)]
    [InlineData(false, false, "false", true)]
    [InlineData(false, false, "true", false)]
    [InlineData(false, false, "TRUE", false)]
    [InlineData(false, true, null, false)]
    [InlineData(true, false, null, false)]
    public void Live_OnlyOnATerminal_OutsideCi_AndNotQuiet(bool quiet, bool redirected, string? ci, bool live)
    {
        Assert.Equal(live, RunDisplay.IsLive(quiet, redirected, ci));
    }

    /// <summary>The plain lines for readings at <paramref name="seconds"/>, 1,000 jobs a second of 20,000.</summary>
    private static string[] Lines(IEnumerable<double> seconds, bool quiet = false)
    {
        var output = new StringWriter();
        var display = new RunDisplay(quiet, live: false, output, Interval);
        foreach (double t in seconds)
        {
            display.Update(new ProgressReading(TimeSpan.FromSeconds(t), (long)(t * 1000), 20_000, Moves: 0, GpuSeconds: t, Resets: 0, Leaks: 0, Violations: 0));
        }

        return output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    private static double Field(string line, string name) =>
        double.Parse(Match(line).Groups[name].Value.Replace(",", "", StringComparison.Ordinal), CultureInfo.InvariantCulture);

    private static Match Match(string line)
    {
        Match m = PlainLine().Match(line);
        Assert.True(m.Success, $"not a progress line: {line}");
        return m;
    }

    [GeneratedRegex(@"^\[\s*(?<at>[0-9.]+)s\] jobs .* (?<rate>[0-9,]+) jobs/s  eta (?<eta>\S+)  gpu time")]
    private static partial Regex PlainLine();
}
