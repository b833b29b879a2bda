using System.Collections.Concurrent;
using Microsoft.DurableTask;

namespace DurableAgents.Grpc.Worker;

/// <summary>The conformance workflows: each exercises one part of the Durable Task protocol.</summary>
public static class Conformance
{
    /// <summary>Attempts per (instance, activity key) in this process, for retries and rewinds.</summary>
    public static ConcurrentDictionary<string, int> Attempts { get; } = new(StringComparer.Ordinal);

    /// <summary>Where <c>Slow</c> records each execution (one empty file per run); null: not recorded.</summary>
    public static string? ExecutionsDirectory { get; set; }

    /// <summary>Registers every conformance orchestrator and activity.</summary>
    public static DurableTaskRegistry AddConformance(this DurableTaskRegistry r)
    {
        ArgumentNullException.ThrowIfNull(r);
        return r
            .AddActivityFunc<string, string>("Hello", (_, city) => $"Hello, {city}!")
            .AddActivityFunc<int, int>("Square", (_, x) => x * x)
            .AddActivityFunc<string, string>("Flaky", (ctx, key) =>
            {
                var attempt = Attempts.AddOrUpdate(key, 1, (_, n) => n + 1);
                return attempt < 3 ? throw new InvalidOperationException($"attempt {attempt} of {key} fails") : $"ok after {attempt}";
            })
            .AddActivityFunc<string, string>("FailOnce", (ctx, key) =>
                Attempts.AddOrUpdate(key, 1, (_, n) => n + 1) == 1 ? throw new InvalidOperationException($"first run of {key} fails") : "fixed")
            .AddActivityFunc<SlowInput, int>("Slow", async (ctx, input) =>
            {
                if (ExecutionsDirectory is { } dir)
                {
                    var file = Path.Combine(dir, $"{ctx.InstanceId}.{input.Step}.{Environment.ProcessId}.{Guid.NewGuid():N}");
                    await File.WriteAllTextAsync(file, string.Empty).ConfigureAwait(false);
                }

                await Task.Delay(input.Milliseconds).ConfigureAwait(false);
                return input.Step;
            })
            .AddOrchestratorFunc<string[], string>("Sequence", async (ctx, cities) =>
            {
                var greetings = new List<string>();
                foreach (var city in cities)
                {
                    greetings.Add(await ctx.CallActivityAsync<string>("Hello", city));
                }

                return string.Join(" ", greetings);
            })
            .AddOrchestratorFunc<int, long>("FanOut", async (ctx, n) =>
            {
                var squares = await Task.WhenAll(Enumerable.Range(1, n).Select(i => ctx.CallActivityAsync<int>("Square", i)));
                return squares.Sum(x => (long)x);
            })
            .AddOrchestratorFunc<bool, string>("Child", (ctx, fail) =>
                fail ? throw new InvalidOperationException("the child was told to fail") : Task.FromResult($"child {ctx.InstanceId} done"))
            .AddOrchestratorFunc<bool, string>("Parent", async (ctx, childFails) =>
            {
                try
                {
                    return await ctx.CallSubOrchestratorAsync<string>("Child", childFails, new SubOrchestrationOptions { InstanceId = ctx.InstanceId + "-child" });
                }
                catch (TaskFailedException ex)
                {
                    return $"caught: {ex.FailureDetails.ErrorType}: {ex.FailureDetails.ErrorMessage}";
                }
            })
            .AddOrchestratorFunc<bool, string>("ParentUncaught", (ctx, childFails) =>
                ctx.CallSubOrchestratorAsync<string>("Child", childFails, new SubOrchestrationOptions { InstanceId = ctx.InstanceId + "-child" }))
            .AddOrchestratorFunc<int, string>("Timer", async (ctx, ms) =>
            {
                var start = ctx.CurrentUtcDateTime;
                await ctx.CreateTimer(TimeSpan.FromMilliseconds(ms), CancellationToken.None);
                return $"fired after {(ctx.CurrentUtcDateTime - start).TotalMilliseconds:0} ms";
            })
            .AddOrchestratorFunc<string, string>("WaitEvent", async (ctx, _) =>
            {
                ctx.SetCustomStatus("waiting");
                var payload = await ctx.WaitForExternalEvent<string>("go");
                return $"got {payload}";
            })
            .AddOrchestratorFunc<int, int>("Counter", (ctx, n) =>
            {
                if (n < 5)
                {
                    ctx.ContinueAsNew(n + 1);
                    return Task.FromResult(-1);
                }

                return Task.FromResult(n);
            })
            .AddOrchestratorFunc<string, string>("Retry", (ctx, _) =>
                ctx.CallActivityAsync<string>("Flaky", ctx.InstanceId, new TaskOptions(new TaskRetryOptions(new RetryPolicy(3, TimeSpan.FromMilliseconds(10))))))
            .AddOrchestratorFunc<string, string>("Rewindable", async (ctx, _) =>
            {
                var first = await ctx.CallActivityAsync<string>("Hello", "before");
                var second = await ctx.CallActivityAsync<string>("FailOnce", ctx.InstanceId);
                return $"{first} {second}";
            })
            .AddOrchestratorFunc<int, int>("Long", async (ctx, steps) =>
            {
                var total = 0;
                for (var i = 0; i < steps; i++)
                {
                    total += await ctx.CallActivityAsync<int>("Square", i);
                }

                return total;
            })
            .AddOrchestratorFunc<string, string>("Mixed", async (ctx, name) =>
            {
                // SayHello is the host's activity (registered in-process there, not here).
                var host = await ctx.CallActivityAsync<string>("SayHello", name);
                var mine = await ctx.CallActivityAsync<string>("Hello", name);
                return $"{host} / {mine}";
            })
            .AddOrchestratorFunc<SlowRun, int>("SlowSequence", async (ctx, run) =>
            {
                var total = 0;
                for (var i = 0; i < run.Steps; i++)
                {
                    total += await ctx.CallActivityAsync<int>("Slow", new SlowInput(i, run.Milliseconds));
                }

                return total;
            });
    }
}

/// <summary>Input of <c>Slow</c>.</summary>
public sealed record SlowInput(int Step, int Milliseconds);

/// <summary>Input of <c>SlowSequence</c>.</summary>
public sealed record SlowRun(int Steps, int Milliseconds);
