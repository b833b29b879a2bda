using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Dapper;
using DurableAgents.Tests.Support;
using Npgsql;

namespace DurableAgents.Bench;

/// <summary>
/// Crash economics under a kill storm: two host processes (the real custom-handler binary) on one
/// PostgreSQL run N ContentPipelines (5 model calls each, 1 s per call at the local OpenAI-compatible
/// server) while K SIGKILLs hit them, alternating hosts. Odd kills restart the host at once under its
/// id (it reclaims its leases at start); even kills restart it after 4 s, so the survivor's heartbeat
/// has to release them. Every request is counted at the server. Printed: lost workflows, generations
/// started vs needed, ledger rows vs server generations, interrupted attempts, calls in flight at the
/// kills, kill → first resumed step (survivor take-over), start → first resumed step (restart), and the
/// drain after the last kill. Run once with chat completions and once with background responses.
/// </summary>
internal static partial class StormBench
{
    private const int CallsPerWorkflow = 5;

    public static async Task<int> RunAsync(string postgres, int workflows, int kills, string modes)
    {
        foreach (var background in modes switch { "on" => new[] { true }, "off" => new[] { false }, _ => new[] { false, true } })
        {
            var figures = await RunOnceAsync(postgres, workflows, kills, background);
            Report.Print(background ? "storm, background responses" : "storm, chat completions", figures);
            Console.WriteLine();
        }

        return 0;
    }

