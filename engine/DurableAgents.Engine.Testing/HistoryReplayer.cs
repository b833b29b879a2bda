using System.Text;
using System.Text.Json;
using DurableAgents.Engine.History;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Worker;
using Microsoft.DurableTask.Worker.Grpc;
using Microsoft.DurableTask.Worker.Shims;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableAgents.Engine.Testing;

/// <summary>
/// Replays a recorded history against the current orchestrator code on the SDK's own runner, as a
/// worker would after a deploy. Check recorded histories in and replay them in tests: a code change
/// that would break in-flight instances fails the build's tests, not production.
/// </summary>
public static class HistoryReplayer
{
    /// <summary>The error type of a replay whose code asks for different work than the history recorded.</summary>
    public const string Mismatch = "DurableAgents.ReplayMismatch";

    private static readonly IServiceProvider Services = new ServiceCollection()
        .AddSingleton(new DurableTaskShimFactory(new DurableTaskWorkerOptions { DataConverter = DataConverter.Sdk }, NullLoggerFactory.Instance))
        .BuildServiceProvider();

    /// <summary>Reads a history saved by <see cref="Save"/>: a JSON array of protocol events.</summary>
    public static IReadOnlyList<P.HistoryEvent> Load(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.EnumerateArray().Select(e => HistoryJson.Deserialize(e.GetRawText())).ToList();
    }

    /// <summary>Writes a history as a JSON array of protocol events, one per line, for checking in.</summary>
    public static string Save(IReadOnlyList<P.HistoryEvent> history)
    {
        ArgumentNullException.ThrowIfNull(history);
        var text = new StringBuilder("[\n");
        for (var i = 0; i < history.Count; i++)
        {
            text.Append("  ").Append(HistoryJson.Serialize(history[i])).Append(i + 1 < history.Count ? ",\n" : "\n");
        }

        return text.Append(']').ToString();
    }

    /// <summary>
    /// Replays <paramref name="history"/> one episode at a time (each episode's past events, then its
    /// new events) and checks that the code asks for exactly the work the history recorded after
    /// each episode. Returns null when it does, else what differs: the SDK's non-determinism failure,
    /// or <see cref="Mismatch"/> naming the expected and the actual step.
    /// </summary>
    public static TaskFailureDetails? Replay(ITaskOrchestrator orchestrator, IReadOnlyList<P.HistoryEvent> history, string instanceId = "replay")
    {
        ArgumentNullException.ThrowIfNull(orchestrator);
        ArgumentNullException.ThrowIfNull(history);
        var starts = history.Select((e, i) => (e, i)).Where(x => x.e.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.OrchestratorStarted).Select(x => x.i).ToList();
        for (var episode = 0; episode < starts.Count; episode++)
        {
            var begin = starts[episode];
            var end = episode + 1 < starts.Count ? starts[episode + 1] : history.Count;
            var inputs = history.Skip(begin).Take(end - begin).Where(IsInput).ToList();
            var expected = history.Skip(begin).Take(end - begin).Where(IsOutput).ToList();

            var request = new P.OrchestratorRequest { InstanceId = instanceId, ExecutionId = "replay" };
            request.PastEvents.AddRange(history.Take(begin));
            request.NewEvents.AddRange(inputs);
            var encoded = GrpcOrchestrationRunner.LoadAndRun(Convert.ToBase64String(request.ToByteArray()), orchestrator, Services);
            var response = P.OrchestratorResponse.Parser.ParseFrom(Convert.FromBase64String(encoded));

            var actual = response.Actions.ToList();
            var failed = actual.FirstOrDefault(a => a.CompleteOrchestration?.OrchestrationStatus == P.OrchestrationStatus.Failed
                && expected.All(x => x.ExecutionCompleted?.OrchestrationStatus != P.OrchestrationStatus.Failed));
            if (failed is not null)
            {
                return failed.CompleteOrchestration.FailureDetails.ToSdk()
                    ?? new TaskFailureDetails(Mismatch, $"Episode {episode + 1}: the orchestration failed on replay.", null, null, null);
            }

            for (var i = 0; i < Math.Max(expected.Count, actual.Count); i++)
            {
                var want = i < expected.Count ? Describe(expected[i]) : "nothing";
                var got = i < actual.Count ? Describe(actual[i]) : "nothing";
                if (want != got)
                {
                    return new TaskFailureDetails(Mismatch, $"Episode {episode + 1}, step {i + 1}: the history recorded {want}, the code now asks for {got}.", null, null, null);
                }
            }
        }

        return null;
    }

