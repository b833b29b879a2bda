using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using DurableAgents.Activities.Approvals;
using Microsoft.Extensions.Options;
using NUnit.Framework;

namespace DurableAgents.Functions.Tests;

/// <summary>Approval by email link, end to end over HTTP against the real host.</summary>
[NonParallelizable]
public sealed partial class ApprovalLinkTests
{
    private static readonly string SigningKey = Convert.ToBase64String(Enumerable.Range(1, 32).Select(i => (byte)i).ToArray());
    private HostProcess _host = null!;
    private HttpClient _http = null!;

    [OneTimeSetUp]
    public async Task StartHost()
    {
        _host = await HostProcess.StartAsync(new Dictionary<string, string> { ["DurableAgents__Approvals__SigningKey"] = SigningKey });
        _http = _host.CreateClient();
    }

    [OneTimeTearDown]
    public async Task StopHost()
    {
        _http.Dispose();
        await _host.DisposeAsync();
    }

    private static ApprovalTokens Tokens() => new(Options.Create(new ApprovalOptions { SigningKey = SigningKey }), TimeProvider.System);

    private async Task<(string Approve, string Reject)> StartAndReadLinksAsync(string id, string approver)
    {
        using var start = await _http.PostAsync($"/api/orchestrators/DraftAndApprove/{id}", new StringContent($"{{\"topic\":\"pricing page\",\"approver\":\"{approver}\"}}", Encoding.UTF8, "application/json"));
        Assert.That(start.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            var outbox = await _http.GetFromJsonAsync<JsonElement>("/api/outbox", cts.Token);
            foreach (var entry in outbox.EnumerateArray())
            {
                var message = entry.GetProperty("message");
                if (message.GetProperty("to").GetString() == approver)
                {
                    var text = message.GetProperty("textBody").GetString()!;
                    var approve = Link().Match(text[text.IndexOf("Approve:", StringComparison.Ordinal)..]).Groups[1].Value;
                    var reject = Link().Match(text[text.IndexOf("Reject:", StringComparison.Ordinal)..]).Groups[1].Value;
                    return (approve, reject);
                }
            }

            await Task.Delay(20, cts.Token);
        }
    }

    private async Task<JsonElement> StatusAsync(string id) => await _http.GetFromJsonAsync<JsonElement>($"/api/instances/{id}");

    private async Task<JsonElement> WaitDoneAsync(string id)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            var s = await StatusAsync(id);
            if (s.GetProperty("runtimeStatus").GetString() is "Completed" or "Failed")
            {
                return s;
            }

            await Task.Delay(20, cts.Token);
        }
    }

    [Test]
    public async Task ApproveLink_GetShowsConfirmPage_PostDecides_ReplayIsRefused()
    {
        var (approve, _) = await StartAndReadLinksAsync("appr-1", "ceo@example.com");

        using var page = await _http.GetAsync(approve);
        var html = await page.Content.ReadAsStringAsync();
        Assert.That(page.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(page.Content.Headers.ContentType!.MediaType, Is.EqualTo("text/html"));
        Assert.That(html, Does.Contain("<form method=\"post\"").And.Contain("ceo@example.com").And.Contain("appr-1"));
        Assert.That(page.Headers.GetValues("Referrer-Policy"), Is.EqualTo(new[] { "no-referrer" }));
        await Task.Delay(100);
        Assert.That((await StatusAsync("appr-1")).GetProperty("customStatus").GetString(), Is.EqualTo("awaiting approval"), "GET must decide nothing");

        using var decided = await _http.PostAsync(approve, null);
        Assert.That(decided.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(await decided.Content.ReadAsStringAsync(), Does.Contain("approved"));
        var done = await WaitDoneAsync("appr-1");
        Assert.That(done.GetProperty("output").GetProperty("decision").GetString(), Is.EqualTo("approve"));
        Assert.That(done.GetProperty("output").GetProperty("decidedBy").GetString(), Is.EqualTo("ceo@example.com"));

        using var replay = await _http.PostAsync(approve, null);
        Assert.That(replay.StatusCode, Is.EqualTo(HttpStatusCode.Conflict));
    }

    [Test]
    public async Task RejectLink_RecordsRejection_AndTheApproveLinkCannotOverrideIt()
    {
        var (approve, reject) = await StartAndReadLinksAsync("appr-2", "cfo@example.com");

        using var decided = await _http.PostAsync(reject, null);
        Assert.That(decided.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        var done = await WaitDoneAsync("appr-2");
        Assert.That(done.GetProperty("output").GetProperty("decision").GetString(), Is.EqualTo("reject"));

        using var change = await _http.PostAsync(approve, null);
        Assert.That(change.StatusCode, Is.EqualTo(HttpStatusCode.Conflict), "one decision per approver");
    }

    [Test]
    public async Task ForgedAlteredGarbageAndExpiredTokens_AreRefused_AndDecideNothing()
    {
        var (approve, _) = await StartAndReadLinksAsync("appr-3", "cto@example.com");
        var token = approve["/approve/".Length..];
        var (payload, signature) = (token[..token.IndexOf('.', StringComparison.Ordinal)], token[(token.IndexOf('.', StringComparison.Ordinal) + 1)..]);
        var forgedSignature = payload + "." + (signature[0] == 'A' ? 'B' : 'A') + signature[1..];
        var alteredPayload = (payload[0] == 'e' ? 'f' : 'e') + payload[1..] + "." + signature;
        var otherKey = new ApprovalTokens(Options.Create(new ApprovalOptions { SigningKey = Convert.ToBase64String(new byte[32]) }), TimeProvider.System)
            .Create("appr-3", "approval", "approve", "cto@example.com", DateTimeOffset.UtcNow.AddDays(1));
        var expired = Tokens().Create("appr-3", "approval", "approve", "cto@example.com", DateTimeOffset.UtcNow.AddMinutes(-1));

        foreach (var (bad, expected) in new[] { (forgedSignature, 403), (alteredPayload, 403), (otherKey, 403), ("not-a-token", 403), (expired, 410) })
        {
            using var get = await _http.GetAsync($"/approve/{bad}");
            Assert.That((int)get.StatusCode, Is.EqualTo(expected), bad);
            using var post = await _http.PostAsync($"/approve/{bad}", null);
            Assert.That((int)post.StatusCode, Is.EqualTo(expected), bad);
            Assert.That(await post.Content.ReadAsStringAsync(), Does.Contain("Nothing changed"));
        }

        Assert.That((await StatusAsync("appr-3")).GetProperty("runtimeStatus").GetString(), Is.EqualTo("Running"));
        using var genuine = await _http.PostAsync(approve, null);
        Assert.That(genuine.StatusCode, Is.EqualTo(HttpStatusCode.OK), "the genuine link still works after the attacks");
    }

    [Test]
    public async Task TokenForFinishedInstance_Gets410Page()
    {
        using var start = await _http.PostAsync("/api/orchestrators/HelloCities/hello-done", new StringContent("[\"Oslo\"]", Encoding.UTF8, "application/json"));
        await WaitDoneAsync("hello-done");
        var token = Tokens().Create("hello-done", "approval", "approve", "x@example.com", DateTimeOffset.UtcNow.AddDays(1));

        using var post = await _http.PostAsync($"/approve/{token}", null);

        Assert.That(post.StatusCode, Is.EqualTo(HttpStatusCode.Gone));
    }

    [GeneratedRegex(@"https?://[^/\s]+(/approve/[A-Za-z0-9_\-\.]+)")]
    private static partial Regex Link();
}
