using System.Net;
using Microsoft.Playwright;
using NUnit.Framework;

namespace DurableAgents.Functions.Tests.Dashboard;

/// <summary>With API keys configured, the dashboard asks for one (in the browser) and refuses forged posts.</summary>
public sealed class DashboardAccessTests
{
    [Test]
    public async Task WithApiKeys_TheBrowserSignsIn_AndPostsWithoutAnAntiforgeryTokenAreRefused()
    {
        _ = Browser.Executable;
        await using var host = await HostProcess.StartAsync(new Dictionary<string, string> { ["DurableAgents__Api__Keys__0"] = "dashboard-test-key-123" });
        var (playwright, browser) = await Browser.LaunchAsync();
        try
        {
            var page = await browser.NewPageAsync();
            await page.GotoAsync(new Uri(host.BaseAddress, "/dashboard/costs").ToString());
            Assert.That(page.Url, Does.Contain("/dashboard/login?returnUrl=%2Fdashboard%2Fcosts"));

            await page.FillAsync("#key", "wrong-key");
            await Browser.ClickAndLoadAsync(page, "button[type=submit]");
            Assert.That(await page.Locator(".flash.error").InnerTextAsync(), Does.Contain("not a valid API key"));
            Assert.That(await page.ContentAsync(), Does.Not.Contain("wrong-key"), "the key is never echoed");

            await page.GotoAsync(new Uri(host.BaseAddress, "/dashboard/login?returnUrl=%2Fdashboard%2Fcosts").ToString());
            await page.FillAsync("#key", "dashboard-test-key-123");
            await Browser.ClickAndLoadAsync(page, "button[type=submit]");
            Assert.That(await page.Locator("h1").InnerTextAsync(), Is.EqualTo("Costs"));
            var cookie = (await page.Context.CookiesAsync()).Single(c => c.Name == "da_dashboard_key");
            Assert.That((cookie.HttpOnly, cookie.SameSite), Is.EqualTo((true, SameSiteAttribute.Strict)));
            Assert.That(cookie.Value, Does.Not.Contain("dashboard-test-key-123"), "the cookie holds a token derived from the key, not the key");
        }
        finally
        {
            await browser.DisposeAsync();
            playwright.Dispose();
        }

        using var http = host.CreateClient();
        http.DefaultRequestHeaders.Add("x-api-key", "dashboard-test-key-123");
        using var forged = await http.PostAsync("/dashboard/instances/any/actions/terminate", new FormUrlEncodedContent(new Dictionary<string, string> { ["reason"] = "csrf" }));
        Assert.That(forged.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        using var forgedCookie = new HttpRequestMessage(HttpMethod.Get, "/dashboard");
        forgedCookie.Headers.Add("Cookie", "da_dashboard_key=dashboard-test-key-123");
        using var anonymous = new HttpClient { BaseAddress = host.BaseAddress };
        using var withRawKeyCookie = await anonymous.SendAsync(forgedCookie);
        Assert.That(withRawKeyCookie.RequestMessage!.RequestUri!.AbsolutePath, Is.EqualTo("/dashboard/login"), "the raw key is not a session token");
        using var redirected = await anonymous.GetAsync("/dashboard");
        Assert.That(redirected.RequestMessage!.RequestUri!.AbsolutePath, Is.EqualTo("/dashboard/login"));
    }
}
