using System.Net;
using System.Text;
using NUnit.Framework;

namespace DurableAgents.Functions.Tests;

/// <summary>
/// Generated bad requests (seeded, so a failure reproduces): malformed JSON, wrong content types,
/// hostile ids and query values, wrong methods, oversized and deeply nested bodies. None may get
/// a 5xx, and none may change stored state.
/// </summary>
[NonParallelizable]
public sealed class ApiFuzzTests
{
    private static readonly (string Method, string Path)[] Routes =
    [
        ("POST", "/api/orchestrators/{name}"),
        ("POST", "/api/orchestrators/{name}/{id}"),
        ("GET", "/api/instances/{id}"),
        ("GET", "/api/instances"),
        ("POST", "/api/instances/{id}/raiseEvent/{name}"),
        ("POST", "/api/instances/{id}/terminate"),
        ("POST", "/api/instances/{id}/suspend"),
        ("POST", "/api/instances/{id}/resume"),
        ("DELETE", "/api/instances/{id}"),
        ("POST", "/api/schedules"),
        ("POST", "/api/schedules/{id}/pause"),
        ("DELETE", "/api/schedules/{id}"),
        ("GET", "/approve/{id}"),
        ("POST", "/approve/{id}"),
        ("POST", "/SchedulerHeartbeat"),
    ];

    private static readonly string[] HostileSegments =
    [
        "%00", "..%2F..%2Fetc%2Fpasswd", new string('a', 300), "%E2%80%AE", "%F0%9F%98%80", "'; DROP TABLE instances;--", "%25", "a%20b", "%FF%FE", "NoSuchWorkflow", "ghost-instance",
    ];

    private static readonly string[] Bodies =
    [
        "{", "[1,2", "\"unterminated", "{\"a\":}", "nul", "{\"topic\":", new string('[', 5000) + new string(']', 5000), "\u0000\u0001\u0002", "{\"id\":123,\"cron\":[],\"orchestrator\":{}}", "1e999999", "{\"decision\":",
    ];

    private static readonly string[] ContentTypes = ["application/json", "text/plain", "application/xml", "multipart/form-data; boundary=x", "application/json; charset=utf-16"];

    private static readonly string[] Queries =
    [
        "?top=-1", "?top=abc", "?top=99999999999", "?runtimeStatus=Sleeping", "?runtimeStatus=%00", "?createdTimeFrom=yesterday", "?continuationToken=%%%", "?continuationToken=bm90LWEtdG9rZW4=", "?showHistory=maybe", "?reason=" + new string('r', 5000),
    ];

    [Test]
    public async Task GeneratedBadRequests_NeverGet5xx_AndChangeNothing()
    {
        await using var host = await HostProcess.StartAsync();
        using var http = host.CreateClient();
        var random = new Random(20261123);
        var before = await SnapshotAsync(http);
        var methods = new[] { HttpMethod.Get, HttpMethod.Post, HttpMethod.Delete, HttpMethod.Put, HttpMethod.Patch };
        var statuses = new Dictionary<int, int>();

        for (var i = 0; i < 400; i++)
        {
            var (method, template) = Routes[random.Next(Routes.Length)];
            var path = template
                .Replace("{name}", HostileSegments[random.Next(HostileSegments.Length)], StringComparison.Ordinal)
                .Replace("{id}", HostileSegments[random.Next(HostileSegments.Length)], StringComparison.Ordinal);
            if (random.Next(3) == 0)
            {
                path += Queries[random.Next(Queries.Length)];
            }

            // Mostly the route's own method, so requests get past routing into validation.
            using var request = new HttpRequestMessage(random.Next(5) == 0 ? methods[random.Next(methods.Length)] : new HttpMethod(method), path);
            if (random.Next(4) != 0)
            {
                var body = Bodies[random.Next(Bodies.Length)];
                request.Content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
                request.Content.Headers.TryAddWithoutValidation("Content-Type", ContentTypes[random.Next(ContentTypes.Length)]);
            }

            using var response = await http.SendAsync(request);
            var code = (int)response.StatusCode;
            statuses[code] = statuses.GetValueOrDefault(code) + 1;
            Assert.That(code, Is.LessThan(500), $"#{i}: {request.Method} {path} -> {code}: {await response.Content.ReadAsStringAsync()}");
        }

        TestContext.Out.WriteLine(string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{s.Key}: {s.Value}")));
        Assert.That(await SnapshotAsync(http), Is.EqualTo(before), "no bad request changed stored state");
        Assert.That(statuses.Keys, Has.Some.EqualTo(400).And.Some.EqualTo(404), "the generator reaches validation, not just routing");
    }

    private static async Task<string> SnapshotAsync(HttpClient http)
    {
        using var instances = await http.GetAsync("/api/instances?top=1000&showInput=true");
        Assert.That(instances.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        using var outbox = await http.GetAsync("/api/outbox");
        return await instances.Content.ReadAsStringAsync() + await outbox.Content.ReadAsStringAsync();
    }
}
