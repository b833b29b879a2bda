using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using NUnit.Framework;

namespace DurableAgents.Functions.Tests;

/// <summary>The host switches stores by configuration and refuses to start, clearly, when the store is unreachable.</summary>
[NonParallelizable]
public sealed class StoreConfigurationTests
{
    private static string PostgresOrIgnore() =>
        Environment.GetEnvironmentVariable("DURABLEAGENTS_TEST_POSTGRES") ?? throw new IgnoreException("no PostgreSQL server: run scripts/test.sh");

    [Test]
    public async Task Host_ConfiguredForPostgresAndRedis_RunsAWorkflow()
    {
        var cs = PostgresOrIgnore();
        var hub = "h" + Guid.NewGuid().ToString("N")[..10];
        var env = new Dictionary<string, string>
        {
            ["DurableAgents__Store"] = "Postgres",
            ["DurableAgents__Postgres__ConnectionString"] = cs,
            ["DurableAgents__Postgres__TaskHub"] = hub,
        };
        if (Environment.GetEnvironmentVariable("DURABLEAGENTS_TEST_REDIS") is { } redis)
        {
            env["DurableAgents__Redis__Configuration"] = redis;
        }

        try
        {
            await using var host = await HostProcess.StartAsync(env);
            using var http = host.CreateClient();
            using var start = await http.PostAsync("/api/orchestrators/HelloCities/pg-1", new StringContent("[\"Rome\"]", Encoding.UTF8, "application/json"));
            Assert.That(start.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));

            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            JsonElement status;
            do
            {
                await Task.Delay(20, cts.Token);
                status = await http.GetFromJsonAsync<JsonElement>("/api/instances/pg-1", cts.Token);
            }
            while (status.GetProperty("runtimeStatus").GetString() != "Completed");

            Assert.That(status.GetProperty("output")[0].GetString(), Is.EqualTo("Hello Rome!"));
            Assert.That((await http.GetAsync("/readyz")).StatusCode, Is.EqualTo(HttpStatusCode.OK));
        }
        finally
        {
            await using var c = new Npgsql.NpgsqlConnection(cs);
            await c.OpenAsync();
            await using var drop = new Npgsql.NpgsqlCommand($"DROP SCHEMA IF EXISTS durableagents_{hub} CASCADE", c);
            await drop.ExecuteNonQueryAsync();
        }
    }

    [Test]
    public async Task Host_PostgresUnreachable_ExitsAtStartWithAClearErrorAndNoSecret()
    {
        var (exitCode, output) = await HostProcess.RunToExitAsync(new Dictionary<string, string>
        {
            ["DurableAgents__Store"] = "Postgres",
            ["DurableAgents__Postgres__ConnectionString"] = "Host=127.0.0.1;Port=1;Username=app;Password=hunter2-secret;Database=agents;Timeout=3",
        });

        Assert.That(exitCode, Is.Not.Zero, "the host must not run without its store");
        Assert.That(output, Does.Contain("DurableAgents:Postgres:ConnectionString").And.Contain("127.0.0.1:1"));
        Assert.That(output, Does.Not.Contain("hunter2-secret"));
    }

    [Test]
    public async Task Host_WithoutKeys_WarnsOnceEachAtStart_ApiLoopbackOnly_ApprovalKeyEphemeral()
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Path.GetDirectoryName(HostProcess.HostDll)! };
        psi.ArgumentList.Add(HostProcess.HostDll);
        psi.ArgumentList.Add("--urls");
        psi.ArgumentList.Add("http://127.0.0.1:0");
        var data = Directory.CreateTempSubdirectory("da-warn").FullName;
        psi.Environment["DurableAgents__Sqlite__ConnectionString"] = $"Data Source={Path.Combine(data, "store.db")}";
        using var process = Process.Start(psi)!;
        var lines = new List<string>();
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            while (await process.StandardOutput.ReadLineAsync(cts.Token) is { } line)
            {
                lines.Add(line);
                if (line.Contains("Now listening on:", StringComparison.Ordinal))
                {
                    break;
                }
            }
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            Directory.Delete(data, true);
        }

        var text = string.Join("\n", lines);
        Assert.That(text, Does.Contain("ApiKeyStartupCheck[2100]").And.Contain("loopback callers only"));
        Assert.That(text, Does.Contain("ApprovalKeyStartupCheck[2102]").And.Contain("DurableAgents:Approvals:SigningKey"));
    }
}
