using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using NUnit.Framework;

namespace DurableAgents.Functions.Tests;

/// <summary>The schedules API and configured schedules, over HTTP against the real host.</summary>
[NonParallelizable]
public sealed class ScheduleApiTests
{
    private HostProcess _host = null!;
    private HttpClient _http = null!;

    [OneTimeSetUp]
    public async Task StartHost()
    {
        _host = await HostProcess.StartAsync(new Dictionary<string, string>
        {
            ["DurableAgents__Schedules__nightly__Cron"] = "0 3 * * *",
            ["DurableAgents__Schedules__nightly__TimeZone"] = "Europe/Paris",
            ["DurableAgents__Schedules__nightly__Orchestrator"] = "HelloCities",
            ["DurableAgents__Schedules__nightly__Input"] = "[\"Paris\"]",
            ["DurableAgents__Schedules__broken__Cron"] = "not a cron",
            ["DurableAgents__Schedules__broken__Orchestrator"] = "HelloCities",
        });
        _http = _host.CreateClient();
    }

    [OneTimeTearDown]
    public async Task StopHost()
    {
        _http.Dispose();
        await _host.DisposeAsync();
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private async Task<JsonElement?> FindAsync(string id)
    {
        var list = await _http.GetFromJsonAsync<JsonElement>("/api/schedules");
        return list.EnumerateArray().Cast<JsonElement?>().FirstOrDefault(s => s!.Value.GetProperty("definition").GetProperty("id").GetString() == id);
    }

    [Test]
    public async Task ConfiguredSchedule_IsListedWithNextOccurrencesInItsTimeZone_InvalidOneIsNot()
    {
        var nightly = await FindAsync("nightly");

        Assert.That(nightly, Is.Not.Null);
        var next = nightly!.Value.GetProperty("nextOccurrences").EnumerateArray().Select(e => e.GetDateTime()).ToList();
        Assert.That(next, Has.Count.EqualTo(3));
        Assert.That(next, Is.Ordered);
        var paris = TimeZoneInfo.FindSystemTimeZoneById("Europe/Paris");
        Assert.That(next.Select(n => TimeZoneInfo.ConvertTimeFromUtc(DateTime.SpecifyKind(n, DateTimeKind.Utc), paris).Hour), Has.All.EqualTo(3));
        Assert.That(await FindAsync("broken"), Is.Null, "an invalid configured schedule is logged, not started");
    }

    [Test]
    public async Task CreatePauseResumeDelete_ThroughTheApi()
    {
        using var created = await _http.PostAsync("/api/schedules", Json("""{"id":"seo-audit","cron":"0 */6 * * *","orchestrator":"HelloCities","input":["Lima"],"catchUp":"RunOnce","overlap":"Skip"}"""));
        Assert.That(created.StatusCode, Is.EqualTo(HttpStatusCode.Created), await created.Content.ReadAsStringAsync());
        using var duplicate = await _http.PostAsync("/api/schedules", Json("""{"id":"seo-audit","cron":"0 */6 * * *","orchestrator":"HelloCities"}"""));
        Assert.That(duplicate.StatusCode, Is.EqualTo(HttpStatusCode.Conflict));

        Assert.That((await _http.PostAsync("/api/schedules/seo-audit/pause", null)).StatusCode, Is.EqualTo(HttpStatusCode.Accepted));
        await WaitForAsync(async () => (await FindAsync("seo-audit"))?.GetProperty("paused").GetBoolean() == true);
        Assert.That((await _http.PostAsync("/api/schedules/seo-audit/resume", null)).StatusCode, Is.EqualTo(HttpStatusCode.Accepted));
        await WaitForAsync(async () => (await FindAsync("seo-audit"))?.GetProperty("paused").GetBoolean() == false);
        Assert.That((await _http.DeleteAsync("/api/schedules/seo-audit")).StatusCode, Is.EqualTo(HttpStatusCode.Accepted));
        await WaitForAsync(async () => await FindAsync("seo-audit") is null);
    }

    [TestCase("""{"id":"x","cron":"61 * * * *","orchestrator":"HelloCities"}""", 400)]
    [TestCase("""{"id":"x","cron":"0 3 * * *","timeZone":"Mars/Olympus","orchestrator":"HelloCities"}""", 400)]
    [TestCase("""{"id":"Bad Id!","cron":"0 3 * * *","orchestrator":"HelloCities"}""", 400)]
    [TestCase("""{"id":"x","cron":"0 3 * * *","orchestrator":"NoSuchWorkflow"}""", 404)]
    [TestCase("""{"id":"x","cron":"0 3 * * *","orchestrator":"HelloCities","catchUp":"Sometimes"}""", 400)]
    [TestCase("""not json""", 400)]
    public async Task BadDefinitions_GetProblemDetails_AndCreateNothing(string body, int expected)
    {
        using var response = await _http.PostAsync("/api/schedules", Json(body));

        Assert.That((int)response.StatusCode, Is.EqualTo(expected), await response.Content.ReadAsStringAsync());
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/problem+json"));
        Assert.That(await FindAsync("x"), Is.Null);
    }

    [Test]
    public async Task PauseUnknownSchedule_Gets404()
    {
        Assert.That((await _http.PostAsync("/api/schedules/nope/pause", null)).StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (!await condition())
        {
            await Task.Delay(20, cts.Token);
        }
    }
}
