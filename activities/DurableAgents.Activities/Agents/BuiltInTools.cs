using System.ComponentModel;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml;
using System.Xml.Linq;
using AngleSharp.Html.Parser;
using DurableAgents.Activities.Contracts.Agents;
using DurableAgents.Activities.Llm;
using Microsoft.Extensions.Options;

namespace DurableAgents.Activities.Agents;

/// <summary>Arguments of web_fetch.</summary>
public sealed record WebFetchArgs([property: Description("The http(s) URL of the page.")] string Url);

/// <summary>A fetched page as text.</summary>
public sealed record WebPageText(string Url, int Status, string? Title, string Text, bool Truncated);

/// <summary>
/// web_fetch: a web page as plain text (scripts and styles removed). SSRF-safe (<see cref="SafeFetcher"/>):
/// allow-listed hosts only when a list is configured, never private or metadata addresses.
/// </summary>
public sealed partial class WebFetchTool(SafeFetcher fetcher) : AgentTool<WebFetchArgs>
{
    /// <inheritdoc />
    public override string Name => "web_fetch";

    /// <inheritdoc />
    public override string Description => "Fetches a web page and returns its title and text.";

    /// <summary>Fetches <paramref name="url"/> and extracts its text.</summary>
    public static async Task<WebPageText> FetchTextAsync(SafeFetcher fetcher, string url, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(fetcher);
        var page = await fetcher.GetAsync(url, cancellationToken).ConfigureAwait(false);
        var raw = Encoding.UTF8.GetString(page.Body);
        if (page.ContentType is not null && !page.ContentType.Contains("html", StringComparison.OrdinalIgnoreCase))
        {
            return new WebPageText(page.Url.ToString(), page.Status, null, raw, page.Truncated);
        }

        var document = await new HtmlParser().ParseDocumentAsync(raw, cancellationToken).ConfigureAwait(false);
        if (document.Body is null)
        {
            return new WebPageText(page.Url.ToString(), page.Status, document.Title, string.Empty, page.Truncated);
        }

        foreach (var element in document.QuerySelectorAll("script, style, noscript, template").ToList())
        {
            element.Remove();
        }

        var pieces = new List<string>();
        Collect(document.Body, pieces);
        var text = Whitespace().Replace(string.Join(' ', pieces), " ").Trim();
        return new WebPageText(page.Url.ToString(), page.Status, document.Title, text, page.Truncated);
    }

    /// <inheritdoc />
    protected override async Task<object?> ExecuteAsync(WebFetchArgs arguments, ToolContext context, CancellationToken cancellationToken) =>
        await FetchTextAsync(fetcher, arguments.Url, cancellationToken).ConfigureAwait(false);

    /// <summary>Text nodes in document order (block boundaries become spaces, unlike TextContent).</summary>
    private static void Collect(AngleSharp.Dom.INode node, List<string> pieces)
    {
        foreach (var child in node.ChildNodes)
        {
            if (child.NodeType == AngleSharp.Dom.NodeType.Text)
            {
                pieces.Add(child.TextContent);
            }
            else
            {
                Collect(child, pieces);
            }
        }
    }

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();
}

/// <summary>Arguments of sitemap_read.</summary>
public sealed record SitemapArgs(
    [property: Description("The sitemap's URL, e.g. https://example.com/sitemap.xml.")] string Url,
    [property: Description("Page URLs to return at most.")] int? Max = null);

/// <summary>A sitemap's page URLs.</summary>
public sealed record SitemapResult(IReadOnlyList<string> Urls, int SitemapsRead, bool Truncated);

/// <summary>sitemap_read: the page URLs of a sitemap (urlset or sitemap index, nested indexes followed), for SEO jobs.</summary>
public sealed class SitemapTool(SafeFetcher fetcher, IOptions<ToolOptions> options) : AgentTool<SitemapArgs>
{
    private const int MaxSitemaps = 20;

    /// <inheritdoc />
    public override string Name => "sitemap_read";

    /// <inheritdoc />
    public override string Description => "Reads a sitemap.xml (or sitemap index) and returns the page URLs it lists.";

    /// <summary>Reads a sitemap; XML with DTDs is refused (no entity expansion, no external entities).</summary>
    public static async Task<SitemapResult> ReadAsync(SafeFetcher fetcher, string url, int max, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(fetcher);
        var urls = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var queue = new Queue<string>([url]);
        var read = 0;
        while (queue.Count > 0 && read < MaxSitemaps && urls.Count < max)
        {
            var next = queue.Dequeue();
            if (!seen.Add(next))
            {
                continue;
            }

            var page = await fetcher.GetAsync(next, cancellationToken).ConfigureAwait(false);
            read++;
            if (page.Status is < 200 or >= 300)
            {
                throw new ToolException($"The sitemap {next} answered HTTP {page.Status}.");
            }

            XDocument xml;
            try
            {
                using var reader = XmlReader.Create(new MemoryStream(page.Body), new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null, Async = true });
                xml = await XDocument.LoadAsync(reader, LoadOptions.None, cancellationToken).ConfigureAwait(false);
            }
            catch (XmlException ex)
            {
                throw new ToolException($"{next} is not a readable sitemap: {ex.Message}", ex);
            }

            var root = xml.Root?.Name.LocalName;
            foreach (var loc in xml.Descendants().Where(e => e.Name.LocalName == "loc").Select(e => e.Value.Trim()).Where(s => s.Length > 0))
            {
                if (root == "sitemapindex")
                {
                    queue.Enqueue(loc);
                }
                else if (urls.Count < max)
                {
                    urls.Add(loc);
                }
            }
        }

