using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using DurableAgents.Activities.Contracts.Agents;
using DurableAgents.Activities.Llm;
using DurableAgents.Engine.Hosting;
using DurableAgents.Engine.Storage;
using Microsoft.DurableTask.Client;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableAgents.Activities.Live;

/// <summary>
/// Puts the run's lifecycle on the instance's live stream from each committed episode: <c>RUN_STARTED</c>;
/// the custom status as <c>STATE_SNAPSHOT</c> (first time on this host) or <c>STATE_DELTA</c>; steer and interrupt
/// events as they arrive; and <c>RUN_FINISHED</c> (with the run's model usage) or <c>RUN_ERROR</c>.
/// </summary>
public sealed class RunLifecycleEvents(LiveEvents live, IModelLedger ledger) : IEpisodeObserver
{
    // The custom status last streamed per instance on this host; a host that has none sends a snapshot.
    private readonly ConcurrentDictionary<string, string?> _states = new(StringComparer.Ordinal);
    private const int MaxTracked = 10_000;

    /// <inheritdoc />
    public async Task OnCommittedAsync(OrchestrationWorkItem item, OrchestrationCommit commit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(item);
        ArgumentNullException.ThrowIfNull(commit);
        var id = item.InstanceId;
        foreach (var e in commit.NewEvents)
        {
            var at = e.Timestamp?.ToDateTimeOffset() ?? live.Now;
            switch (e.EventTypeCase)
            {
                case P.HistoryEvent.EventTypeOneofCase.ExecutionStarted:
                    _states.TryRemove(id, out _);
                    await live.EmitAsync(id, AgUi.RunStarted(id, item.ExecutionId, at), cancellationToken).ConfigureAwait(false);
                    break;
                case P.HistoryEvent.EventTypeOneofCase.EventRaised when e.EventRaised.Name is AgentEvents.Steer or AgentEvents.Interrupt:
                    var name = e.EventRaised.Name == AgentEvents.Steer ? AgUi.Steered : AgUi.Interrupted;
                    await live.EmitAsync(id, AgUi.Custom(name, Parse(e.EventRaised.Input), at), cancellationToken).ConfigureAwait(false);
                    break;
            }
        }

        if (commit.Instance is not { } after)
        {
            return;
        }

        if (!after.Status.IsTerminal() || after.CustomStatus is not null)
        {
            if (!_states.TryGetValue(id, out var before))
            {
                if (after.CustomStatus is not null)
                {
                    await live.EmitAsync(id, AgUi.StateSnapshot(Parse(after.CustomStatus), live.Now), cancellationToken).ConfigureAwait(false);
                }
            }
            else if (before != after.CustomStatus && AgUi.Diff(Parse(before), Parse(after.CustomStatus)) is { } delta)
            {
                await live.EmitAsync(id, AgUi.StateDelta(delta, live.Now), cancellationToken).ConfigureAwait(false);
            }

            if (_states.Count > MaxTracked)
            {
                _states.Clear(); // the next change of each sends a snapshot again
            }

            _states[id] = after.CustomStatus;
        }

        if (!after.Status.IsTerminal())
        {
            return;
        }

        _states.TryRemove(id, out _);
        if (after.Status == OrchestrationRuntimeStatus.Completed)
        {
            var totals = await ledger.GetInstanceTotalsAsync(id, cancellationToken).ConfigureAwait(false);
            var usage = new JsonArray(new JsonObject
            {
                ["inputTokens"] = totals.InputTokens,
                ["outputTokens"] = totals.OutputTokens,
                ["totalTokens"] = totals.InputTokens + totals.OutputTokens,
            });
            var result = Parse(after.Output);
            var stop = result is JsonObject o ? o.FirstOrDefault(p => string.Equals(p.Key, "stopReason", StringComparison.OrdinalIgnoreCase)).Value : null;
            var outcome = stop is JsonValue v && v.TryGetValue<string>(out var reason) && reason == AgentStopReasons.Interrupted ? "cancelled" : "success";
            await live.EmitAsync(id, AgUi.RunFinished(id, item.ExecutionId, result, usage, live.Now, outcome), cancellationToken).ConfigureAwait(false);
        }
        else if (after.Status == OrchestrationRuntimeStatus.Terminated)
        {
            await live.EmitAsync(id, AgUi.RunError("The instance was terminated" + (Parse(after.Output) is JsonValue why ? ": " + why : "."), "terminated", live.Now), cancellationToken).ConfigureAwait(false);
        }
        else
        {
            var failure = after.Failure;
            await live.EmitAsync(id, AgUi.RunError(failure?.ErrorMessage ?? "The instance failed.", failure?.ErrorType ?? "failed", live.Now), cancellationToken).ConfigureAwait(false);
        }
    }

    private static JsonNode? Parse(string? json)
    {
        if (string.IsNullOrEmpty(json))
        {
            return null;
        }

        try
        {
            return JsonNode.Parse(json);
        }
        catch (System.Text.Json.JsonException)
        {
            return JsonValue.Create(json);
        }
    }
}
