using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace FenceCore.Stress.Tests;

/// <summary>--html: the page renders in headless Chromium (Debian's chromium package; .ci/run installs it)
/// with no script error, a screenshot of the whole page is saved under the test output (and, on request,
/// as the README's picture), and the same harness reports a page that breaks as a failure.</summary>
[Collection("stress runner")]
public class HtmlReportTests
{
    private const string Chromium = "/usr/bin/chromium";

    private static (int ExitCode, string Out, string Error) RunChromium(params string[] args)
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: install Debian's chromium package (apt-get install chromium), as .ci/run does");
        string profile = Directory.CreateTempSubdirectory("fencecore-chromium-").FullName;
        var start = new ProcessStartInfo(Chromium)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // Headless, no sandbox (CI runs as root), and no background networking: this machine has no network.
        foreach (string a in (string[])["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--hide-scrollbars", $"--user-data-dir={profile}", .. args])
        {
            start.ArgumentList.Add(a);
        }

        try
        {
            using Process chromium = Process.Start(start)!;
            Task<string> output = chromium.StandardOutput.ReadToEndAsync();
            Task<string> error = chromium.StandardError.ReadToEndAsync();
            Assert.True(chromium.WaitForExit(TimeSpan.FromSeconds(90)), "chromium did not finish in 90 s");
            return (chromium.ExitCode, output.Result, error.Result);
        }
        finally
        {
            Directory.Delete(profile, recursive: true);
        }
    }

    /// <summary>The width the page is laid out and screenshotted at.</summary>
    private const int PageWidth = 1280;

    /// <summary>Set, this test renders the default scenario's page instead and writes its screenshot to
    /// docs/stress-report.png, the README's picture: <c>FENCECORE_REFRESH_README_SCREENSHOT=1 dotnet test
    /// stress/FenceCore.Stress.Tests -c Release --filter "FullyQualifiedName~Page_RendersInChromium"</c>.</summary>
    private const string RefreshReadmeScreenshot = "FENCECORE_REFRESH_README_SCREENSHOT";

    /// <summary>Loads the page in headless Chromium at <see cref="PageWidth"/> and returns its DOM after the
    /// script ran, and why it did not render cleanly (null when it did): the page must mark its body
    /// data-rendered="ok", and its onerror must have recorded no script error.</summary>
    private static (string Dom, string? Failure) Render(string page)
    {
        (int code, string dom, string error) = RunChromium("--virtual-time-budget=5000", $"--window-size={PageWidth},900", "--dump-dom", new Uri(page).AbsoluteUri);
        if (code != 0)
        {
            return (dom, $"chromium exited {code}: {error}");
        }

        Match errors = Regex.Match(dom, @"<(?:body|html)[^>]*\sdata-errors=""([^""]*)""");
        if (errors.Success)
        {
            return (dom, $"script errors: {WebUtility.HtmlDecode(errors.Groups[1].Value)}");
        }

        Match rendered = Regex.Match(dom, @"<body[^>]*\sdata-rendered=""([^""]*)""");
        return (dom, !rendered.Success ? "the page never marked its body data-rendered" : rendered.Groups[1].Value != "ok" ? $"the page rendered '{rendered.Groups[1].Value}', not 'ok'" : null);
    }

    /// <summary>Renders the page (it must render cleanly), then screenshots all of it: the window is as tall
    /// as the height the page measured of itself at the same width, so nothing is cut off.</summary>
    private static (string Dom, int Height) Screenshot(string page, string png)
    {
        (string dom, string? failure) = Render(page);
        Assert.True(failure is null, failure);
        int height = int.Parse(Regex.Match(dom, @"<body[^>]*\sdata-page-height=""(\d+)""").Groups[1].Value, CultureInfo.InvariantCulture);
        File.Delete(png);
        (int code, _, string error) = RunChromium("--virtual-time-budget=5000", $"--window-size={PageWidth},{height}", $"--screenshot={png}", new Uri(page).AbsoluteUri);
        Assert.True(code == 0 && File.Exists(png), error);
        byte[] bytes = File.ReadAllBytes(png);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], bytes[..4]);
        Assert.True(bytes.Length > 20_000, $"the screenshot is only {bytes.Length} B: a blank page?");
        // The IHDR chunk's width and height: the picture is the whole page.
        Assert.Equal(PageWidth, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16, 4)));
        Assert.Equal(height, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20, 4)));
        return (dom, height);
    }

    [Fact]
    public void Page_RendersInChromium_WithoutScriptErrors_AndIsScreenshottedWhole()
    {
        bool refresh = Environment.GetEnvironmentVariable(RefreshReadmeScreenshot) is "1" or "true";
        string page = Path.Combine(Path.GetTempPath(), $"fencecore-report-{Guid.NewGuid():N}.html");
        try
        {
            string[] run = refresh ? ["--quiet", "--html", page] : ["--jobs", "40000", "--seed", "6", "--hang-rate", "0.001", "--kill-rate", "0.0005", "--quiet", "--html", page];
            (int code, _, string error) = StressRunner.Invoke(run);
            Assert.True(code == 0, error);
            string html = File.ReadAllText(page);
            Assert.DoesNotContain(FenceCore.Stress.HtmlReport.Placeholder, html, StringComparison.Ordinal);
            // Works offline: nothing is fetched (no script, style, image or font from elsewhere).
            Assert.DoesNotMatch(@"(src|href)\s*=\s*[""']?(https?:)?//|@import|url\(\s*[""']?https?:", html);

            string screenshots = Path.Combine(AppContext.BaseDirectory, "screenshots");
            Directory.CreateDirectory(screenshots);
            string png = Path.Combine(screenshots, "stress-report.png");
            (string dom, int height) = Screenshot(page, png);
            Assert.Contains($"fencecore-stress report: pass (seed {(refresh ? 1 : 6)})", dom, StringComparison.Ordinal);
            Assert.Contains("writer-exclusive", dom, StringComparison.Ordinal); // the invariants table
            Assert.Contains("<svg", dom, StringComparison.Ordinal);             // the charts were drawn
            Assert.True(height > 900, $"the page is {height} px tall: the whole report (invariants table included) is taller than one screen");
            if (refresh)
            {
                File.Copy(png, Path.Combine(RepositoryRoot(), "docs", "stress-report.png"), overwrite: true);
            }
        }
        finally
        {
            File.Delete(page);
        }
    }

    [Fact]
    public void Harness_ReportsAPageWithAScriptError_AndAPageThatNeverRenders()
    {
        (_, JsonElement json, _) = StressRunner.Run("--jobs", "500", "--quiet");
        FenceCore.Stress.StressReport report = JsonSerializer.Deserialize(json.GetRawText(), FenceCore.Stress.StressReportJsonContext.Default.StressReport)!;
        string broken = Path.Combine(Path.GetTempPath(), $"fencecore-broken-{Guid.NewGuid():N}.html");
        string blank = Path.Combine(Path.GetTempPath(), $"fencecore-blank-{Guid.NewGuid():N}.html");
        try
        {
            // The runner's own page, with one more script that throws once the page has rendered.
            File.WriteAllText(broken, FenceCore.Stress.HtmlReport.Render(report).Replace("</body>", "<script>window.fencecoreMissing();</script></body>", StringComparison.Ordinal));
            File.WriteAllText(blank, "<!doctype html><html><head><title>x</title></head><body><p>no script</p></body></html>");

            (string dom, string? failure) = Render(broken);
            Assert.Contains("data-rendered=\"ok\"", dom, StringComparison.Ordinal); // it rendered, and still fails
            Assert.NotNull(failure);
            Assert.Contains("fencecoreMissing", failure, StringComparison.Ordinal);

            (_, string? never) = Render(blank);
            Assert.Equal("the page never marked its body data-rendered", never);
        }
        finally
        {
            File.Delete(broken);
            File.Delete(blank);
        }
    }

    /// <summary>The labels of the chart's three markers never overlap. The markers are placed at fractions of
    /// the run's latency range on the chart's log axis (the chart drops a marker outside the range its
    /// buckets cover, so fixed values would depend on the run).</summary>
    [Theory]
    [InlineData(0.55, 0.97, 1.0)]   // as in the default run: p99's label, anchored at the right, reached p50's
    [InlineData(0.50, 0.51, 0.52)]  // all three at one place
    [InlineData(0.05, 0.50, 1.0)]   // far apart
    public void LatencyChart_PercentileLabels_NeverOverlap(double p50At, double p99At, double p999At)
    {
        (_, JsonElement json, _) = StressRunner.Run("--jobs", "3000", "--seed", "3", "--hang-rate", "0.002", "--quiet");
        FenceCore.Stress.StressReport report = JsonSerializer.Deserialize(json.GetRawText(), FenceCore.Stress.StressReportJsonContext.Default.StressReport)!;
        double lo = Math.Log10(Math.Max(report.Latency.Min, 0.001) * 1.05), hi = Math.Log10(report.Latency.Max * 0.95);
        Assert.True(hi > lo + 1, $"the run's latencies span {report.Latency.Min}..{report.Latency.Max} µs, too narrow for the test");
        double At(double fraction) => Math.Pow(10, lo + (fraction * (hi - lo)));
        report = report with { Latency = report.Latency with { P50 = At(p50At), P99 = At(p99At), P999 = At(p999At) } };
        string page = Path.Combine(Path.GetTempPath(), $"fencecore-labels-{Guid.NewGuid():N}.html");
        try
        {
            // Once the page has rendered, a probe measures the drawn labels (their real text boxes) and
            // records how many it found and how many pairs overlap.
            const string Probe = """
                <script>window.addEventListener('load', function () {
                  var boxes = Array.prototype.filter.call(document.querySelectorAll('svg text'), function (t) { return /^p(50|99|99\.9) /.test(t.textContent); })
                    .map(function (t) { return t.getBoundingClientRect(); });
                  var overlaps = 0;
                  boxes.forEach(function (a, i) { boxes.slice(i + 1).forEach(function (b) {
                    if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) overlaps++; }); });
                  document.body.dataset.labels = boxes.length + ' labels, ' + overlaps + ' overlapping';
                });</script></body>
                """;
            File.WriteAllText(page, FenceCore.Stress.HtmlReport.Render(report).Replace("</body>", Probe, StringComparison.Ordinal));
            (string dom, string? failure) = Render(page);
            Assert.True(failure is null, failure);
            Assert.Equal("3 labels, 0 overlapping", Regex.Match(dom, @"<body[^>]*\sdata-labels=""([^""]*)""").Groups[1].Value);
        }
        finally
        {
            File.Delete(page);
        }
    }

    private static string RepositoryRoot()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "FenceCore.sln")))
            {
                return d.FullName;
            }
        }

        throw new InvalidOperationException($"No FenceCore.sln above {AppContext.BaseDirectory}.");
    }

    [Fact]
    public void Page_ShowsAFailedRun_AsFailed()
    {
        string page = Path.Combine(Path.GetTempPath(), $"fencecore-report-{Guid.NewGuid():N}.html");
        try
        {
            (int code, _, _) = StressRunner.Invoke("--jobs", "20000", "--seed", "5", "--explicit-fraction", "0.5", "--inject-skip-kernel", "--quiet", "--html", page);
            Assert.Equal(1, code);
            (string dom, string? failure) = Render(page);
            Assert.True(failure is null, failure);
            Assert.Contains("fencecore-stress report: fail (seed 5)", dom, StringComparison.Ordinal);
            Assert.Contains("no-access-during-move", dom, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(page);
        }
    }

    [Fact]
    public void TextThatLooksLikeMarkup_CannotCloseThePagesScript()
    {
        (_, JsonElement json, _) = StressRunner.Run("--jobs", "500", "--quiet");
        FenceCore.Stress.StressReport report = JsonSerializer.Deserialize(json.GetRawText(), FenceCore.Stress.StressReportJsonContext.Default.StressReport)!;
        report = report with { Invariants = [new FenceCore.Stress.ReportInvariant("x", "</script><img src=x onerror=alert(1)>", 1, 1, "</script>")] };
        string template = FenceCore.Stress.HtmlReport.Render(report with { Invariants = [] });
        string page = FenceCore.Stress.HtmlReport.Render(report);
        Assert.DoesNotContain("</script><img", page, StringComparison.Ordinal);
        Assert.Equal(CountScriptEnds(template), CountScriptEnds(page));
    }

    private static int CountScriptEnds(string html) => html.Split("</script>").Length - 1;
}