    private static async Task<Dictionary<string, object>> RunOnceAsync(string postgres, int workflows, int kills, bool background)
    {
        await using var model = await FakeOpenAiServer.StartAsync();
        model.ChatDelay = TimeSpan.FromSeconds(1);
        model.ResponseDuration = TimeSpan.FromSeconds(1);
        model.Responder = r => r.Body["messages"]!.AsArray().Any(m => (string?)m!["role"] == "system" && ((string?)m["content"])?.StartsWith("You review", StringComparison.Ordinal) == true)
            ? """{"approved":true,"issues":[]}"""
            : "A short, useful paragraph.";
        var hub = "storm" + Guid.NewGuid().ToString("N")[..8];
        var environment = Environment(postgres, hub, model, background);
        Host.ResetCounts();
        var hosts = new[] { await Host.StartAsync("storm-a", environment), await Host.StartAsync("storm-b", environment) };
        await using var db = NpgsqlDataSource.Create(postgres);
        var schema = "durableagents_" + hub;
        var takeovers = new List<double>();
        var restarts = new List<double>();
        var inFlightAtKills = 0;
        var started = Stopwatch.StartNew();
        try
        {
            using var http = new HttpClient { BaseAddress = hosts[1].BaseAddress };
            for (var i = 0; i < workflows; i++)
            {
                using var start = await http.PostAsync($"/api/orchestrators/ContentPipeline/storm-{i:D4}", JsonContent.Create(new { topic = $"topic {i}" }));
                start.EnsureSuccessStatusCode();
            }

            var lastKill = TimeSpan.Zero;
            var pending = new List<Task>();
            for (var k = 0; k < kills; k++)
            {
                await Task.Delay(TimeSpan.FromSeconds(2.5));
                if (await CompletedAsync(db, schema) == workflows)
                {
                    Console.Error.WriteLine($"storm: all done after {k} kills");
                    break;
                }

                await Task.WhenAll(pending); // both hosts up before the next kill
                pending.Clear();
                var index = k % 2;
                var victim = hosts[index];
                var held = await HeldActivitiesAsync(db, schema, victim.Id);
                inFlightAtKills += await db.CreateConnection().ExecuteScalarAsync<int>($"SELECT count(*) FROM {schema}.llm_attempts WHERE host = @host AND outcome = 'in-flight'", new { host = victim.Id });
                await victim.KillAsync();
                var killedAt = Stopwatch.GetTimestamp();
                lastKill = started.Elapsed;
                var immediate = k % 2 == 0;
                pending.Add(Task.Run(async () =>
                {
                    if (!immediate)
                    {
                        var resumed = await FirstResumedAsync(db, schema, held, TimeSpan.FromSeconds(4));
                        if (resumed is not null)
                        {
                            lock (takeovers)
                            {
                                takeovers.Add(Stopwatch.GetElapsedTime(killedAt).TotalSeconds);
                            }
                        }

                        await Task.Delay(TimeSpan.FromSeconds(4) - Stopwatch.GetElapsedTime(killedAt) is { Ticks: > 0 } rest ? rest : TimeSpan.Zero);
                    }

                    var restarted = await Host.StartAsync(victim.Id, environment);
                    var readyAt = Stopwatch.GetTimestamp();
                    hosts[index] = restarted;
                    if (immediate && await FirstResumedAsync(db, schema, held, TimeSpan.FromSeconds(30)) is not null)
                    {
                        lock (restarts)
                        {
                            restarts.Add(Stopwatch.GetElapsedTime(readyAt).TotalSeconds);
                        }
                    }
                }));
            }

            await Task.WhenAll(pending);
            var deadline = Stopwatch.StartNew();
            while (await CompletedAsync(db, schema) < workflows && deadline.Elapsed < TimeSpan.FromMinutes(3))
            {
                await Task.Delay(100);
            }

            var drain = started.Elapsed - lastKill;
            var completed = await CompletedAsync(db, schema);
            await using var c = db.CreateConnection();
            var ledger = await c.QueryAsync<(string Outcome, long Count)>($"SELECT outcome, count(*) FROM {schema}.llm_attempts WHERE outcome NOT IN ('cache-hit', 'budget-refused') GROUP BY outcome");
            var byOutcome = ledger.ToDictionary(x => x.Outcome, x => x.Count);
            var generations = background ? model.Generations : model.ChatRequests.Count;
            var ledgerRows = byOutcome.Values.Sum();
            return new Dictionary<string, object>
            {
                ["mode"] = background ? "background responses" : "chat completions",
                ["workflows"] = workflows,
                ["kills"] = kills,
                ["lostWorkflows"] = workflows - completed,
                ["generationsNeeded"] = workflows * CallsPerWorkflow,
                ["generationsStarted"] = generations,
                ["extraGenerations"] = generations - (workflows * CallsPerWorkflow),
                ["modelCallsInFlightAtTheKills"] = inFlightAtKills,
                ["ledgerAttempts"] = ledgerRows,
                ["ledgerVsServerMismatch"] = Math.Abs(ledgerRows - generations),
                ["interruptedAttempts"] = byOutcome.GetValueOrDefault("interrupted"),
                ["stillInFlightAtEnd"] = byOutcome.GetValueOrDefault("in-flight"),
                ["pollsAndResumes"] = model.ResponsePolls.Count,
                ["liveHostsPresumedDead"] = Host.PresumedDead,
                ["takeoverKillToFirstResumedStepSeconds"] = Summary(takeovers),
                ["restartStartToFirstResumedStepSeconds"] = Summary(restarts),
                ["drainAfterLastKillSeconds"] = Math.Round(drain.TotalSeconds, 1),
                ["drainTargetRatio"] = Math.Round(drain.TotalSeconds / 10, 2),
                ["wallSeconds"] = Math.Round(started.Elapsed.TotalSeconds, 1),
            };
        }
        finally
        {
            foreach (var h in hosts)
            {
                await h.KillAsync();
            }

            if (System.Environment.GetEnvironmentVariable("DURABLEAGENTS_STORM_KEEP") is null)
            {
                await using var drop = db.CreateConnection();
                await drop.ExecuteAsync($"DROP SCHEMA IF EXISTS {schema} CASCADE");
            }
            else
            {
                Console.Error.WriteLine($"storm: kept schema {schema}");
            }
        }
    }

    private static string Summary(List<double> values) => values.Count == 0
        ? "n/a"
        : string.Create(CultureInfo.InvariantCulture, $"n={values.Count} median {Median(values):F2} max {values.Max():F2}");

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static async Task<int> CompletedAsync(NpgsqlDataSource db, string schema)
    {
        await using var c = db.CreateConnection();
        return await c.ExecuteScalarAsync<int>($"SELECT count(*) FROM {schema}.instances WHERE status = 'Completed' AND name = 'ContentPipeline'");
    }