        return new SitemapResult(urls, read, urls.Count >= max || queue.Count > 0);
    }

    /// <inheritdoc />
    protected override async Task<object?> ExecuteAsync(SitemapArgs arguments, ToolContext context, CancellationToken cancellationToken)
    {
        var limit = options.Value.Fetch.MaxSitemapUrls;
        return await ReadAsync(fetcher, arguments.Url, Math.Clamp(arguments.Max ?? limit, 1, limit), cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>Arguments of memory_search.</summary>
public sealed record MemorySearchArgs(
    [property: Description("What to look for.")] string Query,
    [property: Description("How many facts at most (1-20).")] int? TopK = null);

/// <summary>memory_search: the run's long-term memory scope, top-k facts for a query. The scope comes from the workflow, never from the model.</summary>
public sealed class MemorySearchTool(MemoryService memory) : AgentTool<MemorySearchArgs>
{
    /// <inheritdoc />
    public override string Name => "memory_search";

    /// <inheritdoc />
    public override string Description => "Searches long-term memory for facts relevant to a query.";

    /// <inheritdoc />
    protected override async Task<object?> ExecuteAsync(MemorySearchArgs arguments, ToolContext context, CancellationToken cancellationToken)
    {
        var scope = context.MemoryScope ?? throw new ToolException("This run has no long-term memory.");
        var profile = context.Model;
        var result = await memory.RecallAsync(new RecallRequest(scope, arguments.Query, Math.Clamp(arguments.TopK ?? 5, 1, 20), profile), cancellationToken).ConfigureAwait(false);
        return result.Facts.Select(f => new { id = f.Fact.Id, version = f.Fact.Version, text = f.Fact.Text, similarity = Math.Round(f.Similarity, 3) });
    }
}

/// <summary>Arguments of memory_save.</summary>
public sealed record MemorySaveArgs([property: Description("What to remember, in one or a few sentences.")] string Text);

/// <summary>memory_save: consolidates what to remember into the run's long-term memory scope (add, update or delete facts).</summary>
public sealed class MemorySaveTool(MemoryService memory) : AgentTool<MemorySaveArgs>
{
    /// <inheritdoc />
    public override string Name => "memory_save";

    /// <inheritdoc />
    public override string Description => "Saves facts to long-term memory (merged with what is already known).";

    /// <inheritdoc />
    public override bool HasSideEffects => true;

    /// <inheritdoc />
    protected override async Task<object?> ExecuteAsync(MemorySaveArgs arguments, ToolContext context, CancellationToken cancellationToken)
    {
        var scope = context.MemoryScope ?? throw new ToolException("This run has no long-term memory.");
        var profile = context.Model;
        var origin = new ModelCallOrigin(context.InstanceId, 0, context.IdempotencyKey);
        var result = await memory.RememberAsync(origin, new RememberRequest(scope, arguments.Text, profile), cancellationToken).ConfigureAwait(false);
        return result.Changes.Select(c => new { @event = c.Event, id = c.FactId, version = c.Version, text = c.Text });
    }
}

/// <summary>Arguments of scratchpad_write.</summary>
public sealed record ScratchpadWriteArgs([property: Description("A short key.")] string Key, [property: Description("The value to keep for this session.")] string Value);

/// <summary>Arguments of scratchpad_read.</summary>
public sealed record ScratchpadReadArgs([property: Description("The key, or omit for every key.")] string? Key = null);

/// <summary>scratchpad_write: keeps working notes in short-term (session) memory.</summary>
public sealed class ScratchpadWriteTool(ISessionMemory session) : AgentTool<ScratchpadWriteArgs>
{
    /// <inheritdoc />
    public override string Name => "scratchpad_write";

    /// <inheritdoc />
    public override string Description => "Writes a working note for this session (short-term memory).";

    /// <inheritdoc />
    public override bool HasSideEffects => true;

    /// <inheritdoc />
    protected override async Task<object?> ExecuteAsync(ScratchpadWriteArgs arguments, ToolContext context, CancellationToken cancellationToken)
    {
        await session.SetAsync(context.SessionId, arguments.Key, arguments.Value, cancellationToken).ConfigureAwait(false);
        return "saved";
    }
}

/// <summary>scratchpad_read: reads working notes from short-term (session) memory.</summary>
public sealed class ScratchpadReadTool(ISessionMemory session) : AgentTool<ScratchpadReadArgs>
{
    /// <inheritdoc />
    public override string Name => "scratchpad_read";

    /// <inheritdoc />
    public override string Description => "Reads this session's working notes (short-term memory).";

    /// <inheritdoc />
    protected override async Task<object?> ExecuteAsync(ScratchpadReadArgs arguments, ToolContext context, CancellationToken cancellationToken) =>
        arguments.Key is { } key
            ? await session.GetAsync(context.SessionId, key, cancellationToken).ConfigureAwait(false)
            : await session.GetAllAsync(context.SessionId, cancellationToken).ConfigureAwait(false);
}

/// <summary>Arguments of request_human_input.</summary>
public sealed record HumanInputArgs([property: Description("The question for the person.")] string Question);

/// <summary>request_human_input: asks a person; the workflow waits (durably) for the human-input event and gives the answer back as the result.</summary>
public sealed class RequestHumanInputTool : AgentTool<HumanInputArgs>
{
    /// <inheritdoc />
    public override string Name => "request_human_input";

    /// <inheritdoc />
    public override string Description => "Asks a person a question and waits for the answer.";

    /// <inheritdoc />
    protected override Task<object?> ExecuteAsync(HumanInputArgs arguments, ToolContext context, CancellationToken cancellationToken) =>
        Task.FromResult<object?>(new HumanInputRequested(arguments.Question));
}
