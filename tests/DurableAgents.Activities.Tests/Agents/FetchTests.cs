using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using DurableAgents.Activities.Agents;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NUnit.Framework;

namespace DurableAgents.Activities.Tests.Agents;

/// <summary>
/// The web fetch and sitemap tools refuse server-side request forgery before any connection. The fetcher's
/// socket connector is replaced by a guard that fails the test if it is ever asked to connect anywhere but loopback.
/// </summary>
public sealed class FetchTests
{
    private readonly ConcurrentQueue<IPEndPoint> _connections = new();
    private WebApplication _site = null!;
    private Uri _base = null!;

    private ValueTask<Stream> Guard(IPEndPoint endpoint, CancellationToken cancellationToken)
    {
        if (!IPAddress.IsLoopback(endpoint.Address))
        {
            Assert.Fail($"the fetcher tried to connect to {endpoint}");
        }

        _connections.Enqueue(endpoint);
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        socket.Connect(endpoint);
        return ValueTask.FromResult<Stream>(new NetworkStream(socket, ownsSocket: true));
    }

    private SafeFetcher Fetcher(bool allowLoopback, params string[] allowedHosts) =>
        new(Options.Create(new ToolOptions { Fetch = new FetchOptions { AllowLoopback = allowLoopback, AllowedHosts = [.. allowedHosts], MaxResponseBytes = 64 * 1024, Timeout = TimeSpan.FromSeconds(10) } }), Guard);

