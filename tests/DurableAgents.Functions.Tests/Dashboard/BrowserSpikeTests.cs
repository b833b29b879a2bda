using NUnit.Framework;

namespace DurableAgents.Functions.Tests.Dashboard;

public sealed class BrowserSpikeTests
{
    [Test]
    public async Task Spike()
    {
        var (pw, browser) = await Browser.LaunchAsync();
        var page = await browser.NewPageAsync();
        await page.SetContentAsync("<h1>hi</h1>");
        Assert.That(await page.InnerTextAsync("h1"), Is.EqualTo("hi"));
        await browser.DisposeAsync();
        pw.Dispose();
    }
}
