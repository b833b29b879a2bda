using System.Net.Http.Json;
using System.Text.Json;
using NUnit.Framework;

namespace DurableAgents.Functions.Tests;

/// <summary>The custom handler's function.json folders parse and route every API path to the app.</summary>
public sealed class FunctionJsonTests
{
    private static string TriggersDir() => Path.Combine(HostProcess.RepoRoot, "functions", "DurableAgents.Functions", "Triggers");

    private static List<(string Name, List<JsonElement> Bindings)> Functions() =>
        Directory.GetDirectories(TriggersDir()).Select(d =>
            (Path.GetFileName(d), JsonDocument.Parse(File.ReadAllText(Path.Combine(d, "function.json"))).RootElement.Clone().GetProperty("bindings").EnumerateArray().ToList())).ToList();

    private static List<(string Name, JsonElement Trigger)> HttpTriggers() =>
        Functions().Where(f => f.Bindings.Any(b => b.GetProperty("type").GetString() == "httpTrigger")).Select(f =>
        {
            Assert.That(f.Bindings.Any(b => b.GetProperty("type").GetString() == "http" && b.GetProperty("direction").GetString() == "out"), Is.True, f.Name);
            return (f.Name, f.Bindings.Single(b => b.GetProperty("type").GetString() == "httpTrigger"));
        }).ToList();

    [Test]
    public async Task TimerFunctions_HaveSixFieldSchedules_AndTheAppAnswersTheirInvocation()
    {
        var timers = Functions().Where(f => f.Bindings.Any(b => b.GetProperty("type").GetString() == "timerTrigger")).ToList();
        Assert.That(timers.Select(t => t.Name), Does.Contain("SchedulerHeartbeat"));
        await using var host = await HostProcess.StartAsync();
        using var http = host.CreateClient();
        foreach (var (name, bindings) in timers)
        {
            var schedule = bindings.Single().GetProperty("schedule").GetString()!;
            Assert.That(schedule.Split(' '), Has.Length.EqualTo(6), "NCRONTAB: seconds first");
            Assert.DoesNotThrow(() => Cronos.CronExpression.Parse(schedule, Cronos.CronFormat.IncludeSeconds));

            // A recorded timer invocation, as the Functions host sends it (ScheduleStatus null on first run).
            var envelope = """{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":true}},"Metadata":{"sys":{"MethodName":"SchedulerHeartbeat","UtcNow":"2026-11-23T10:00:00Z","RandGuid":"1c4d5a9e-0000-4000-8000-000000000000"}}}""";
            using var response = await http.PostAsync($"/{name}", new StringContent(envelope, System.Text.Encoding.UTF8, "application/json"));
            Assert.That(response.StatusCode, Is.EqualTo(System.Net.HttpStatusCode.OK), name);
            var body = await response.Content.ReadFromJsonAsync<JsonElement>();
            Assert.That(body.GetProperty("outputs").ValueKind, Is.EqualTo(JsonValueKind.Object));
            Assert.That(body.GetProperty("logs")[0].GetString(), Does.Contain("past due"));
            Assert.That(body.GetProperty("returnValue").ValueKind, Is.EqualTo(JsonValueKind.Null));

            using var garbage = await http.PostAsync($"/{name}", new StringContent("not json", System.Text.Encoding.UTF8, "application/json"));
            Assert.That(garbage.StatusCode, Is.EqualTo(System.Net.HttpStatusCode.BadRequest));
            using var empty = await http.PostAsync($"/{name}", new StringContent("{}", System.Text.Encoding.UTF8, "application/json"));
            Assert.That(empty.StatusCode, Is.EqualTo(System.Net.HttpStatusCode.OK), "a missing timer object is tolerated");
        }
    }

    private static bool Covers(string route, string path)
    {
        var trimmed = path.TrimStart('/');
        var star = route.IndexOf("{*", StringComparison.Ordinal);
        if (star >= 0)
        {
            var prefix = route[..star].TrimEnd('/');
            return trimmed == prefix || trimmed.StartsWith(prefix + "/", StringComparison.Ordinal);
        }

        // Same number of segments, literal segments equal, {parameters} match anything.
        var r = route.Split('/');
        var p = trimmed.Split('/');
        return r.Length == p.Length && r.Zip(p).All(x => x.First.StartsWith('{') || x.First == x.Second);
    }

    [Test]
    public void EveryFunctionJson_ParsesWithAnHttpTriggerAndOutput()
    {
        var triggers = HttpTriggers();

        Assert.That(triggers, Has.Count.GreaterThanOrEqualTo(4));
        Assert.That(triggers.Select(t => t.Trigger.GetProperty("route").GetString()), Has.All.Not.Empty);
    }

    [Test]
    public async Task EveryAppRoute_IsCoveredByAFunction_ManagementRoutesNeedFunctionKeys()
    {
        await using var host = await HostProcess.StartAsync();
        using var http = host.CreateClient();
        var doc = await http.GetFromJsonAsync<JsonElement>("/openapi/v1.json");
        var paths = doc.GetProperty("paths").EnumerateObject().Select(p => p.Name).Concat(["/healthz", "/readyz", "/openapi/v1.json", "/approve/{token}", "/dashboard", "/dashboard/login", "/dashboard/instances/{instanceId}", "/dashboard/assets/dashboard.css"]).ToList();
        var triggers = HttpTriggers();

        foreach (var path in paths)
        {
            var covering = triggers.Where(t => Covers(t.Trigger.GetProperty("route").GetString()!, path)).ToList();
            Assert.That(covering, Has.Count.EqualTo(1), $"{path} must map to exactly one function");
            var auth = covering[0].Trigger.GetProperty("authLevel").GetString();
            Assert.That(auth, Is.EqualTo(path.StartsWith("/api/", StringComparison.Ordinal) ? "function" : path.StartsWith("/openapi", StringComparison.Ordinal) ? "function" : "anonymous"), path);
        }
    }

    [Test]
    public void HostJson_DeclaresTheCustomHandlerWithRequestForwarding()
    {
        var dir = new DirectoryInfo(TriggersDir()).Parent!.Parent!.Parent!.FullName;
        var hostJson = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "host.json"))).RootElement;
        var handler = hostJson.GetProperty("customHandler");

        Assert.That(handler.GetProperty("description").GetProperty("defaultExecutablePath").GetString(), Is.EqualTo("DurableAgents.Functions"));
        Assert.That(handler.GetProperty("enableForwardingHttpRequest").GetBoolean(), Is.True);
        Assert.That(hostJson.GetProperty("extensions").GetProperty("http").GetProperty("routePrefix").GetString(), Is.Empty);
    }
}
