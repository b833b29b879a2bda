using System.Net.Http.Json;
using DurableAgents.Activities.Contracts.Agents;
using Microsoft.Extensions.Options;
using Microsoft.DurableTask;

namespace DurableAgents.Activities.Agents;

/// <summary>Reads a sitemap for a workflow, with the web fetch tools' SSRF rules.</summary>
public sealed class ReadSitemap(SafeFetcher fetcher) : TaskActivity<SitemapRequest, SitemapPages>
{
    /// <inheritdoc />
    public override async Task<SitemapPages> RunAsync(TaskActivityContext context, SitemapRequest input)
    {
        var cancellationToken = context.GetCancellationToken();
        ArgumentNullException.ThrowIfNull(input);
        try
        {
            var result = await SitemapTool.ReadAsync(fetcher, input.Url, Math.Clamp(input.Max, 1, 100_000), cancellationToken).ConfigureAwait(false);
            return new SitemapPages(result.Urls, result.SitemapsRead, result.Truncated);
        }
        catch (ToolException ex)
        {
            throw new ApplicationFailureException(ex.Message, AgentErrorTypes.FetchRefused, nonRetryable: true);
        }
    }
}

/// <summary>Fetches a page as text for a workflow; a refused or failing page is reported in the result, not thrown.</summary>
public sealed class FetchPage(SafeFetcher fetcher) : TaskActivity<FetchPageRequest, PageText>
{
    /// <inheritdoc />
    public override async Task<PageText> RunAsync(TaskActivityContext context, FetchPageRequest input)
    {
        var cancellationToken = context.GetCancellationToken();
        ArgumentNullException.ThrowIfNull(input);
        try
        {
            var page = await WebFetchTool.FetchTextAsync(fetcher, input.Url, cancellationToken).ConfigureAwait(false);
            var text = page.Text.Length <= input.MaxChars ? page.Text : page.Text[..input.MaxChars];
            return new PageText(page.Url, page.Status, page.Title, text, page.Status is >= 200 and < 300 ? null : $"HTTP {page.Status}");
        }
        catch (ToolException ex)
        {
            return new PageText(input.Url, 0, null, string.Empty, ex.Message);
        }
    }
}

/// <summary>Publishing (configuration DurableAgents:Publishing).</summary>
public sealed class PublishingOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "DurableAgents:Publishing";

    /// <summary>Where approved posts are POSTed (JSON: topic, title, body), with an Idempotency-Key header; none skips publishing.</summary>
    public Uri? WebhookUrl { get; set; }
}

/// <summary>
/// Posts an approved article to the publishing webhook. The Idempotency-Key header is the activity's key
/// (instance, execution, task), the same on every retry, so a webhook that honours it publishes once.
/// </summary>
public sealed class PublishPost(IHttpClientFactory http, IOptions<PublishingOptions> options) : TaskActivity<PublishRequest, PublishReceipt>
{
    /// <inheritdoc />
    public override async Task<PublishReceipt> RunAsync(TaskActivityContext context, PublishRequest input)
    {
        var cancellationToken = context.GetCancellationToken();
        ArgumentNullException.ThrowIfNull(context);
        if (options.Value.WebhookUrl is not { } url)
        {
            return new PublishReceipt("skipped", context.GetIdempotencyKey(), null);
        }

        using var client = http.CreateClient(nameof(PublishPost));
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = JsonContent.Create(input) };
        request.Headers.Add("Idempotency-Key", context.GetIdempotencyKey());
        using var response = await client.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if ((int)response.StatusCode is >= 400 and < 500 and not 408 and not 429)
        {
            throw new ApplicationFailureException($"The publishing webhook refused the post: HTTP {(int)response.StatusCode}.", "DurableAgents.Publishing.Refused", nonRetryable: true);
        }

        response.EnsureSuccessStatusCode(); // 5xx, 408, 429: retried by the workflow's policy
        return new PublishReceipt("published", context.GetIdempotencyKey(), (int)response.StatusCode);
    }
}
