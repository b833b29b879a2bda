using DurableAgents.Tests.Support;
using DurableAgents.Engine.Postgres;
using DurableAgents.Engine.Testing;
using DurableAgents.Engine.Tests.Support;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using NUnit.Framework;

namespace DurableAgents.Engine.Tests.Runtime;

/// <summary>
/// A client waiting for an instance that another host runs is woken by PostgreSQL's notification
/// of the commit, not by polling: the client's fallback poll runs on a fake clock that never
/// advances, so only the notification can end the wait.
/// </summary>
public sealed class WaitNotificationTests
{
    [Test]
    public async Task WaitForInstanceCompletion_InstanceFinishedByAnotherHost_WokenByNotification()
    {
        var cs = StoreKinds.PostgresConnectionString ?? throw new IgnoreException("no PostgreSQL server: run scripts/test.sh");
        var hub = "n" + Guid.NewGuid().ToString("N")[..12];
        var gate = new Gate();
        try
        {
            await using var worker = await DurableAgentsTestHost.StartAsync(
                b => b.UsePostgres(cs, hub).AddTasks(r => r
                    .AddOrchestratorFunc<object?, string>("Gated", (ctx, _) => ctx.CallActivityAsync<string>(nameof(GateActivity)))
                    .AddActivity<GateActivity>()),
                services: s => s.AddSingleton(gate));
            await using var client = await DurableAgentsTestHost.StartAsync(
                b => b.UsePostgres(cs, hub).AddTasks(r => r.AddOrchestratorFunc<object?, string>("Gated", (ctx, _) => Task.FromResult("client-only"))),
                o => o.EnableWorker = false,
                timeProvider: new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow));
            var id = await client.Client.ScheduleNewOrchestrationInstanceAsync("Gated");
            await gate.Entered.Task.WaitAsync(TestTimeout.Token());

            var waiting = client.Client.WaitForInstanceCompletionAsync(id, true, TestTimeout.Token());
            Assert.That(waiting.IsCompleted, Is.False, "the instance is still running");
            gate.Open.TrySetResult();
            var done = await waiting;

            Assert.That(done.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Completed));
            Assert.That(done.ReadOutputAs<string>(), Is.EqualTo("open"));
        }
        finally
        {
            StoreKinds.DropHub(cs, hub);
        }
    }
}
