using DurableAgents.Engine.Hosting;
using DurableAgents.Engine.Testing;
using DurableAgents.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using NUnit.Framework;

namespace DurableAgents.Engine.Tests.Runtime;

/// <summary>The heartbeat service in a host: registered at start, beating, gone after a graceful stop; bad settings refused.</summary>
public sealed class HostLivenessTests
{
    [Test]
    public async Task Host_RegistersAtStart_Beats_AndRemovesItsRowAtStop()
    {
        var dir = Path.Combine(Path.GetTempPath(), "durableagents-liveness", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var cs = $"Data Source={Path.Combine(dir, "store.db")}";
        try
        {
            var host = await DurableAgentsTestHost.StartAsync(
                r => r.AddOrchestratorFunc<int, int>("Echo", (_, n) => n),
                o => o.WorkerId = "liveness-1",
                storeFactory: _ => new Sqlite.SqliteOrchestrationStore(cs));
            var liveness = host.Services.GetRequiredService<HostLiveness>();
            var rows = await host.Backend.GetHostsAsync();
            Assert.That(rows.Select(h => (h.HostId, h.Incarnation)), Is.EqualTo(new[] { ("liveness-1", host.Services.GetRequiredService<HostIdentity>().Incarnation) }));

            var released = await liveness.BeatAsync(TestTimeout.Token(10));
            Assert.That(released, Is.Empty);
            Assert.That(liveness.Heartbeats, Is.GreaterThanOrEqualTo(1));
            await host.DisposeAsync();

            using var store = new Sqlite.SqliteOrchestrationStore(cs);
            Assert.That(await store.GetHostsAsync(), Is.Empty, "a graceful stop removes the row");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Test]
    public async Task ASilentHost_IsReleasedAfterDeadAfter_OnTheObserversClock_WhateverTheOtherHostsClocksSay()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(new DateTimeOffset(2026, 6, 1, 12, 0, 0, TimeSpan.Zero));
        await using var host = await DurableAgentsTestHost.StartAsync(
            r => r.AddOrchestratorFunc<int, int>("Echo", (_, n) => n),
            o => o.WorkerId = "observer",
            timeProvider: time);
        var store = host.Store;
        var liveness = host.Services.GetRequiredService<HostLiveness>();
        var token = TestTimeout.Token(30);

        // Two other hosts whose clocks are an hour off either way; "behind" keeps beating, "ahead" stops.
        // (The host's own heartbeat loop also beats when fake time advances: the store is what is asserted.)
        async Task<string[]> HostsAsync() => (await store.GetHostsAsync(token)).Select(h => h.HostId).Order(StringComparer.Ordinal).ToArray();
        await store.RegisterHostAsync("behind", "b1", time.GetUtcNow().AddHours(-1), token);
        await store.RegisterHostAsync("ahead", "a1", time.GetUtcNow().AddHours(1), token);
        await liveness.BeatAsync(token);
        Assert.That(await HostsAsync(), Is.EqualTo(new[] { "ahead", "behind", "observer" }), "first sight of both: nothing is judged yet");

        time.Advance(TimeSpan.FromSeconds(1.9));
        await store.HeartbeatAsync("behind", "b1", time.GetUtcNow().AddHours(-1), token);
        await liveness.BeatAsync(token);
        Assert.That(await HostsAsync(), Is.EqualTo(new[] { "ahead", "behind", "observer" }), "1.9 s of silence is not 2 s");

        time.Advance(TimeSpan.FromSeconds(0.2));
        await store.HeartbeatAsync("behind", "b1", time.GetUtcNow().AddHours(-1), token);
        await liveness.BeatAsync(token);

        Assert.That(await HostsAsync(), Is.EqualTo(new[] { "behind", "observer" }), "the silent host went; the one whose clock is an hour behind but beats stayed");
    }

    [Test]
    public async Task DeadAfter_ShorterThanTwoIntervals_FailsStart_NamingTheSettings()
    {
        var ex = await Assert.ThrowsAsync<OptionsValidationException>(async () => await DurableAgentsTestHost.StartAsync(
            r => r.AddOrchestratorFunc<int, int>("Echo", (_, n) => n),
            o =>
            {
                o.HostHeartbeatInterval = TimeSpan.FromSeconds(1);
                o.HostDeadAfter = TimeSpan.FromSeconds(1.5);
            }));
        Assert.That(ex!.Message, Does.Contain("DurableAgents:HostDeadAfter").And.Contain("DurableAgents:HostHeartbeatInterval"));
    }

    [Test]
    public async Task WorkerId_WithSlash_FailsStart()
    {
        var ex = await Assert.ThrowsAsync<OptionsValidationException>(async () => await DurableAgentsTestHost.StartAsync(
            r => r.AddOrchestratorFunc<int, int>("Echo", (_, n) => n),
            o => o.WorkerId = "a/b"));
        Assert.That(ex!.Message, Does.Contain("DurableAgents:WorkerId must not contain '/'"));
    }
}
