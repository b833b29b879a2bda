using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using DurableAgents.Tests.Support;

namespace DurableAgents.Bench;

/// <summary>
/// Model rate limits under a burst: two host processes (the custom-handler binary) on one PostgreSQL start
/// N ContentPipelines at once (5 model calls each, 1 s per call, batch lane) against the local server,
/// whose deployment allows R requests per minute (429 with Retry-After beyond), plus an interactive
/// AgentChat every 2 s. Printed, with the limits on and off: 429s, requests per minute achieved while
/// the batch saturates the quota (ratio to the quota), the interactive calls' wait p50/p95, workflows
/// completed and failed.
/// </summary>
internal static class RateLimitBench
{
    public static async Task<int> RunAsync(string postgres, int workflows, int rpm, int tpm, string modes, int maxOutput)
    {
        foreach (var limited in modes switch { "on" => new[] { true }, "off" => new[] { false }, _ => new[] { true, false } })
        {
            Report.Print(limited ? "rate limits on" : "rate limits off", await RunOnceAsync(postgres, workflows, rpm, tpm, limited, maxOutput));
            Console.WriteLine();
        }

        return 0;
    }

    private static async Task<Dictionary<string, object>> RunOnceAsync(string postgres, int workflows, int rpm, int tpm, bool limited, int maxOutput)
    {
        await using var model = await FakeOpenAiServer.StartAsync();
        model.ChatDelay = TimeSpan.FromSeconds(1);
        model.QuotaRequestsPerMinute = rpm;
        model.QuotaTokensPerMinute = tpm;
        model.CompletionTokens = 120; // with the prompts, about 170 tokens a call: 20,000 TPM and 120 RPM bind together
        model.Responder = r => r.Body["messages"]!.AsArray().Any(m => (string?)m!["role"] == "system" && ((string?)m["content"])?.StartsWith("You review", StringComparison.Ordinal) == true)
            ? """{"approved":true,"issues":[]}"""
            : "A short, useful paragraph.";
        var hub = "rl" + Guid.NewGuid().ToString("N")[..8];
        var env = new Dictionary<string, string>
        {
            ["DurableAgents__Store"] = "Postgres",
            ["DurableAgents__Postgres__ConnectionString"] = postgres,
            ["DurableAgents__Postgres__TaskHub"] = hub,
            ["DurableAgents__Llm__Cache__Enabled"] = "false",
            ["DurableAgents__Llm__Priorities__ContentPipeline"] = "Batch",

            // The output limit each call reserves (with its input) until it settles to the ~120 tokens it uses.
            ["DurableAgents__Llm__DefaultMaxOutputTokens"] = maxOutput.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        foreach (var profile in new[] { "fast", "strong" })
        {
            var at = $"DurableAgents__Llm__Profiles__{profile}__Providers__0__";
            env[at + "Kind"] = "OpenAICompatible";
            env[at + "Endpoint"] = model.OpenAiEndpoint.ToString();
            env[at + "Model"] = "gpt-test";
            env[at + "ApiKey"] = "sk-bench";
            if (limited)
            {
                env[at + "RequestsPerMinute"] = rpm.ToString(System.Globalization.CultureInfo.InvariantCulture);
                env[at + "TokensPerMinute"] = tpm.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        var hosts = new[] { await StormBench.Host.StartAsync("rl-a", env), await StormBench.Host.StartAsync("rl-b", env) };
        try
        {
            using var a = new HttpClient { BaseAddress = hosts[0].BaseAddress };
            using var b = new HttpClient { BaseAddress = hosts[1].BaseAddress };
            var started = Stopwatch.StartNew();
            for (var i = 0; i < workflows; i++)
            {
                using var start = await (i % 2 == 0 ? a : b).PostAsync($"/api/orchestrators/ContentPipeline/batch-{i:D4}", JsonContent.Create(new { topic = $"topic {i}" }));
                start.EnsureSuccessStatusCode();
            }

            // An interactive chat every 2 s while the batch runs (at most twice the time the quota needs for it, plus 3 minutes).
            var chats = new List<(string Id, TimeSpan At)>();
            var batchDone = false;
            var longest = TimeSpan.FromMinutes((workflows * 5.0 / rpm * 2) + 3);
            var saturatedUntil = TimeSpan.Zero;
            while (!batchDone && started.Elapsed < longest)
            {
                var id = $"chat-{chats.Count:D3}";
                using var start = await a.PostAsync($"/api/orchestrators/AgentChat/{id}", JsonContent.Create(new { message = "Quick question?", agent = "writer" }));
                start.EnsureSuccessStatusCode();
                chats.Add((id, started.Elapsed));
                await Task.Delay(TimeSpan.FromSeconds(2));
                var progress = await FinishedAsync(a, "batch-", workflows);
                batchDone = progress.Done == workflows;
                if (workflows - progress.Done >= 10)
                {
                    saturatedUntil = started.Elapsed; // the batch still has enough work to saturate the quota
                }
            }

            var deadline = Stopwatch.StartNew();
            (int Done, int Failed) batch;
            while ((batch = await FinishedAsync(a, "batch-", workflows)).Done < workflows && deadline.Elapsed < TimeSpan.FromMinutes(3))
            {
                await Task.Delay(500);
            }

            var waits = new List<double>();
            var chatFailed = 0;
            foreach (var (id, at) in chats)
            {
                using var doc = JsonDocument.Parse(await a.GetStringAsync($"/api/instances/{id}"));
                var status = doc.RootElement.GetProperty("runtimeStatus").GetString();
                if (status != "Completed")
                {
                    chatFailed++;
                    continue;
                }

                var created = doc.RootElement.GetProperty("createdTime").GetDateTimeOffset();
                var updated = doc.RootElement.GetProperty("lastUpdatedTime").GetDateTimeOffset();
                waits.Add(Math.Max(0, (updated - created).TotalSeconds - 1.0)); // less the 1 s the model takes
            }

            var requests = model.Requests.Where(r => r.Path.EndsWith("/chat/completions", StringComparison.Ordinal)).OrderBy(r => r.At).ToList();
            var answered = requests.Count - model.QuotaRefusals;
            var span = requests.Count > 1 ? (requests[^1].At - requests[0].At).TotalMinutes : 1;
            var perMinute = answered / Math.Max(span, 1.0 / 60);
            var tokensPerMinute = model.TokensAnswered / Math.Max(span, 1.0 / 60);

            // While the batch saturates the quota: from the first request until fewer than 10 pipelines were left.
            var saturatedEnd = requests.Count > 0 ? requests[0].At + saturatedUntil : DateTimeOffset.MinValue;
            var saturatedMinutes = Math.Max(1.0 / 60, (saturatedEnd - (requests.Count > 0 ? requests[0].At : saturatedEnd)).TotalMinutes);
            var saturatedAnswered = requests.Count(r => r.At <= saturatedEnd) - model.QuotaRefusals;
            waits.Sort();
            var (limiterWaited, limiterP95, interactiveCalls) = await LimiterWaitsAsync(postgres, hub);
            return new Dictionary<string, object>
            {
                ["limits"] = limited ? $"on ({rpm} RPM, {tpm} TPM)" : "off",
                ["maxOutputTokens"] = maxOutput,
                ["batchWorkflows"] = workflows,
                ["batchCompleted"] = batch.Done - batch.Failed,
                ["batchFailed"] = batch.Failed,
                ["interactiveChats"] = chats.Count,
                ["interactiveFailedOrUnfinished"] = chatFailed,
                ["requestsSent"] = requests.Count,
                ["refused429"] = model.QuotaRefusals,
                ["refused429Share"] = Math.Round(requests.Count == 0 ? 0 : (double)model.QuotaRefusals / requests.Count, 3),
                ["answeredPerMinute"] = Math.Round(perMinute, 1),
                ["answeredPerMinuteToQuota"] = Math.Round(perMinute / rpm, 2),
                ["tokensPerMinute"] = Math.Round(tokensPerMinute),
                ["tokensPerMinuteToQuota"] = Math.Round(tokensPerMinute / tpm, 2),
                ["saturatedMinutes"] = Math.Round(saturatedMinutes, 1),
                ["saturatedRequestsPerMinuteToQuota"] = Math.Round(saturatedAnswered / saturatedMinutes / rpm, 2),
                ["interactiveWaitP50Seconds"] = waits.Count == 0 ? "n/a" : Math.Round(waits[waits.Count / 2], 2),
                ["interactiveWaitP95Seconds"] = waits.Count == 0 ? "n/a" : Math.Round(waits[(int)Math.Min(waits.Count - 1, Math.Ceiling(waits.Count * 0.95) - 1)], 2),
                ["interactiveWaitTargetRatio"] = waits.Count == 0 ? "n/a" : Math.Round(waits[(int)Math.Min(waits.Count - 1, Math.Ceiling(waits.Count * 0.95) - 1)] / 5, 2),
                ["interactiveModelCalls"] = interactiveCalls,
                ["interactiveCallsThatWaitedForCapacity"] = limiterWaited,
                ["interactiveCapacityWaitP95Seconds"] = Math.Round(limiterP95, 2),
                ["wallSeconds"] = Math.Round(started.Elapsed.TotalSeconds, 1),
            };
        }
        finally
        {
            foreach (var h in hosts)
            {
                await h.KillAsync();
            }

            await using var db = Npgsql.NpgsqlDataSource.Create(postgres);
            await using var drop = db.CreateCommand($"DROP SCHEMA IF EXISTS durableagents_{hub} CASCADE");
            await drop.ExecuteNonQueryAsync();
        }
    }

    /// <summary>
    /// The interactive model calls' own wait for capacity (from the first refusal to the grant, as the
    /// limiter records who waited; the calls that did not wait count as 0), apart from the chats' end-to-end
    /// time, which also holds the hosts' scheduling of the workflow's other steps.
    /// </summary>
    private static async Task<(int Waited, double P95Seconds, long Calls)> LimiterWaitsAsync(string postgres, string hub)
    {
        await using var db = Npgsql.NpgsqlDataSource.Create(postgres);
        await using var calls = db.CreateCommand($"SELECT count(*) FROM durableagents_{hub}.llm_attempts WHERE workflow = 'AgentChat' AND outcome = 'ok'");
        var total = (long)(await calls.ExecuteScalarAsync())!;
        await using var query = db.CreateCommand($"SELECT waited_ms FROM durableagents_{hub}.llm_limit_waits WHERE lane = 'interactive' ORDER BY waited_ms");
        var waited = new List<double>();
        await using (var reader = await query.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                waited.Add(reader.GetInt64(0) / 1000.0);
            }
        }

        var all = Enumerable.Repeat(0.0, (int)Math.Max(0, total - waited.Count)).Concat(waited).ToList();
        var p95 = all.Count == 0 ? 0 : all[(int)Math.Min(all.Count - 1, Math.Ceiling(all.Count * 0.95) - 1)];
        return (waited.Count, p95, total);
    }

    /// <summary>Finished instances whose id starts with <paramref name="prefix"/>: how many, and how many of them failed.</summary>
    private static async Task<(int Done, int Failed)> FinishedAsync(HttpClient api, string prefix, int expected)
    {
        var done = 0;
        var failed = 0;
        for (var i = 0; i < expected; i++)
        {
            using var doc = JsonDocument.Parse(await api.GetStringAsync($"/api/instances/{prefix}{i:D4}"));
            var status = doc.RootElement.GetProperty("runtimeStatus").GetString();
            if (status is "Completed" or "Failed" or "Terminated")
            {
                done++;
                failed += status == "Completed" ? 0 : 1;
            }
        }

        return (done, failed);
    }
}
