using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using NUnit.Framework;

namespace DurableAgents.Functions.Tests;

/// <summary>The management API over real HTTP against the real host process.</summary>
[NonParallelizable] // one host process for the fixture
public sealed class ManagementApiTests
{
    private HostProcess _host = null!;
    private HttpClient _http = null!;

    [OneTimeSetUp]
    public async Task OneTimeSetUp()
    {
        _host = await HostProcess.StartAsync();
        _http = _host.CreateClient();
    }

    [OneTimeTearDown]
    public async Task OneTimeTearDown()
    {
        _http.Dispose();
        await _host.DisposeAsync();
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private async Task<JsonElement> WaitForCompletionAsync(string statusUri)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            using var response = await _http.GetAsync(statusUri, cts.Token);
            var body = await response.Content.ReadFromJsonAsync<JsonElement>(cts.Token);
            if (response.StatusCode == HttpStatusCode.OK)
            {
                return body;
            }

            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));
            await Task.Delay(20, cts.Token);
        }
    }

    [Test]
    public async Task Start_HelloCities_Returns202WithLinks_AndCompletes()
    {
        using var response = await _http.PostAsync("/api/orchestrators/HelloCities", Json("[\"Paris\",\"Oslo\"]"));

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));
        Assert.That(response.Headers.RetryAfter, Is.Not.Null);
        var links = await response.Content.ReadFromJsonAsync<JsonElement>();
        var id = links.GetProperty("id").GetString()!;
        Assert.That(response.Headers.Location!.ToString(), Is.EqualTo(links.GetProperty("statusQueryGetUri").GetString()));
        foreach (var name in new[] { "sendEventPostUri", "terminatePostUri", "suspendPostUri", "resumePostUri", "purgeHistoryDeleteUri" })
        {
            Assert.That(links.GetProperty(name).GetString(), Does.Contain(id));
        }

        var done = await WaitForCompletionAsync(links.GetProperty("statusQueryGetUri").GetString()!);
        Assert.That(done.GetProperty("runtimeStatus").GetString(), Is.EqualTo("Completed"));
        Assert.That(done.GetProperty("output").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "Hello Paris!", "Hello Oslo!" }));

        using var withHistory = await _http.GetAsync($"/api/instances/{id}?showHistory=true");
        var history = (await withHistory.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("historyEvents");
        Assert.That(history.EnumerateArray().Count(e => e.GetProperty("type").GetString() == "TaskScheduled"), Is.EqualTo(2));

        using var purge = await _http.DeleteAsync($"/api/instances/{id}");
        Assert.That(purge.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        using var gone = await _http.GetAsync($"/api/instances/{id}");
        Assert.That(gone.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
    }

    [Test]
    public async Task DraftAndApprove_RaiseApprovalEvent_CompletesWithDecision()
    {
        using var start = await _http.PostAsync("/api/orchestrators/DraftAndApprove/draft-1", Json("{\"topic\":\"durable agents\"}"));
        Assert.That(start.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            var status = await _http.GetFromJsonAsync<JsonElement>("/api/instances/draft-1", cts.Token);
            if (status.GetProperty("customStatus").ValueKind == JsonValueKind.String && status.GetProperty("customStatus").GetString() == "awaiting approval")
            {
                break;
            }

            await Task.Delay(20, cts.Token);
        }

        using var raised = await _http.PostAsync("/api/instances/draft-1/raiseEvent/approval", Json("{\"decision\":\"approve\",\"approver\":\"ops@example.com\",\"decidedAt\":\"2026-11-23T10:00:00Z\"}"));
        Assert.That(raised.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));
        var done = await WaitForCompletionAsync("/api/instances/draft-1");
        Assert.That(done.GetProperty("output").GetProperty("decision").GetString(), Is.EqualTo("approve"));
        Assert.That(done.GetProperty("output").GetProperty("decidedBy").GetString(), Is.EqualTo("ops@example.com"));
        Assert.That(done.GetProperty("output").GetProperty("draft").GetString(), Does.StartWith("[simulated]"));

        using var late = await _http.PostAsync("/api/instances/draft-1/raiseEvent/approval", Json("{\"decision\":\"reject\",\"approver\":\"ops@example.com\",\"decidedAt\":\"2026-11-23T10:00:00Z\"}"));
        Assert.That(late.StatusCode, Is.EqualTo(HttpStatusCode.Gone));

        // Both drafts were model calls (the simulator here): each is accounted against the instance and the workflow.
        var usage = await _http.GetFromJsonAsync<JsonElement>("/api/instances/draft-1/usage");
        Assert.That(usage.GetProperty("totals").GetProperty("calls").GetInt64(), Is.EqualTo(2));
        Assert.That(usage.GetProperty("totals").GetProperty("outputTokens").GetInt64(), Is.GreaterThan(0));
        Assert.That(usage.GetProperty("attempts").EnumerateArray().Select(a => a.GetProperty("model").GetString()), Is.EqualTo(new[] { "simulator", "simulator" }));
        var perWorkflow = await _http.GetFromJsonAsync<JsonElement>("/api/usage");
        Assert.That(perWorkflow.EnumerateArray().Select(w => w.GetProperty("key").GetString()), Does.Contain("DraftAndApprove"));
        using var unknown = await _http.GetAsync("/api/instances/no-such-instance/usage");
        Assert.That(unknown.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That(unknown.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/problem+json"));
    }

    [Test]
    public async Task Terminate_RunningInstance_EndsTerminated_AndListFiltersFindIt()
    {
        using var start = await _http.PostAsync("/api/orchestrators/DraftAndApprove/term-1", Json("{\"topic\":\"x\"}"));
        using var terminate = await _http.PostAsync("/api/instances/term-1/terminate?reason=stop", null);
        Assert.That(terminate.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));

        var done = await WaitForCompletionAsync("/api/instances/term-1");
        Assert.That(done.GetProperty("runtimeStatus").GetString(), Is.EqualTo("Terminated"));
        var list = await _http.GetFromJsonAsync<JsonElement>("/api/instances?runtimeStatus=Terminated&instanceIdPrefix=term-");
        Assert.That(list.EnumerateArray().Select(e => e.GetProperty("instanceId").GetString()), Is.EqualTo(new[] { "term-1" }));
    }

    [TestCase("POST", "/api/orchestrators/NoSuchWorkflow", "{}", "application/json", 404)]
    [TestCase("POST", "/api/orchestrators/HelloCities", "{not json", "application/json", 400)]
    [TestCase("POST", "/api/orchestrators/HelloCities", "[\"a\"]", "text/plain", 415)]
    [TestCase("POST", "/api/orchestrators/HelloCities/bad%20id", "", null, 400)]
    [TestCase("GET", "/api/instances/unknown-instance", null, null, 404)]
    [TestCase("GET", "/api/instances?runtimeStatus=Sleeping", null, null, 400)]
    [TestCase("GET", "/api/instances?top=0", null, null, 400)]
    [TestCase("GET", "/api/instances?continuationToken=%21%21", null, null, 400)]
    [TestCase("POST", "/api/instances/unknown-instance/raiseEvent/approval", "\"x\"", "application/json", 404)]
    [TestCase("POST", "/api/instances/unknown-instance/terminate", null, null, 404)]
    [TestCase("DELETE", "/api/instances/unknown-instance", null, null, 404)]
    public async Task BadRequests_GetProblemDetails_AndChangeNothing(string method, string path, string? body, string? contentType, int expected)
    {
        var before = await _http.GetStringAsync("/api/instances?top=1000&showInput=true");
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, contentType ?? "application/json");
        }

        using var response = await _http.SendAsync(request);

        Assert.That((int)response.StatusCode, Is.EqualTo(expected), await response.Content.ReadAsStringAsync());
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/problem+json"));
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.That(problem.GetProperty("status").GetInt32(), Is.EqualTo(expected));
        Assert.That(await _http.GetStringAsync("/api/instances?top=1000&showInput=true"), Is.EqualTo(before), "no state change");
    }

    [Test]
    public async Task InputOverPayloadLimit_Gets413ProblemDetails_NothingStarted()
    {
        // 1.5 MiB: under the 2 MiB request cap (so the body is read in full), over the 1 MiB payload limit.
        var big = "[\"" + new string('a', 1536 * 1024) + "\"]";
        using var response = await _http.PostAsync("/api/orchestrators/HelloCities/too-big", Json(big));

        Assert.That((int)response.StatusCode, Is.EqualTo(413));
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.That(problem.GetProperty("errorType").GetString(), Is.EqualTo("DurableAgents.PayloadTooLarge"));
        Assert.That((await _http.GetAsync("/api/instances/too-big")).StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
    }

    [Test]
    public async Task Health_LivenessAndReadiness_Answer200()
    {
        Assert.That((await _http.GetAsync("/healthz")).StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That((await _http.GetAsync("/readyz")).StatusCode, Is.EqualTo(HttpStatusCode.OK));
    }
}

/// <summary>Under function-level auth the start response's URIs carry the instance-routes key (code=), as Durable Functions' do.</summary>
public sealed class InstanceUriKeyTests
{
    [Test]
    public async Task WithAnInstanceUriKey_TheStartUrisCarryIt_AndWithoutOneTheyDoNot()
    {
        await using var keyed = await HostProcess.StartAsync(new Dictionary<string, string> { ["DurableAgents__Api__InstanceUriKey"] = "k/ey+1" });
        await using var plain = await HostProcess.StartAsync();
        using var keyedHttp = keyed.CreateClient();
        using var plainHttp = plain.CreateClient();

        using var withKey = System.Text.Json.JsonDocument.Parse(await (await keyedHttp.PostAsync("/api/orchestrators/HelloCities", null)).Content.ReadAsStringAsync());
        using var withoutKey = System.Text.Json.JsonDocument.Parse(await (await plainHttp.PostAsync("/api/orchestrators/HelloCities", null)).Content.ReadAsStringAsync());

        var links = withKey.RootElement;
        Assert.That(links.GetProperty("statusQueryGetUri").GetString(), Does.EndWith("?code=k%2Fey%2B1"));
        Assert.That(links.GetProperty("sendEventPostUri").GetString(), Does.EndWith("/raiseEvent/{eventName}?code=k%2Fey%2B1"));
        Assert.That(links.GetProperty("terminatePostUri").GetString(), Does.EndWith("/terminate?reason={text}&code=k%2Fey%2B1"));
        Assert.That(links.GetProperty("purgeHistoryDeleteUri").GetString(), Does.EndWith("?code=k%2Fey%2B1"));
        using var status = await keyedHttp.GetAsync(new Uri(links.GetProperty("statusQueryGetUri").GetString()!));
        Assert.That((int)status.StatusCode, Is.AnyOf(200, 202), "the URI works as given");
        Assert.That(withoutKey.RootElement.GetProperty("statusQueryGetUri").GetString(), Does.Not.Contain("code="));
    }
}
