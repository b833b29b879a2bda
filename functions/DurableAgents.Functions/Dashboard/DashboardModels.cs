using System.Globalization;
using DurableAgents.Activities.Email;
using DurableAgents.Activities.Llm;
using DurableAgents.Engine.Storage;
using DurableAgents.Functions.Http;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Functions.Dashboard;

/// <summary>The instance list's filter, read from the query string: bad values become problems, never binding failures.</summary>
public sealed record InstanceFilter(string? Status, string? Name, string? Prefix, string? CreatedFrom, string? CreatedTo, int PageSize, int? RefreshSeconds)
{
    public const int DefaultPageSize = 25;

    /// <summary>The auto-refresh choices.</summary>
    public static readonly IReadOnlyList<int> RefreshChoices = [5, 15, 60];

    /// <summary>Reads the filter; what cannot be used is listed in <paramref name="problems"/> and left out of the query.</summary>
    public static (InstanceFilter Filter, InstanceQuery Query) Parse(
        string? status, string? name, string? prefix, string? createdFrom, string? createdTo, string? pageSize, string? refresh, string? page, List<string> problems)
    {
        ArgumentNullException.ThrowIfNull(problems);
        var size = DefaultPageSize;
        if (!string.IsNullOrEmpty(pageSize) && (!int.TryParse(pageSize, CultureInfo.InvariantCulture, out size) || size is < 1 or > 200))
        {
            problems.Add("Page size must be a number between 1 and 200.");
            size = DefaultPageSize;
        }

        int? refreshSeconds = null;
        if (!string.IsNullOrEmpty(refresh))
        {
            if (int.TryParse(refresh, CultureInfo.InvariantCulture, out var r) && r is >= 2 and <= 3600)
            {
                refreshSeconds = r;
            }
            else
            {
                problems.Add("Refresh must be a number of seconds between 2 and 3600.");
            }
        }

        List<OrchestrationRuntimeStatus>? statuses = null;
        if (!string.IsNullOrEmpty(status))
        {
            if (Enum.TryParse<OrchestrationRuntimeStatus>(status, true, out var s) && Enum.IsDefined(s))
            {
                statuses = [s];
            }
            else
            {
                problems.Add($"'{status}' is not a status.");
            }
        }

        var from = ParseTime(createdFrom, "created from", problems);
        var to = ParseTime(createdTo, "created to", problems);
        var query = new InstanceQuery
        {
            Statuses = problems.Count == 0 ? statuses : null,
            Name = string.IsNullOrWhiteSpace(name) ? null : name.Trim(),
            CreatedFrom = from,
            CreatedTo = to,
            InstanceIdPrefix = string.IsNullOrWhiteSpace(prefix) ? null : prefix.Trim(),
            PageSize = size,
            ContinuationToken = string.IsNullOrEmpty(page) ? null : page,
        };
        return (new InstanceFilter(status, name, prefix, createdFrom, createdTo, size, refreshSeconds), query);
    }

    /// <summary>The list with this filter but another status (null: any).</summary>
    public string WithStatus(string? status) =>
        "/dashboard?" + string.Join("&", new[] { ("status", status), ("name", Name), ("createdFrom", CreatedFrom), ("createdTo", CreatedTo), ("prefix", Prefix) }
            .Where(x => !string.IsNullOrEmpty(x.Item2)).Select(x => $"{x.Item1}={Format.U(x.Item2)}"));

    public bool IsStatus(string status) => string.Equals(status, Status, StringComparison.OrdinalIgnoreCase);

    private static DateTimeOffset? ParseTime(string? value, string label, List<string> problems)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }

        if (DateTime.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var t))
        {
            return new DateTimeOffset(DateTime.SpecifyKind(t, DateTimeKind.Utc));
        }

        problems.Add($"'{value}' is not a date and time ({label}).");
        return null;
    }
}

/// <summary>The instance list.</summary>
public sealed record InstancesModel(
    InstanceFilter Filter, IReadOnlyList<string> Problems, IReadOnlyDictionary<OrchestrationRuntimeStatus, long> Counts, IReadOnlyList<InstanceRecord> Instances, string? NextPageHref);

