using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using DurableAgents.Engine;
using DurableAgents.Engine.Client;
using DurableAgents.Engine.Postgres;
using DurableAgents.Engine.Storage;
using DurableAgents.Engine.Testing;
using Npgsql;

namespace DurableAgents.Bench;

/// <summary>
/// The engine on a local PostgreSQL (synchronous_commit on): (a) HelloCities5 throughput,
/// (b) start-to-complete latency on an idle host, (c) fan-out/fan-in of 1,000 activities,
/// (d) the server's single-row commit rate, as the yardstick for (a).
/// </summary>
internal static class PostgresBench
{
    private static readonly string[] Cities = ["Tokyo", "Seattle", "London", "Cairo", "Lima"];

    public static async Task<int> RunAsync(string connectionString, int orchestrations)
    {
        var figures = new Dictionary<string, object>();
        var commit1 = await InsertLoopAsync(connectionString, clients: 1, TimeSpan.FromSeconds(5));
        var commit8 = await InsertLoopAsync(connectionString, clients: 8, TimeSpan.FromSeconds(5));
        figures["singleRowCommitsPerSecond1Client"] = Math.Round(commit1);
        figures["singleRowCommitsPerSecond8Clients"] = Math.Round(commit8);

        var (orchPerSec, actPerSec, seconds) = await HelloCities5Async(connectionString, orchestrations);
        figures["helloCities5Orchestrations"] = orchestrations;
        figures["helloCities5Seconds"] = Math.Round(seconds, 2);
        figures["helloCities5OrchestrationsPerSecond"] = Math.Round(orchPerSec, 1);
        figures["helloCities5ActivitiesPerSecond"] = Math.Round(actPerSec, 1);
        figures["activityRateToCommitRate1Client"] = Math.Round(actPerSec / commit1, 3);
        figures["activityRateToCommitRate8Clients"] = Math.Round(actPerSec / commit8, 3);

        var (p50, p95, runs) = await LatencyAsync(connectionString, 200);
        figures["latencyRuns"] = runs;
        figures["latencyP50Ms"] = Math.Round(p50, 1);
        figures["latencyP95Ms"] = Math.Round(p95, 1);

        // Latency as a multiple of one single-row commit (1 client) on the same server, same run.
        figures["latencyP50InSingleRowCommits"] = Math.Round(p50 * commit1 / 1000, 1);

        var fanOut = await FanOutAsync(connectionString, 1000);
        figures["fanOut1000Ms"] = Math.Round(fanOut);
        figures["fanOut1000InSingleRowCommits"] = Math.Round(fanOut * commit1 / 1000, 1);

        Report.Print("postgres", figures);

        return 0;
    }

    private static Task<DurableAgentsTestHost> StartAsync(string cs, string hub, int orchestrations = 16, int activities = 64) =>
        DurableAgentsTestHost.StartAsync(
            b => b
                .AddOrchestratorFunc<object?, string[]>("HelloCities5", async (ctx, _) =>
                {
                    var result = new string[Cities.Length];
                    for (var i = 0; i < Cities.Length; i++)
                    {
                        result[i] = await ctx.CallActivityAsync<string>("SayHello", Cities[i]);
                    }

                    return result;
                })
                .AddOrchestratorFunc<object?, string[]>("Hello3", async (ctx, _) =>
                [
                    await ctx.CallActivityAsync<string>("SayHello", "a"),
                    await ctx.CallActivityAsync<string>("SayHello", "b"),
                    await ctx.CallActivityAsync<string>("SayHello", "c"),
                ])
                .AddOrchestratorFunc<int, int>("FanOut", async (ctx, n) =>
                {
                    var all = await Task.WhenAll(Enumerable.Range(0, n).Select(i => ctx.CallActivityAsync<int>("Echo", i)));
                    return all.Length;
                })
                .AddActivityFunc<string, string>("SayHello", (_, city) => $"Hello {city}!")
                .AddActivityFunc<int, int>("Echo", (_, i) => i),
            o =>
            {
                o.MaxConcurrentOrchestrations = orchestrations;
                o.MaxConcurrentActivities = activities;
                o.MinPollInterval = TimeSpan.FromMilliseconds(1);
                o.MaxPollInterval = TimeSpan.FromMilliseconds(500);
            },
            storeFactory: _ => new PostgresOrchestrationStore(cs, hub));

