using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using DurableAgents.Functions.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using NUnit.Framework;

namespace DurableAgents.Functions.Tests;

/// <summary>Every management route requires the API key; without keys the API is loopback-only.</summary>
[NonParallelizable]
public sealed class ApiKeyTests
{
    private const string Key = "test-key-7f3a9c";

    /// <summary>Every /api operation in the host's own OpenAPI document, with sample route values.</summary>
    private static async Task<List<(string Method, string Path)>> ManagementOperationsAsync(HttpClient http)
    {
        var doc = await http.GetFromJsonAsync<JsonElement>("/openapi/v1.json");
        var ops = new List<(string, string)>();
        foreach (var path in doc.GetProperty("paths").EnumerateObject().Where(p => p.Name.StartsWith("/api/", StringComparison.Ordinal)))
        {
            var concrete = path.Name.Replace("{name}", "HelloCities", StringComparison.Ordinal)
                .Replace("{instanceId}", "some-instance", StringComparison.Ordinal)
                .Replace("{eventName}", "approval", StringComparison.Ordinal)
                .Replace("{id}", "nightly", StringComparison.Ordinal);
            ops.AddRange(path.Value.EnumerateObject().Select(m => (m.Name.ToUpperInvariant(), concrete)));
        }

        return ops;
    }

    [Test]
    public async Task EveryManagementRoute_WithoutOrWithWrongKey_Gets401_WithRightKeyPasses()
    {
        await using var host = await HostProcess.StartAsync(new Dictionary<string, string> { ["DurableAgents__Api__Keys__0"] = Key });
        using var http = host.CreateClient();
        var ops = await ManagementOperationsAsync(http);
        Assert.That(ops, Has.Count.GreaterThanOrEqualTo(14), "instances (8), outbox, schedules (5)");

        foreach (var (method, path) in ops)
        {
            foreach (var presented in new[] { null, "wrong-key" })
            {
                using var request = new HttpRequestMessage(new HttpMethod(method), path);
                if (presented is not null)
                {
                    request.Headers.Add(ApiKeyFilter.HeaderName, presented);
                }

                using var denied = await http.SendAsync(request);
                Assert.That(denied.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized), $"{method} {path} with key '{presented}'");
                Assert.That(denied.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/problem+json"));
                Assert.That(await denied.Content.ReadAsStringAsync(), Does.Not.Contain(Key));
            }

            using var allowed = new HttpRequestMessage(new HttpMethod(method), path);
            allowed.Headers.Add(ApiKeyFilter.HeaderName, Key);
            using var response = await http.SendAsync(allowed);
            Assert.That(response.StatusCode, Is.Not.EqualTo(HttpStatusCode.Unauthorized).And.Not.EqualTo(HttpStatusCode.Forbidden), $"{method} {path}");
        }

        Assert.That((await http.GetAsync("/healthz")).StatusCode, Is.EqualTo(HttpStatusCode.OK), "health stays open for probes");
    }

    private static ApiKeyFilter Filter(params (string Key, string Value)[] settings) =>
        new(new ConfigurationBuilder().AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value))).Build());

    private static DefaultHttpContext From(string address)
    {
        var http = new DefaultHttpContext();
        http.Connection.RemoteIpAddress = IPAddress.Parse(address);
        return http;
    }

    [TestCase("127.0.0.1")]
    [TestCase("::1")]
    public void NoKeyConfigured_LoopbackCaller_IsAllowed(string address)
    {
        Assert.That(Filter().Authorize(From(address)), Is.Null);
    }

    [TestCase("10.1.2.3")]
    [TestCase("192.168.1.20")]
    [TestCase("203.0.113.7")]
    public void NoKeyConfigured_RemoteCaller_IsForbidden(string address)
    {
        var result = Filter().Authorize(From(address));

        Assert.That(result, Is.InstanceOf<Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult>());
        Assert.That(((Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult)result!).StatusCode, Is.EqualTo(403));
    }

    [Test]
    public void KeyConfigured_LoopbackCallerWithoutKey_IsStillRefused()
    {
        var result = Filter(("DurableAgents:Api:Keys:0", Key)).Authorize(From("127.0.0.1"));

        Assert.That(((Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult)result!).StatusCode, Is.EqualTo(401));
    }

    [Test]
    public void SeveralKeys_EachIsAccepted_CommaSeparatedToo()
    {
        var filter = Filter(("DurableAgents:Api:Keys", "k1, k2"), ("DurableAgents:Api:Keys:0", "k3"));
        foreach (var key in new[] { "k1", "k2", "k3" })
        {
            var http = From("203.0.113.7");
            http.Request.Headers[ApiKeyFilter.HeaderName] = key;
            Assert.That(filter.Authorize(http), Is.Null, key);
        }
    }
}
