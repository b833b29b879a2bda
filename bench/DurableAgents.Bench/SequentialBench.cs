using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using DurableAgents.Engine.Testing;

namespace DurableAgents.Bench;

/// <summary>
/// Sequential-step scaling on the embedded SQLite store: one orchestration of N sequential
/// activities. Per-step cost must stay flat as N grows (cached orchestrators, no full replay per
/// step); the no-cache rows show what replay-per-step costs.
/// </summary>
internal static class SequentialBench
{
    public static async Task<int> RunAsync()
    {
        var results = new List<Row>();
        await RunOnceAsync(10, cache: true); // warm-up: JIT, SQLite pages
        foreach (var n in new[] { 100, 1000, 5000 })
        {
            results.Add(await RunOnceAsync(n, cache: true));
        }

        foreach (var n in new[] { 100, 1000, 5000 })
        {
            results.Add(await RunOnceAsync(n, cache: false));
        }

        var cached = results.Where(r => r.Cache).ToDictionary(r => r.Steps);
        var uncached = results.Where(r => !r.Cache).ToDictionary(r => r.Steps);
        var ratio = cached[5000].TotalMs / cached[1000].TotalMs;
        var ratioOff = uncached[5000].TotalMs / uncached[1000].TotalMs;
        var commits = await SqliteCommitsPerSecondAsync();
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            scenario = "sequential-sqlite",
            results,
            ratio5000to1000 = Math.Round(ratio, 2),
            ratio5000to1000SessionsOff = Math.Round(ratioOff, 2),
            sqliteSingleRowCommitsPerSecond = Math.Round(commits),
            perStepInSingleRowCommits = Math.Round(cached[5000].PerStepMs * commits / 1000, 1),
        }));
        Console.WriteLine();
        Console.WriteLine("| steps | session cache | total (ms) | per step (ms) | cache hits | cache misses |");
        Console.WriteLine("|---:|:---|---:|---:|---:|---:|");
        foreach (var r in results)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {r.Steps} | {(r.Cache ? "on" : "off")} | {r.TotalMs:F0} | {r.PerStepMs:F3} | {r.CacheHits} | {r.CacheMisses} |"));
        }

        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"5,000-step time / 1,000-step time = {ratio:F2} with extended sessions (target <= 6; 5 means perfectly linear), {ratioOff:F2} with sessions off"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"single-row commits on the same SQLite file settings: {commits:F0}/s; one step costs {cached[5000].PerStepMs * commits / 1000:F1} of them"));
        return ratio <= 6 ? 0 : 1;
    }

    private static async Task<Row> RunOnceAsync(int steps, bool cache)
    {
        await using var host = await DurableAgentsTestHost.StartAsync(
            b => b
                .AddOrchestratorFunc<int, int>("Sequential", async (ctx, n) =>
                {
                    var sum = 0;
                    for (var i = 0; i < n; i++)
                    {
                        sum += await ctx.CallActivityAsync<int>("Step", i);
                    }

                    return sum;
                })
                .AddActivityFunc<int, int>("Step", (_, i) => i),
            o =>
            {
                o.ExtendedSessionIdleTimeout = cache ? TimeSpan.FromSeconds(30) : TimeSpan.Zero;
                o.MaxPollInterval = TimeSpan.FromMilliseconds(50);
            });
        var sw = Stopwatch.StartNew();
        var id = await host.Client.ScheduleNewOrchestrationInstanceAsync("Sequential", steps);
        var done = await host.Client.WaitForInstanceCompletionAsync(id, true);
        sw.Stop();
        if (done.ReadOutputAs<int>() != steps * (steps - 1) / 2)
        {
            throw new InvalidOperationException($"wrong result for {steps} steps: {done.SerializedOutput} {done.FailureDetails}");
        }

        return new Row(steps, cache, sw.Elapsed.TotalMilliseconds, sw.Elapsed.TotalMilliseconds / steps, host.Worker.CacheHits, host.Worker.CacheMisses);
    }

    /// <summary>The yardstick: single-row INSERT commits per second on a SQLite file with the store's pragmas (WAL, synchronous=NORMAL).</summary>
    private static async Task<double> SqliteCommitsPerSecondAsync()
    {
        var dir = Directory.CreateTempSubdirectory("da-bench-commit").FullName;
        try
        {
            await using var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(dir, "c.db")}");
            await c.OpenAsync();
            await using (var setup = c.CreateCommand())
            {
                setup.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL);";
                await setup.ExecuteNonQueryAsync();
            }

            await using var insert = c.CreateCommand();
            insert.CommandText = "INSERT INTO t (v) VALUES (1)";
            var sw = Stopwatch.StartNew();
            long n = 0;
            while (sw.Elapsed < TimeSpan.FromSeconds(2))
            {
                await insert.ExecuteNonQueryAsync(); // autocommit: one commit per row
                n++;
            }

            return n / sw.Elapsed.TotalSeconds;
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(dir, true);
        }
    }

    private sealed record Row(int Steps, bool Cache, double TotalMs, double PerStepMs, long CacheHits, long CacheMisses);
}
