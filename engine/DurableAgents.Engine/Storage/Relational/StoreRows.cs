using System.Globalization;
using System.Text;
using System.Text.Json;
using DurableAgents.Engine.History;

namespace DurableAgents.Engine.Storage.Relational;

/// <summary>
/// Row shapes and helpers shared by the SQL stores (SQLite, PostgreSQL). Column names are the
/// schema's; times are Unix milliseconds (UTC) in both stores, so rows map the same way.
/// </summary>
public static class StoreRows
{
    /// <summary>Parses a stored status.</summary>
    public static OrchestrationRuntimeStatus ParseStatus(string status) => Enum.Parse<OrchestrationRuntimeStatus>(status);

    /// <summary>Serializes failure details for a column.</summary>
    public static string? SerializeFailure(TaskFailureDetails? failure) =>
        failure is null ? null : JsonSerializer.Serialize(failure, DataConverter.Options);

    /// <summary>What a client message tried to do, for error messages.</summary>
    public static string OperationName(HistoryEvent message) => message switch
    {
        EventRaisedEvent e => $"raise event '{e.Name}' to",
        ExecutionTerminatedEvent => "terminate",
        ExecutionSuspendedEvent => "suspend",
        ExecutionResumedEvent => "resume",
        _ => "send a message to",
    };

#pragma warning disable IDE1006, CA1707 // column-named rows materialized by Dapper

    /// <summary>An instances row.</summary>
    public sealed record InstanceRow(
        string instance_id, string execution_id, string name, string? version, string status, string? input, string? output,
        string? custom_status, string? failure, long created_at, long last_updated_at, long? completed_at, string? parent_instance_id,
        long history_length, string? lock_owner, long? lock_expires_at)
    {
        /// <summary>The row as a record.</summary>
        public InstanceRecord ToRecord(bool includePayloads) => new(
            instance_id,
            execution_id,
            name,
            version,
            ParseStatus(status),
            DateTimeOffset.FromUnixTimeMilliseconds(created_at),
            DateTimeOffset.FromUnixTimeMilliseconds(last_updated_at),
            completed_at is { } done ? DateTimeOffset.FromUnixTimeMilliseconds(done) : null,
            includePayloads ? input : null,
            includePayloads ? output : null,
            custom_status,
            failure is null ? null : JsonSerializer.Deserialize<TaskFailureDetails>(failure, DataConverter.Options),
            parent_instance_id);

        /// <summary>The row as a work item leased with <paramref name="token"/>.</summary>
        public OrchestrationWorkItem ToWorkItem(IReadOnlyList<OrchestrationMessage> messages, string token, DateTimeOffset expires) => new()
        {
            InstanceId = instance_id,
            ExecutionId = execution_id,
            Name = name,
            Version = version,
            Status = ParseStatus(status),
            HistoryLength = (int)history_length,
            Messages = messages,
            LockOwner = token,
            LockExpiresAt = expires,
        };
    }

    /// <summary>An inbox row.</summary>
    public sealed record MessageRow(long id, string instance_id, string? execution_id, long visible_at, string data)
    {
        /// <summary>The row as a message.</summary>
        public OrchestrationMessage ToMessage() =>
            new(id, instance_id, execution_id, DataConverter.DeserializeEvent(data), DateTimeOffset.FromUnixTimeMilliseconds(visible_at));
    }

    /// <summary>An activities row.</summary>
    public sealed record ActivityRow(long id, string instance_id, string execution_id, long task_id, string name, string? input, long dequeue_count)
    {
        /// <summary>The row as a work item leased with <paramref name="token"/> (the dequeue count already includes this lease).</summary>
        public ActivityWorkItem ToWorkItem(string token, DateTimeOffset expires, bool countIncludesThisLease) => new()
        {
            Id = id,
            Task = new ActivityTaskRequest(instance_id, execution_id, (int)task_id, name, input),
            DequeueCount = (int)dequeue_count + (countIncludesThisLease ? 0 : 1),
            LockOwner = token,
            LockExpiresAt = expires,
        };
    }
#pragma warning restore IDE1006, CA1707
}

/// <summary>Opaque paging tokens: base64 of "createdAtMs|instanceId".</summary>
public static class ContinuationToken
{
    /// <summary>Formats a token for the row after which the next page starts.</summary>
    public static string Format(long createdAt, string instanceId) =>
        Convert.ToBase64String(Encoding.UTF8.GetBytes($"{createdAt.ToString(CultureInfo.InvariantCulture)}|{instanceId}"));

    /// <summary>Parses a token; false for none.</summary>
    /// <exception cref="ArgumentException">The token is not one this store issued.</exception>
    public static bool TryParse(string? token, out (long CreatedAt, string InstanceId) value)
    {
        value = default;
        if (string.IsNullOrEmpty(token))
        {
            return false;
        }

        try
        {
            var text = Encoding.UTF8.GetString(Convert.FromBase64String(token));
            var bar = text.IndexOf('|', StringComparison.Ordinal);
            if (bar > 0 && long.TryParse(text.AsSpan(0, bar), NumberStyles.Integer, CultureInfo.InvariantCulture, out var created))
            {
                value = (created, text[(bar + 1)..]);
                return true;
            }
        }
        catch (FormatException)
        {
        }

        throw new ArgumentException("The continuation token is not valid.", nameof(token));
    }
}
