using System.Net;
using System.Text;
using DurableAgents.Tests.Support;
using NUnit.Framework;

namespace DurableAgents.Functions.Tests;

/// <summary>
/// Two host processes (the custom-handler binary) on one PostgreSQL share one deployment's limit, held in the
/// database or in Redis: twelve chats started at once, half on each host, against a deployment allowing one
/// call at a time, never have two calls at the local OpenAI-compatible server together.
/// </summary>
[NonParallelizable]
public sealed class SharedRateLimitTests
{
    [TestCase("postgres")]
    [TestCase("redis")]
    public async Task TwoHostProcesses_ShareOneDeploymentsLimit(string store)
    {
        var cs = Environment.GetEnvironmentVariable("DURABLEAGENTS_TEST_POSTGRES") ?? throw new IgnoreException("no PostgreSQL server: run scripts/test.sh");
        var redis = Environment.GetEnvironmentVariable("DURABLEAGENTS_TEST_REDIS") ?? throw new IgnoreException("no Redis server: run scripts/test.sh");
        await using var model = await FakeOpenAiServer.StartAsync();
        model.ChatDelay = TimeSpan.FromMilliseconds(250);
        var hub = "rl" + Guid.NewGuid().ToString("N")[..10];
        var env = new Dictionary<string, string>
        {
            ["DurableAgents__Store"] = "Postgres",
            ["DurableAgents__Postgres__ConnectionString"] = cs,
            ["DurableAgents__Postgres__TaskHub"] = hub,
            ["DurableAgents__Llm__Cache__Enabled"] = "false",
        };
        if (store == "redis")
        {
            env["DurableAgents__Redis__Configuration"] = redis;
        }

        foreach (var profile in new[] { "fast", "strong" })
        {
            // Both profiles name the same deployment (kind, endpoint, model): one limit.
            var at = $"DurableAgents__Llm__Profiles__{profile}__Providers__0__";
            env[at + "Name"] = "shared-" + profile;
            env[at + "Kind"] = "OpenAICompatible";
            env[at + "Endpoint"] = model.OpenAiEndpoint.ToString();
            env[at + "Model"] = "gpt-test";
            env[at + "ApiKey"] = "sk-test";
            env[at + "MaxConcurrent"] = "1";
            env[at + "RequestsPerMinute"] = "600";
        }

        try
        {
            await using var a = await HostProcess.StartAsync(new Dictionary<string, string>(env) { ["DurableAgents__WorkerId"] = "host-a" });
            await using var b = await HostProcess.StartAsync(new Dictionary<string, string>(env) { ["DurableAgents__WorkerId"] = "host-b" });
            using var httpA = a.CreateClient();
            using var httpB = b.CreateClient();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            var ids = Enumerable.Range(0, 12).Select(i => $"chat-{i:D2}").ToList();
            await Task.WhenAll(ids.Select(async (id, i) =>
            {
                using var start = await (i % 2 == 0 ? httpA : httpB).PostAsync(
                    $"/api/orchestrators/AgentChat/{id}",
                    new StringContent("""{"message":"Quick question?","agent":"writer"}""", Encoding.UTF8, "application/json"),
                    cts.Token);
                Assert.That(start.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));
            }));

            foreach (var id in ids)
            {
                var status = await HostProcess.WaitUntilFinishedAsync(httpA, id, cts.Token);
                Assert.That(status.GetProperty("runtimeStatus").GetString(), Is.EqualTo("Completed"), status.ToString());
            }

            Assert.That(model.ChatRequests, Has.Count.EqualTo(12), "one request per chat");
            Assert.That(model.MaxConcurrentChats, Is.EqualTo(1), "the two hosts together kept to MaxConcurrent=1");

            // Both hosts made calls (so the limit was shared, not just kept by one), as the ledger records them.
            await using var db = Npgsql.NpgsqlDataSource.Create(cs);
            await using var hosts = db.CreateCommand($"SELECT DISTINCT host FROM durableagents_{hub}.llm_attempts WHERE outcome = 'ok' ORDER BY host");
            var callers = new List<string>();
            await using (var reader = await hosts.ExecuteReaderAsync(cts.Token))
            {
                while (await reader.ReadAsync(cts.Token))
                {
                    callers.Add(reader.GetString(0));
                }
            }

            Assert.That(callers, Is.EqualTo(new[] { "host-a", "host-b" }));

            // Where the limit was held, as the cost page says.
            var costs = await httpB.GetStringAsync("/dashboard/costs", cts.Token);
            Assert.That(costs, Does.Contain($"<td>{store}</td>"));
        }
        finally
        {
            await using var db = Npgsql.NpgsqlDataSource.Create(cs);
            await using var drop = db.CreateCommand($"DROP SCHEMA IF EXISTS durableagents_{hub} CASCADE");
            await drop.ExecuteNonQueryAsync();
        }
    }
}
