using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using DurableAgents.Activities.Contracts.Agents;
using DurableAgents.Activities.Contracts.Llm;
using Microsoft.DurableTask;

namespace DurableAgents.Orchestrations;

/// <summary>How the next speaker is chosen.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<SpeakerSelection>))]
public enum SpeakerSelection
{
    /// <summary>In order.</summary>
    RoundRobin,

    /// <summary>The chat manager (a model call) picks who speaks next.</summary>
    Model,
}

/// <summary>Input of <see cref="GroupChat"/>.</summary>
/// <param name="Topic">What the group discusses.</param>
/// <param name="Participants">Agent profiles; the default is strategist, skeptic, marketer.</param>
/// <param name="Selection">Round-robin or model-selected speakers.</param>
/// <param name="MaxMessages">Messages at most.</param>
/// <param name="TerminationWord">A message ending with it ends the chat.</param>
/// <param name="MaxParticipants">Participants allowed; 3 by default, as larger groups drift.</param>
/// <param name="MaxTokens">The instance's token budget.</param>
public sealed record GroupChatRequest(string Topic, IReadOnlyList<string>? Participants = null, SpeakerSelection Selection = SpeakerSelection.RoundRobin, int MaxMessages = 6, string TerminationWord = "AGREED", int MaxParticipants = 3, long MaxTokens = 40_000);

/// <summary>One message of the shared thread.</summary>
public sealed record ChatLine(int Index, string Speaker, string Text);

/// <summary>Output of <see cref="GroupChat"/>.</summary>
/// <param name="Transcript">The thread.</param>
/// <param name="Termination">terminated (the word was said), max-messages, or budget.</param>
/// <param name="Usage">Tokens and cost.</param>
public sealed record GroupChatResult(IReadOnlyList<ChatLine> Transcript, string Termination, WorkflowUsage Usage);

/// <summary>The chat manager's pick.</summary>
public sealed record SpeakerChoice(string Speaker);

/// <summary>
/// Group chat: up to three agents take turns on a shared thread under a chat manager (round-robin, or a model
/// call that picks the next speaker), until a message says the termination word or the message limit.
/// </summary>
public sealed class GroupChat : TaskOrchestrator<GroupChatRequest, GroupChatResult>
{
    /// <summary>The default participants.</summary>
    public static IReadOnlyList<string> DefaultParticipants { get; } = [AgentNames.Strategist, AgentNames.Skeptic, AgentNames.Marketer];

    /// <inheritdoc />
    public override async Task<GroupChatResult> RunAsync(TaskOrchestrationContext context, GroupChatRequest input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var participants = input.Participants is { Count: > 0 } p ? p : DefaultParticipants;
        if (participants.Count > input.MaxParticipants || participants.Count < 2)
        {
            throw new ArgumentException($"A group chat has 2 to {input.MaxParticipants} participants (got {participants.Count}); raise MaxParticipants deliberately, larger groups drift.", nameof(input));
        }

        var budget = new ModelBudget(MaxTokens: input.MaxTokens);
        var transcript = new List<ChatLine>();
        var usage = new WorkflowUsage();
        for (var i = 0; i < input.MaxMessages; i++)
        {
            string speaker;
            if (input.Selection == SpeakerSelection.RoundRobin || i == 0)
            {
                speaker = participants[i % participants.Count];
            }
            else
            {
                try
                {
                    var choice = await context.CallModelAsync(
                        new ModelRequest
                        {
                            Messages = [ModelMessage.System("You are the chat manager. Pick who should speak next to move the discussion to a decision."), ModelMessage.User(Thread(input.Topic, transcript))],
                            ResponseSchema = SpeakerSchema(participants),
                            ResponseSchemaName = "next_speaker",
                            Budget = budget,
                        },
                        Retries.Default);
                    usage = usage.Add(choice);
                    speaker = choice.ReadJsonAs<SpeakerChoice>()!.Speaker;
                }
                catch (TaskFailedException ex) when (ex.IsBudgetExceeded())
                {
                    return new GroupChatResult(transcript, "budget", usage);
                }
            }

            context.SetCustomStatus(new { message = i + 1, speaker });
            var run = await context.RunAgentAsync(
                new AgentRun { Agent = speaker, Input = Thread(input.Topic, transcript) + $"\nYou are {speaker}. Add one short message. End it with the word {input.TerminationWord} once the group has a decision you accept.", Budget = budget, MaxTurns = 3 },
                Retries.Default);
            usage = usage.Add(run);
            if (run.StopReason == AgentStopReasons.Budget)
            {
                return new GroupChatResult(transcript, "budget", usage);
            }

            transcript.Add(new ChatLine(i + 1, speaker, run.Text));
            if (run.Text.TrimEnd(' ', '.', '!', '"', '\'', '\n').EndsWith(input.TerminationWord, StringComparison.Ordinal))
            {
                return new GroupChatResult(transcript, "terminated", usage);
            }
        }

        return new GroupChatResult(transcript, "max-messages", usage);
    }

    private static string Thread(string topic, List<ChatLine> transcript)
    {
        var text = new StringBuilder("Topic: ").Append(topic).Append('\n');
        foreach (var line in transcript)
        {
            text.Append(line.Speaker).Append(": ").Append(line.Text).Append('\n');
        }

        return text.ToString();
    }

    private static readonly string[] RequiredSpeaker = ["speaker"];

    private static JsonElement SpeakerSchema(IReadOnlyList<string> participants) => JsonSerializer.SerializeToElement(new Dictionary<string, object>
    {
        ["type"] = "object",
        ["properties"] = new Dictionary<string, object> { ["speaker"] = new Dictionary<string, object> { ["type"] = "string", ["enum"] = participants } },
        ["required"] = RequiredSpeaker,
        ["additionalProperties"] = false,
    });
}
