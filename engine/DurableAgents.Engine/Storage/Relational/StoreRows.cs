using System.Globalization;
using System.Text;
using DurableAgents.Engine.History;
using Microsoft.DurableTask.Client;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableAgents.Engine.Storage.Relational;

/// <summary>
/// Row shapes and helpers shared by the SQL stores (SQLite, PostgreSQL). Column names are the
/// schema's; times are Unix milliseconds (UTC) in both stores, so rows map the same way.
/// </summary>
internal static class StoreRows
{
    /// <summary>Parses a stored status.</summary>
    public static OrchestrationRuntimeStatus ParseStatus(string status) => Enum.Parse<OrchestrationRuntimeStatus>(status);

    /// <summary>Serializes failure details for a column.</summary>
    public static string? SerializeFailure(P.TaskFailureDetails? failure) => HistoryJson.SerializeFailure(failure);

    /// <summary>Serializes instance tags for a column; none stays null.</summary>
    public static string? SerializeTags(IReadOnlyDictionary<string, string>? tags) =>
        tags is null || tags.Count == 0 ? null : System.Text.Json.JsonSerializer.Serialize(tags);

    /// <summary>Deserializes instance tags.</summary>
    public static IReadOnlyDictionary<string, string>? DeserializeTags(string? tags) =>
        tags is null ? null : System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, string>>(tags);

    /// <summary>What a client message tried to do, for error messages.</summary>
    public static string OperationName(P.HistoryEvent message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return message.EventTypeCase switch
        {
            P.HistoryEvent.EventTypeOneofCase.EventRaised => $"raise event '{message.EventRaised.Name}' to",
            P.HistoryEvent.EventTypeOneofCase.ExecutionTerminated => "terminate",
            P.HistoryEvent.EventTypeOneofCase.ExecutionSuspended => "suspend",
            P.HistoryEvent.EventTypeOneofCase.ExecutionResumed => "resume",
            _ => "send a message to",
        };
    }

#pragma warning disable IDE1006, CA1707 // column-named rows materialized by Dapper

    /// <summary>An instances row.</summary>
    public sealed record InstanceRow(
        string instance_id, string execution_id, string name, string? version, string status, string? input, string? output,
        string? custom_status, string? failure, long created_at, long last_updated_at, long? completed_at, string? parent_instance_id,
        long history_length, string? lock_owner, long? lock_expires_at, string? tags)
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
            HistoryJson.DeserializeFailure(failure),
            parent_instance_id)
        {
            Tags = DeserializeTags(tags),
        };

        /// <summary>The row as a work item leased with <paramref name="token"/>.</summary>
        public OrchestrationWorkItem ToWorkItem(IReadOnlyList<OrchestrationMessage> messages, string token, DateTimeOffset expires) => new()
        {
            InstanceId = instance_id,
            ExecutionId = execution_id,
            Name = name,
            Version = version,
            ParentInstanceId = parent_instance_id,
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
            new(id, instance_id, execution_id, HistoryJson.Deserialize(data), DateTimeOffset.FromUnixTimeMilliseconds(visible_at));
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

/// <summary>The instance listing query, in SQL that SQLite and PostgreSQL both accept.</summary>
internal static class InstanceQuerySql
{
    /// <summary>Builds the SELECT (newest first, one row more than a page) and its parameters.</summary>
    /// <param name="query">The filters.</param>
    /// <param name="instancesTable">The instances table, schema-qualified where needed.</param>
    /// <param name="nativeArrays">
    /// true where the provider binds arrays natively (Npgsql: Dapper then passes the status list as one
    /// array, matched with <c>= ANY</c>); false where Dapper expands it into an <c>IN</c> list (SQLite).
    /// </param>
    public static (string Sql, Dictionary<string, object?> Parameters) Build(InstanceQuery query, string instancesTable, bool nativeArrays)
    {
        ArgumentNullException.ThrowIfNull(query);
        var where = new List<string>();
        var p = new Dictionary<string, object?>();
        if (query.Statuses is { Count: > 0 })
        {
            where.Add(nativeArrays ? "status = ANY(@statuses)" : "status IN @statuses");
            p["statuses"] = query.Statuses.Select(s => s.ToString()).ToArray();
        }

        if (query.Name is not null)
        {
            where.Add("name = @name");
            p["name"] = query.Name;
        }

        if (query.CreatedFrom is { } from)
        {
            where.Add("created_at >= @from");
            p["from"] = from.ToUnixTimeMilliseconds();
        }

        if (query.CreatedTo is { } to)
        {
            where.Add("created_at < @to");
            p["to"] = to.ToUnixTimeMilliseconds();
        }

        if (!string.IsNullOrEmpty(query.InstanceIdPrefix))
        {
            // substr comparison rather than LIKE: ids may contain LIKE wildcards (_).
            where.Add("substr(instance_id, 1, @prefixLength) = @prefix");
            p["prefix"] = query.InstanceIdPrefix;
            p["prefixLength"] = query.InstanceIdPrefix.Length;
        }

        if (ContinuationToken.TryParse(query.ContinuationToken, out var after))
        {
            where.Add("(created_at < @afterCreated OR (created_at = @afterCreated AND instance_id < @afterId))");
            p["afterCreated"] = after.CreatedAt;
            p["afterId"] = after.InstanceId;
        }

        p["limit"] = query.PageSize + 1;
        var sql = $"SELECT * FROM {instancesTable} {(where.Count > 0 ? "WHERE " + string.Join(" AND ", where) : string.Empty)} ORDER BY created_at DESC, instance_id DESC LIMIT @limit";
        return (sql, p);
    }

    /// <summary>
    /// Builds a count per status of the instances matching the query's name, created-time and id-prefix
    /// filters (its status filter and paging are ignored: the counts are what a status filter would choose from).
    /// </summary>
    public static (string Sql, Dictionary<string, object?> Parameters) BuildCount(InstanceQuery query, string instancesTable)
    {
        ArgumentNullException.ThrowIfNull(query);
        var (select, p) = Build(query with { Statuses = null, ContinuationToken = null }, instancesTable, nativeArrays: false);
        var where = select.IndexOf(" WHERE ", StringComparison.Ordinal) is var at and >= 0
            ? select[at..select.IndexOf(" ORDER BY ", StringComparison.Ordinal)]
            : string.Empty;
        p.Remove("limit");
        return ($"SELECT status AS Status, CAST(COUNT(*) AS bigint) AS Count FROM {instancesTable}{where} GROUP BY status", p);
    }

    /// <summary>Turns the rows of <see cref="BuildCount"/> into counts per status.</summary>
    public static IReadOnlyDictionary<OrchestrationRuntimeStatus, long> ToCounts(IEnumerable<(string Status, long Count)> rows) =>
        rows.Where(r => Enum.TryParse<OrchestrationRuntimeStatus>(r.Status, out _)).ToDictionary(r => Enum.Parse<OrchestrationRuntimeStatus>(r.Status), r => r.Count);

    /// <summary>Turns the rows of <see cref="Build"/> into a page and the next page's token.</summary>
    public static InstancePage ToPage(List<StoreRows.InstanceRow> rows, InstanceQuery query)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(query);
        string? next = null;
        if (rows.Count > query.PageSize)
        {
            rows.RemoveAt(rows.Count - 1);
            next = ContinuationToken.Format(rows[^1].created_at, rows[^1].instance_id);
        }

        return new InstancePage(rows.Select(r => r.ToRecord(query.FetchInputsAndOutputs)).ToList(), next);
    }
}

/// <summary>Opaque paging tokens: base64 of "createdAtMs|instanceId".</summary>
internal static class ContinuationToken
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