/// <summary>The detail page of an instance.</summary>
public sealed record InstanceModel(
    string InstanceId, OrchestrationMetadata Metadata, string? ParentInstanceId, InstanceView View, IList<DurableTask.Core.History.HistoryEvent> History, FormToken Token)
{
    public bool Running => IsRunning(Metadata);

    /// <summary>Running, pending or suspended: it can still be acted on (and has a pending approval, a live stream).</summary>
    public static bool IsRunning(OrchestrationMetadata m)
    {
        ArgumentNullException.ThrowIfNull(m);
        return m.RuntimeStatus is OrchestrationRuntimeStatus.Running or OrchestrationRuntimeStatus.Pending or OrchestrationRuntimeStatus.Suspended;
    }

    /// <summary>An agent loop or model call has been scheduled: the live view offers steer and interrupt.</summary>
    public bool IsAgent => View.Spans.Any(s => s.Name is Activities.Contracts.ActivityNames.AgentTurn or Activities.Contracts.ActivityNames.CallModel);

    public string Href => Format.InstanceHref(InstanceId);
}

/// <summary>An action on an instance, as the dashboard's URLs name it.</summary>
public enum InstanceAction
{
    Terminate,
    Suspend,
    Resume,
    Purge,
    Restart,
    Raise,
    Approve,
    Reject,
    Steer,
    Interrupt,
}

/// <summary>Reading and naming <see cref="InstanceAction"/>.</summary>
public static class InstanceActions
{
    public static bool TryParse(string? text, out InstanceAction action)
    {
        action = default;
        return text is { Length: > 0 } && text.All(char.IsAsciiLetterLower) && Enum.TryParse(text, ignoreCase: true, out action) && Enum.IsDefined(action);
    }

    public static string Name(this InstanceAction action) => action.ToString().ToLowerInvariant();

    /// <summary>Terminate, purge and reject cannot be taken back: their buttons are red.</summary>
    public static bool IsDangerous(this InstanceAction action) => action is InstanceAction.Terminate or InstanceAction.Purge or InstanceAction.Reject;

    /// <summary>The question the confirmation page asks.</summary>
    public static string Question(this InstanceAction action) => action switch
    {
        InstanceAction.Terminate => "Terminate this instance? It stops at once; work in flight is abandoned.",
        InstanceAction.Purge => "Purge this instance? Its history and state are deleted for good.",
        InstanceAction.Restart => "Start a new instance of this workflow with the same input?",
        InstanceAction.Approve => "Approve?",
        InstanceAction.Reject => "Reject?",
        InstanceAction.Raise => "Raise this event?",
        _ => $"{action} this instance?",
    };
}

/// <summary>The confirmation page of an action.</summary>
public sealed record ConfirmModel(string InstanceId, InstanceAction Action, IReadOnlyList<string> Approvers, FormToken Token)
{
    public string PostHref => $"{Format.InstanceHref(InstanceId)}/actions/{Action.Name()}";
}

/// <summary>One rate-limited deployment's last minute.</summary>
public sealed record RateLimitRow(string Names, string Model, ModelLimits Limits, RateLimitSnapshot Now);

/// <summary>The cost page.</summary>
public sealed record CostsModel(
    IReadOnlyList<ModelUsageTotals> Workflows, IReadOnlyList<ModelUsageTotals> Daily, DateTime Since, IReadOnlyList<ModelUsageTotals> Top,
    IReadOnlyList<RateLimitRow> RateLimits, IReadOnlyList<RateLimitWait>? Waited)
{
    /// <summary>Estimated: cache hits × the workflow's average cost per paid call.</summary>
    public static decimal EstimatedSavings(ModelUsageTotals w)
    {
        ArgumentNullException.ThrowIfNull(w);
        var paid = w.Calls - w.CacheHits;
        return paid <= 0 ? 0 : w.CacheHits * (w.Cost / paid);
    }

    /// <summary>"used / cap (n %)", or the count alone without a cap.</summary>
    public static string Of(long used, int? cap) =>
        cap is { } c ? string.Create(CultureInfo.InvariantCulture, $"{used} / {c} ({(c == 0 ? 0 : 100.0 * used / c):0} %)") : used.ToString(CultureInfo.InvariantCulture);
}

/// <summary>The schedule list.</summary>
public sealed record SchedulesModel(IReadOnlyList<ScheduleView> Schedules);

/// <summary>The confirmation of a schedule's pause or resume.</summary>
public sealed record ConfirmScheduleModel(string Id, string Action, FormToken Token);

/// <summary>The development outbox.</summary>
public sealed record OutboxModel(bool SentBySmtp, IReadOnlyList<OutboxEntry> Messages);

/// <summary>The sign-in form.</summary>
public sealed record LoginModel(string? ReturnUrl, string? Error, FormToken Token);