    private static async Task<List<(long Id, string Owner)>> HeldActivitiesAsync(NpgsqlDataSource db, string schema, string host)
    {
        await using var c = db.CreateConnection();
        return (await c.QueryAsync<(long, string)>($"SELECT id, lock_owner FROM {schema}.activities WHERE starts_with(lock_owner, @prefix)", new { prefix = host + "/" })).ToList();
    }

    /// <summary>Waits until one of the activities the victim held is leased by someone else or done; null on timeout.</summary>
    private static async Task<long?> FirstResumedAsync(NpgsqlDataSource db, string schema, List<(long Id, string Owner)> held, TimeSpan timeout)
    {
        if (held.Count == 0)
        {
            return null;
        }

        var ids = held.Select(h => h.Id).ToArray();
        var owners = held.ToDictionary(h => h.Id, h => h.Owner);
        var until = Stopwatch.StartNew();
        while (until.Elapsed < timeout)
        {
            await using var c = db.CreateConnection();
            var now = (await c.QueryAsync<(long Id, string? Owner)>($"SELECT id, lock_owner FROM {schema}.activities WHERE id = ANY(@ids)", new { ids })).ToDictionary(r => r.Id, r => r.Owner);
            foreach (var id in ids)
            {
                if (!now.TryGetValue(id, out var owner) || (owner is not null && owner != owners[id]))
                {
                    return id; // completed, or leased again
                }
            }

            await Task.Delay(20);
        }

        return null;
    }

    private static Dictionary<string, string> Environment(string postgres, string hub, FakeOpenAiServer model, bool background)
    {
        var env = new Dictionary<string, string>
        {
            ["DurableAgents__Store"] = "Postgres",
            ["DurableAgents__Postgres__ConnectionString"] = postgres,
            ["DurableAgents__Postgres__TaskHub"] = hub,
            ["DurableAgents__Llm__BackgroundPollInterval"] = "00:00:00.100",
            ["DurableAgents__Llm__Resilience__AttemptTimeout"] = "00:01:00",
            ["DurableAgents__Llm__Cache__Enabled"] = "false", // every call is a generation: needed = workflows × 5
        };
        foreach (var profile in new[] { "fast", "strong" })
        {
            env[$"DurableAgents__Llm__Profiles__{profile}__Providers__0__Kind"] = "OpenAICompatible";
            env[$"DurableAgents__Llm__Profiles__{profile}__Providers__0__Endpoint"] = model.OpenAiEndpoint.ToString();
            env[$"DurableAgents__Llm__Profiles__{profile}__Providers__0__Model"] = "gpt-test";
            env[$"DurableAgents__Llm__Profiles__{profile}__Providers__0__ApiKey"] = "sk-bench";
            env[$"DurableAgents__Llm__Profiles__{profile}__Providers__0__BackgroundResponses"] = background ? "true" : "false";
        }

        return env;
    }

    /// <summary>One host process (functions/, Release) under a fixed WorkerId.</summary>
    internal sealed partial class Host
    {
        private readonly Process _process;

        private Host(string id, Process process, Uri baseAddress)
        {
            Id = id;
            _process = process;
            BaseAddress = baseAddress;
        }

        public string Id { get; }

        public Uri BaseAddress { get; }

        public static async Task<Host> StartAsync(string id, IReadOnlyDictionary<string, string> environment)
        {
            var env = new Dictionary<string, string>(environment) { ["DurableAgents__WorkerId"] = id };
            var (process, ready) = await HostBinary.StartAsync(env, Listening(), CountPresumedDeadAsync);
            return new Host(id, process, new Uri(ready.Groups[1].Value));
        }

        /// <summary>Live hosts that another host presumed dead (event 1043): stalls longer than HostDeadAfter.</summary>
        public static int PresumedDead => Volatile.Read(ref _presumedDead);

        private static int _presumedDead;

        public static void ResetCounts() => Interlocked.Exchange(ref _presumedDead, 0);

        private static async Task CountPresumedDeadAsync(StreamReader output)
        {
            while (await output.ReadLineAsync() is { } line)
            {
                if (line.Contains("was presumed dead by another host", StringComparison.Ordinal))
                {
                    Interlocked.Increment(ref _presumedDead);
                }
            }
        }

        public async Task KillAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }

        [GeneratedRegex(@"Now listening on: (http://127\.0\.0\.1:\d+)")]
        private static partial Regex Listening();
    }
}