    [OneTimeSetUp]
    public async Task StartSiteAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _site = builder.Build();
        _site.MapGet("/page", () => Results.Content("<html><head><title>Pricing</title><style>p{color:red}</style></head><body><h1>Plans</h1><script>alert(1)</script><p>Pro costs   $20.</p></body></html>", "text/html"));
        _site.MapGet("/to-metadata", () => Results.Redirect("http://169.254.169.254/latest/meta-data/iam/security-credentials/"));
        _site.MapGet("/to-private", () => Results.Redirect("http://10.0.0.5/admin"));
        _site.MapGet("/to-file", () => Results.Redirect("file:///etc/passwd"));
        _site.MapGet("/to-page", () => Results.Redirect("/page"));
        _site.MapGet("/loop", () => Results.Redirect("/loop"));
        _site.MapGet("/huge", () => Results.Content(new string('a', 1_000_000), "text/plain"));
        _site.MapGet("/sitemap.xml", (HttpContext ctx) => Results.Content(
            $"""<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><sitemap><loc>{_base}sitemap-1.xml</loc></sitemap><sitemap><loc>{_base}sitemap-2.xml</loc></sitemap></sitemapindex>""",
            "application/xml"));
        _site.MapGet("/sitemap-{n:int}.xml", (int n) => Results.Content(
            "<?xml version=\"1.0\"?><urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">" + string.Concat(Enumerable.Range(1, 3).Select(i => $"<url><loc>{_base}s{n}/p{i}</loc></url>")) + "</urlset>",
            "application/xml"));
        _site.MapGet("/bomb.xml", () => Results.Content("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;\">]><urlset><url><loc>&lol2;</loc></url></urlset>", "application/xml"));
        await _site.StartAsync();
        _base = new Uri(_site.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single().TrimEnd('/') + "/");
    }

    [OneTimeTearDown]
    public async Task StopSiteAsync() => await _site.DisposeAsync();

    [SetUp]
    public void Clear() => _connections.Clear();

    [TestCase("http://127.0.0.1/", "loopback")]
    [TestCase("http://127.1.2.3:8080/x", "loopback")]
    [TestCase("http://[::1]/", "loopback")]
    [TestCase("http://localhost/", "loopback")]
    [TestCase("http://169.254.169.254/latest/meta-data/", "link-local")]
    [TestCase("http://10.1.2.3/", "private")]
    [TestCase("http://172.16.0.1/", "private")]
    [TestCase("http://192.168.1.1/", "private")]
    [TestCase("http://100.64.0.1/", "carrier-grade")]
    [TestCase("http://0.0.0.0/", "unspecified")]
    [TestCase("http://[::ffff:10.0.0.1]/", "private")]
    [TestCase("http://[fd00::1]/", "unique-local")]
    [TestCase("http://[fe80::1]/", "link-local")]
    [TestCase("file:///etc/passwd", "only http and https")]
    [TestCase("gopher://127.0.0.1:6379/_FLUSHALL", "only http and https")]
    [TestCase("http://user:secret@example.com/", "credentials")]
    [TestCase("not a url", "not an absolute URL")]
    public async Task ForbiddenTargets_AreRefused_BeforeAnyConnection(string url, string reason)
    {
        using var fetcher = Fetcher(allowLoopback: false);

        var ex = await Assert.ThrowsAsync<ToolException>(() => fetcher.GetAsync(url));

        Assert.That(ex!.Message, Does.Contain(reason));
        Assert.That(_connections, Is.Empty, "no connection may be attempted");
    }

    [TestCase("to-metadata", "169.254.169.254")]
    [TestCase("to-private", "10.0.0.5")]
    [TestCase("to-file", "only http and https")]
    public async Task RedirectsToForbiddenTargets_AreRefused(string path, string expected)
    {
        using var fetcher = Fetcher(allowLoopback: true);

        var ex = await Assert.ThrowsAsync<ToolException>(() => fetcher.GetAsync(new Uri(_base, path).ToString()));

        Assert.That(ex!.Message, Does.Contain(expected));
        Assert.That(_connections.Select(c => c.Address), Is.All.Matches<IPAddress>(a => a is not null && IPAddress.IsLoopback(a)));
    }

    [Test]
    public async Task RedirectLoops_StopAtTheLimit()
    {
        using var fetcher = Fetcher(allowLoopback: true);
        var ex = await Assert.ThrowsAsync<ToolException>(() => fetcher.GetAsync(new Uri(_base, "loop").ToString()));
        Assert.That(ex!.Message, Does.Contain("Too many redirects"));
    }

    [Test]
    public async Task HostsOutsideTheAllowList_AreRefused()
    {
        using var fetcher = Fetcher(allowLoopback: true, "docs.example.com", "*.example.org");
        var ex = await Assert.ThrowsAsync<ToolException>(() => fetcher.GetAsync(new Uri(_base, "page").ToString()));
        Assert.That(ex!.Message, Does.Contain("not in the allowed hosts"));
        Assert.That(_connections, Is.Empty);
    }

    [Test]
    public async Task AnAllowedPage_IsFetchedAsText_FollowingSafeRedirects()
    {
        using var fetcher = Fetcher(allowLoopback: true, "127.0.0.1");

        var page = await WebFetchTool.FetchTextAsync(fetcher, new Uri(_base, "to-page").ToString(), CancellationToken.None);

        Assert.That(page.Status, Is.EqualTo(200));
        Assert.That(page.Url, Is.EqualTo(new Uri(_base, "page").ToString()));
        Assert.That(page.Title, Is.EqualTo("Pricing"));
        Assert.That(page.Text, Is.EqualTo("Plans Pro costs $20."), "scripts and styles removed, whitespace collapsed");
    }

    [Test]
    public async Task ALargeBody_IsCutAtTheSizeLimit()
    {
        using var fetcher = Fetcher(allowLoopback: true);
        var page = await fetcher.GetAsync(new Uri(_base, "huge").ToString());
        Assert.That(page.Body, Has.Length.EqualTo(64 * 1024));
        Assert.That(page.Truncated, Is.True);
    }

    [Test]
    public async Task ASitemapIndex_IsReadWithItsSitemaps_UpToTheLimit()
    {
        using var fetcher = Fetcher(allowLoopback: true);

        var all = await SitemapTool.ReadAsync(fetcher, new Uri(_base, "sitemap.xml").ToString(), 100, CancellationToken.None);
        var capped = await SitemapTool.ReadAsync(fetcher, new Uri(_base, "sitemap.xml").ToString(), 4, CancellationToken.None);

        Assert.That(all.Urls, Has.Count.EqualTo(6));
        Assert.That(all.Urls[0], Is.EqualTo(new Uri(_base, "s1/p1").ToString()));
        Assert.That(all.SitemapsRead, Is.EqualTo(3));
        Assert.That(all.Truncated, Is.False);
        Assert.That(capped.Urls, Has.Count.EqualTo(4));
        Assert.That(capped.Truncated, Is.True);
    }

    [Test]
    public async Task ASitemapWithADtd_IsRefused()
    {
        using var fetcher = Fetcher(allowLoopback: true);
        var ex = await Assert.ThrowsAsync<ToolException>(() => SitemapTool.ReadAsync(fetcher, new Uri(_base, "bomb.xml").ToString(), 100, CancellationToken.None));
        Assert.That(ex!.Message, Does.Contain("not a readable sitemap").And.Contain("DTD"));
    }
}