    private static async Task<(double OrchPerSec, double ActPerSec, double Seconds)> HelloCities5Async(string cs, int n)
    {
        var hub = "bench_" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            await using var host = await StartAsync(cs, hub);
            // Starts arrive concurrently, as from an HTTP front end: 8 clients.
            var sw = Stopwatch.StartNew();
            await Parallel.ForAsync(0, n, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (_, ct) =>
                await host.Client.ScheduleNewOrchestrationInstanceAsync("HelloCities5", cancellation: ct));
            var scheduledIn = sw.Elapsed.TotalSeconds;

            while (true)
            {
                var done = await CountCompletedAsync(cs, hub);
                if (done >= n)
                {
                    break;
                }

                await Task.Delay(50);
            }

            sw.Stop();
            var failed = await CountNotCompletedAsync(cs, hub);
            if (failed > 0)
            {
                throw new InvalidOperationException($"{failed} instances did not complete");
            }

            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"helloCities5: {n} scheduled in {scheduledIn:F2} s, all complete in {sw.Elapsed.TotalSeconds:F2} s"));
            return (n / sw.Elapsed.TotalSeconds, n * 5 / sw.Elapsed.TotalSeconds, sw.Elapsed.TotalSeconds);
        }
        finally
        {
            await DropAsync(cs, hub);
        }
    }

    private static async Task<(double P50, double P95, int Runs)> LatencyAsync(string cs, int runs)
    {
        var hub = "bench_" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            await using var host = await StartAsync(cs, hub);
            var samples = new List<double>(runs);
            for (var i = 0; i < runs + 10; i++)
            {
                await Task.Delay(20); // idle between runs, so dispatchers are asleep when work arrives
                var sw = Stopwatch.StartNew();
                var id = await host.Client.ScheduleNewOrchestrationInstanceAsync("Hello3");
                await host.Client.WaitForInstanceCompletionAsync(id);
                sw.Stop();
                if (i >= 10)
                {
                    samples.Add(sw.Elapsed.TotalMilliseconds); // first 10 are warm-up
                }
            }

            samples.Sort();
            return (samples[samples.Count / 2], samples[(int)(samples.Count * 0.95)], samples.Count);
        }
        finally
        {
            await DropAsync(cs, hub);
        }
    }

    private static async Task<double> FanOutAsync(string cs, int n)
    {
        var hub = "bench_" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            await using var host = await StartAsync(cs, hub);
            var warm = await host.Client.ScheduleNewOrchestrationInstanceAsync("FanOut", 10);
            await host.Client.WaitForInstanceCompletionAsync(warm);
            var sw = Stopwatch.StartNew();
            var id = await host.Client.ScheduleNewOrchestrationInstanceAsync("FanOut", n);
            var done = await host.Client.WaitForInstanceCompletionAsync(id, true);
            sw.Stop();
            if (done.ReadOutputAs<int>() != n)
            {
                throw new InvalidOperationException($"fan-out returned {done.SerializedOutput}");
            }

            return sw.Elapsed.TotalMilliseconds;
        }
        finally
        {
            await DropAsync(cs, hub);
        }
    }

    private static async Task<double> InsertLoopAsync(string cs, int clients, TimeSpan duration)
    {
        await using (var setup = new NpgsqlConnection(cs))
        {
            await setup.OpenAsync();
            await using var create = new NpgsqlCommand("CREATE TABLE IF NOT EXISTS bench_commit (id bigserial PRIMARY KEY, v int NOT NULL)", setup);
            await create.ExecuteNonQueryAsync();
        }

        long total = 0;
        var until = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(async _ =>
        {
            await using var c = new NpgsqlConnection(cs);
            await c.OpenAsync();
            await using var insert = new NpgsqlCommand("INSERT INTO bench_commit (v) VALUES (1)", c);
            await insert.PrepareAsync();
            while (until.Elapsed < duration)
            {
                await insert.ExecuteNonQueryAsync(); // autocommit: one commit per row
                Interlocked.Increment(ref total);
            }
        }));
        return total / until.Elapsed.TotalSeconds;
    }

    private static async Task<long> CountCompletedAsync(string cs, string hub)
    {
        await using var c = new NpgsqlConnection(cs);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand($"SELECT count(*) FROM durableagents_{hub}.instances WHERE status IN ('Completed','Failed','Terminated')", c);
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    private static async Task<long> CountNotCompletedAsync(string cs, string hub)
    {
        await using var c = new NpgsqlConnection(cs);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand($"SELECT count(*) FROM durableagents_{hub}.instances WHERE status <> 'Completed'", c);
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    private static async Task DropAsync(string cs, string hub)
    {
        await using var c = new NpgsqlConnection(cs);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand($"DROP SCHEMA IF EXISTS durableagents_{hub} CASCADE", c);
        await cmd.ExecuteNonQueryAsync();
    }
}
