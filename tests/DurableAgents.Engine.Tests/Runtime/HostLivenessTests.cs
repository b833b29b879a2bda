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

            var beat = await liveness.BeatAsync(TestTimeout.Token(10));
            Assert.That(beat.Own, Is.EqualTo(DurableAgents.Engine.Storage.HostRowState.Ok));
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
