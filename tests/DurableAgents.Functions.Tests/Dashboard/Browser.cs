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

    /// <summary>Clicks a link or submit button and waits for the next page to load.</summary>
    public static async Task ClickAndLoadAsync(IPage page, string selector)
    {
        ArgumentNullException.ThrowIfNull(page);
        var before = page.Url;
        await page.ClickAsync(selector);
        await page.WaitForURLAsync(url => url != before, new PageWaitForURLOptions { WaitUntil = WaitUntilState.Load });
    }

    /// <summary>Submits a form whose answer redirects back to the same page (post/redirect/get), and waits for that page to load.</summary>
    public static async Task SubmitAndReloadAsync(IPage page, string selector)
    {
        ArgumentNullException.ThrowIfNull(page);
        await page.RunAndWaitForResponseAsync(() => page.ClickAsync(selector), r => r.Request.IsNavigationRequest && r.Request.Method == "GET");
        await page.WaitForLoadStateAsync(LoadState.Load);
    }

    /// <summary>Saves a full-page screenshot as a test artifact (attached to the result; scripts/test.sh keeps them in TestResults/screenshots).</summary>
    public static async Task ScreenshotAsync(IPage page, string name)
    {
        ArgumentNullException.ThrowIfNull(page);
        var dir = Environment.GetEnvironmentVariable("DURABLEAGENTS_TEST_ARTIFACTS") is { Length: > 0 } artifacts
            ? Path.Combine(artifacts, "screenshots")
            : Path.Combine(TestContext.CurrentContext.WorkDirectory, "screenshots");
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, name + ".png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        TestContext.AddTestAttachment(path, name);
    }
}
