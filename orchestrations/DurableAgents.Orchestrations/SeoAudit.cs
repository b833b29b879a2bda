using System.Text.Json.Serialization;
using DurableAgents.Activities.Contracts;
using DurableAgents.Activities.Contracts.Agents;
using DurableAgents.Activities.Contracts.Llm;
using Microsoft.DurableTask;

namespace DurableAgents.Orchestrations;

/// <summary>Input of <see cref="SeoAudit"/>.</summary>
/// <param name="SitemapUrl">The site's sitemap (or sitemap index).</param>
/// <param name="MaxPages">Pages audited at most.</param>
/// <param name="MaxInFlight">Pages being fetched or audited at once, at most (each page is one activity at a time).</param>
/// <param name="PagesPerExecution">Pages per execution; then the audit continues as new, so history stays small.</param>
/// <param name="MaxTokens">The token budget of each execution.</param>
/// <param name="Progress">Carried across ContinueAsNew; null to start.</param>
public sealed record SeoAuditRequest(string SitemapUrl, int MaxPages = 500, int MaxInFlight = 8, int PagesPerExecution = 100, long MaxTokens = 400_000, SeoAuditProgress? Progress = null);

/// <summary>What an audit carries from one execution to the next.</summary>
public sealed record SeoAuditProgress(IReadOnlyList<string> Pages, int Offset, IReadOnlyList<PageFinding> Findings, IReadOnlyList<string> Failed, WorkflowUsage Usage, int Executions);

/// <summary>How much an issue matters.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<Severity>))]
public enum Severity
{
    /// <summary>Fix first.</summary>
    High,

    /// <summary>Fix soon.</summary>
    Medium,

    /// <summary>Nice to fix.</summary>
    Low,
}

/// <summary>One issue the model found on a page.</summary>
public sealed record SeoIssue(Severity Severity, string Issue, string Fix);

/// <summary>The model's structured audit of a page.</summary>
public sealed record PageAudit(IReadOnlyList<SeoIssue> Issues);

/// <summary>An issue on a page.</summary>
public sealed record PageFinding(string Url, Severity Severity, string Issue, string Fix);

/// <summary>Output of <see cref="SeoAudit"/>: a prioritised report.</summary>
/// <param name="SitemapUrl">The sitemap.</param>
/// <param name="PagesListed">Pages the sitemap listed (up to MaxPages).</param>
/// <param name="PagesAudited">Pages fetched and audited.</param>
/// <param name="Failed">Pages that could not be fetched, with why.</param>
/// <param name="Findings">Issues, most severe first.</param>
/// <param name="IssuesBySeverity">Counts per severity.</param>
/// <param name="Executions">Executions (ContinueAsNew generations) the audit took.</param>
/// <param name="Usage">Tokens and cost.</param>
public sealed record SeoReport(string SitemapUrl, int PagesListed, int PagesAudited, IReadOnlyList<string> Failed, IReadOnlyList<PageFinding> Findings, IReadOnlyDictionary<string, int> IssuesBySeverity, int Executions, WorkflowUsage Usage);

/// <summary>
/// Scheduled SEO job: reads the sitemap, audits each page (fetch → model audit with structured findings) with
/// no more than MaxInFlight pages in flight, and aggregates a prioritised report. Large sites are done
/// PagesPerExecution pages at a time with ContinueAsNew, carrying the findings so far.
/// </summary>
public sealed class SeoAudit : TaskOrchestrator<SeoAuditRequest, SeoReport>
{
    /// <inheritdoc />
    public override async Task<SeoReport> RunAsync(TaskOrchestrationContext context, SeoAuditRequest input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var progress = input.Progress;
        if (progress is null)
        {
            context.SetCustomStatus(new { stage = "sitemap" });
            var sitemap = await context.CallActivityAsync<SitemapPages>(ActivityNames.ReadSitemap, new SitemapRequest(input.SitemapUrl, input.MaxPages), Retries.Default);
            progress = new SeoAuditProgress(sitemap.Urls, 0, [], [], new WorkflowUsage(), 0);
        }

        var budget = new ModelBudget(MaxTokens: input.MaxTokens);
        var batch = progress.Pages.Skip(progress.Offset).Take(Math.Max(1, input.PagesPerExecution)).ToList();
        var findings = new List<PageFinding>(progress.Findings);
        var failed = new List<string>(progress.Failed);
        var usage = progress.Usage;
        var done = 0;

        async Task<(string Url, PageAudit? Audit, ModelResponse? Response, string? Error)> AuditPage(string url)
        {
            var page = await context.CallActivityAsync<PageText>(ActivityNames.FetchPage, new FetchPageRequest(url, 6000), Retries.Default);
            if (page.Error is not null)
            {
                return (url, null, null, page.Error);
            }

            try
            {
                var (audit, response) = await context.CallModelAsync<PageAudit>(
                    new ModelRequest
                    {
                        Messages =
                        [
                            ModelMessage.System("You are an SEO auditor. List at most 5 concrete issues of this page (title, headings, content, intent, internal links) with a fix each."),
                            ModelMessage.User($"URL: {url}\nTitle: {page.Title}\nText:\n{page.Text}"),
                        ],
                        Budget = budget,
                        MaxOutputTokens = 600,
                    },
                    Retries.Default);
                return (url, audit, response, null);
            }
            catch (TaskFailedException ex)
            {
                return (url, null, null, $"{ex.FailureDetails.ErrorType}: {ex.FailureDetails.ErrorMessage}");
            }
        }

        // A sliding window: at most MaxInFlight pages at once.
        var running = new List<Task<(string Url, PageAudit? Audit, ModelResponse? Response, string? Error)>>();
        var queue = new Queue<string>(batch);
        while (queue.Count > 0 || running.Count > 0)
        {
            while (queue.Count > 0 && running.Count < Math.Max(1, input.MaxInFlight))
            {
                running.Add(AuditPage(queue.Dequeue()));
            }

            var finished = await Task.WhenAny(running);
            running.Remove(finished);
            var (url, audit, response, error) = await finished;
            done++;
            if (response is not null)
            {
                usage = usage.Add(response);
            }

            if (error is not null)
            {
                failed.Add($"{url}: {error}");
            }
            else
            {
                findings.AddRange(audit!.Issues.Take(5).Select(i => new PageFinding(url, i.Severity, i.Issue, i.Fix)));
            }

            context.SetCustomStatus(new { stage = "audit", audited = progress.Offset + done, of = progress.Pages.Count, execution = progress.Executions + 1 });
        }

        var offset = progress.Offset + batch.Count;
        if (offset < progress.Pages.Count)
        {
            context.ContinueAsNew(input with { Progress = new SeoAuditProgress(progress.Pages, offset, findings, failed, usage, progress.Executions + 1) });
            return null!; // ContinueAsNew: this execution's result is not used
        }

        var ordered = findings.OrderBy(f => f.Severity).ThenBy(f => f.Url, StringComparer.Ordinal).ToList();
        var counts = Enum.GetValues<Severity>().ToDictionary(s => s.ToString(), s => findings.Count(f => f.Severity == s));
        return new SeoReport(input.SitemapUrl, progress.Pages.Count, progress.Pages.Count - failed.Count, failed, ordered, counts, progress.Executions + 1, usage);
    }
}
