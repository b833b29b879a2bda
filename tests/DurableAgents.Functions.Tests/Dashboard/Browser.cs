using Microsoft.Playwright;
using NUnit.Framework;

namespace DurableAgents.Functions.Tests.Dashboard;

/// <summary>Debian's chromium driven by Playwright (Playwright's own browser download cannot work here).</summary>
internal static class Browser
{
    public static string Executable =>
        Environment.GetEnvironmentVariable("DURABLEAGENTS_TEST_CHROMIUM") is { Length: > 0 } path ? path
        : File.Exists("/usr/bin/chromium") ? "/usr/bin/chromium"
        : throw new IgnoreException("no chromium: run scripts/test.sh (it installs Debian's chromium)");

    public static async Task<(IPlaywright Playwright, IBrowser Browser)> LaunchAsync()
    {
        var playwright = await Playwright.CreateAsync();
        var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Executable,
            Headless = true,
            Args = ["--no-sandbox", "--disable-dev-shm-usage"],
        });
        return (playwright, browser);
    }

    /// <summary>Saves a full-page screenshot as a test artifact (attached to the result, kept under TestResults/screenshots).</summary>
    public static async Task ScreenshotAsync(IPage page, string name)
    {
        ArgumentNullException.ThrowIfNull(page);
        var dir = Path.Combine(TestContext.CurrentContext.WorkDirectory, "screenshots");
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, name + ".png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        TestContext.AddTestAttachment(path, name);
    }
}
