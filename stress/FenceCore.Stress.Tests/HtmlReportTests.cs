using System.Diagnostics;

namespace FenceCore.Stress.Tests;

/// <summary>--html: the page renders in headless Chromium (Debian's chromium package; .ci/run installs it)
/// with no script error, and a screenshot of it is saved under the test output.</summary>
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

    [Fact]
    public void Page_RendersInChromium_WithoutScriptErrors_AndIsScreenshotted()
    {
        string page = Path.Combine(Path.GetTempPath(), $"fencecore-report-{Guid.NewGuid():N}.html");
        try
        {
            (int code, _, string error) = StressRunner.Invoke("--jobs", "40000", "--seed", "6", "--hang-rate", "0.001", "--kill-rate", "0.0005", "--quiet", "--html", page);
            Assert.True(code == 0, error);
            string html = File.ReadAllText(page);
            Assert.DoesNotContain(FenceCore.Stress.HtmlReport.Placeholder, html, StringComparison.Ordinal);
            // Works offline: nothing is fetched (no script, style, image or font from elsewhere).
            Assert.DoesNotMatch(@"(src|href)\s*=\s*[""']?(https?:)?//|@import|url\(\s*[""']?https?:", html);

            (int dumpCode, string dom, string dumpError) = RunChromium("--virtual-time-budget=5000", "--dump-dom", new Uri(page).AbsoluteUri);
            Assert.True(dumpCode == 0, dumpError);
            Assert.Matches(@"<body[^>]*\sdata-rendered=""ok""", dom);
            Assert.DoesNotMatch(@"<(body|html)[^>]*\sdata-errors=", dom); // the page's onerror records script errors there
            Assert.Contains("fencecore-stress report: pass (seed 6)", dom, StringComparison.Ordinal);
            Assert.Contains("writer-exclusive", dom, StringComparison.Ordinal); // the invariants table
            Assert.Contains("<svg", dom, StringComparison.Ordinal);             // the charts were drawn

            string screenshots = Path.Combine(AppContext.BaseDirectory, "screenshots");
            Directory.CreateDirectory(screenshots);
            string png = Path.Combine(screenshots, "stress-report.png");
            File.Delete(png);
            (int shotCode, _, string shotError) = RunChromium("--virtual-time-budget=5000", "--window-size=1280,900", $"--screenshot={png}", new Uri(page).AbsoluteUri);
            Assert.True(shotCode == 0 && File.Exists(png), shotError);
            byte[] bytes = File.ReadAllBytes(png);
            Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], bytes[..4]);
            Assert.True(bytes.Length > 20_000, $"the screenshot is only {bytes.Length} B: a blank page?");
        }
        finally
        {
            File.Delete(page);
        }
    }

    [Fact]
    public void Page_ShowsAFailedRun_AsFailed()
    {
        string page = Path.Combine(Path.GetTempPath(), $"fencecore-report-{Guid.NewGuid():N}.html");
        try
        {
            (int code, _, _) = StressRunner.Invoke("--jobs", "20000", "--seed", "5", "--explicit-fraction", "0.5", "--inject-skip-kernel", "--quiet", "--html", page);
            Assert.Equal(1, code);
            (_, string dom, _) = RunChromium("--virtual-time-budget=5000", "--dump-dom", new Uri(page).AbsoluteUri);
            Assert.Matches(@"<body[^>]*\sdata-rendered=""ok""", dom);
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
        (_, System.Text.Json.JsonElement json, _) = StressRunner.Run("--jobs", "500", "--quiet");
        FenceCore.Stress.StressReport report = System.Text.Json.JsonSerializer.Deserialize(json.GetRawText(), FenceCore.Stress.StressReportJsonContext.Default.StressReport)!;
        report = report with { Invariants = [new FenceCore.Stress.ReportInvariant("x", "</script><img src=x onerror=alert(1)>", 1, 1, "</script>")] };
        string template = FenceCore.Stress.HtmlReport.Render(report with { Invariants = [] });
        string page = FenceCore.Stress.HtmlReport.Render(report);
        Assert.DoesNotContain("</script><img", page, StringComparison.Ordinal);
        Assert.Equal(CountScriptEnds(template), CountScriptEnds(page));
    }

    private static int CountScriptEnds(string html) => html.Split("</script>").Length - 1;
}
