using DurableAgents.Activities.Contracts.Agents;
using DurableAgents.Activities.Live;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Functions.Apis;

/// <summary>Steering and interrupting a running agent: the rules the API and the dashboard share.</summary>
internal static class AgentSteering
{
    /// <summary>The longest steer or interrupt message accepted, in characters.</summary>
    public const int MaxMessageLength = 16_000;

    /// <summary>Why the message cannot be sent (null when it can); a steer needs text, an interrupt's message is optional.</summary>
    public static string? Check(string? message, bool required)
    {
        if (required && string.IsNullOrWhiteSpace(message))
        {
            return "A steer needs a non-empty \"message\": {\"message\": \"use the Q3 numbers instead\"}.";
        }

        return message is { Length: > MaxMessageLength } ? $"\"message\" has {message.Length} characters; at most {MaxMessageLength} are accepted." : null;
    }

    /// <summary>Raises the durable steer event: the agent loop takes it before its next model call.</summary>
    public static Task SteerAsync(DurableTaskClient client, string instanceId, string message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        return client.RaiseEventAsync(instanceId, AgentEvents.Steer, new SteerMessage(message), cancellationToken);
    }

    /// <summary>
    /// Durable first (the loop reads the event at its next boundary, also after a crash), then the fast signal that cuts
    /// off the model call in flight on whichever host runs it.
    /// </summary>
    public static async Task InterruptAsync(DurableTaskClient client, ModelInterrupts interrupts, string instanceId, string? message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(interrupts);
        await client.RaiseEventAsync(instanceId, AgentEvents.Interrupt, new InterruptRequest(string.IsNullOrWhiteSpace(message) ? null : message), cancellationToken).ConfigureAwait(false);
        await interrupts.SignalAsync(instanceId, cancellationToken).ConfigureAwait(false);
    }
}