    private static bool IsInput(P.HistoryEvent e) => e.EventTypeCase is
        P.HistoryEvent.EventTypeOneofCase.OrchestratorStarted or
        P.HistoryEvent.EventTypeOneofCase.ExecutionStarted or
        P.HistoryEvent.EventTypeOneofCase.TaskCompleted or
        P.HistoryEvent.EventTypeOneofCase.TaskFailed or
        P.HistoryEvent.EventTypeOneofCase.TimerFired or
        P.HistoryEvent.EventTypeOneofCase.EventRaised or
        P.HistoryEvent.EventTypeOneofCase.SubOrchestrationInstanceCompleted or
        P.HistoryEvent.EventTypeOneofCase.SubOrchestrationInstanceFailed or
        P.HistoryEvent.EventTypeOneofCase.ExecutionSuspended or
        P.HistoryEvent.EventTypeOneofCase.ExecutionResumed;

    private static bool IsOutput(P.HistoryEvent e) => e.EventTypeCase is
        P.HistoryEvent.EventTypeOneofCase.TaskScheduled or
        P.HistoryEvent.EventTypeOneofCase.TimerCreated or
        P.HistoryEvent.EventTypeOneofCase.SubOrchestrationInstanceCreated or
        P.HistoryEvent.EventTypeOneofCase.EventSent or
        P.HistoryEvent.EventTypeOneofCase.ExecutionCompleted;

    private static string Describe(P.HistoryEvent e) => e.EventTypeCase switch
    {
        P.HistoryEvent.EventTypeOneofCase.TaskScheduled => $"activity '{e.TaskScheduled.Name}' (#{e.EventId})",
        P.HistoryEvent.EventTypeOneofCase.TimerCreated => $"a timer (#{e.EventId})",
        P.HistoryEvent.EventTypeOneofCase.SubOrchestrationInstanceCreated => $"sub-orchestration '{e.SubOrchestrationInstanceCreated.Name}' (#{e.EventId})",
        P.HistoryEvent.EventTypeOneofCase.EventSent => $"event '{e.EventSent.Name}' to '{e.EventSent.InstanceId}' (#{e.EventId})",
        _ => $"completion ({e.ExecutionCompleted.OrchestrationStatus})",
    };

    private static string Describe(P.OrchestratorAction a) => a.OrchestratorActionTypeCase switch
    {
        P.OrchestratorAction.OrchestratorActionTypeOneofCase.ScheduleTask => $"activity '{a.ScheduleTask.Name}' (#{a.Id})",
        P.OrchestratorAction.OrchestratorActionTypeOneofCase.CreateTimer => $"a timer (#{a.Id})",
        P.OrchestratorAction.OrchestratorActionTypeOneofCase.CreateSubOrchestration => $"sub-orchestration '{a.CreateSubOrchestration.Name}' (#{a.Id})",
        P.OrchestratorAction.OrchestratorActionTypeOneofCase.SendEvent => $"event '{a.SendEvent.Name}' to '{a.SendEvent.Instance.InstanceId}' (#{a.Id})",
        P.OrchestratorAction.OrchestratorActionTypeOneofCase.CompleteOrchestration => $"completion ({a.CompleteOrchestration.OrchestrationStatus})",
        _ => a.OrchestratorActionTypeCase.ToString(),
    };
}
