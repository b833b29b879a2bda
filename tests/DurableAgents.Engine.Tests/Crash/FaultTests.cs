using DurableAgents.Tests.Support;
using System.Diagnostics;
using DurableAgents.Engine.Client;
using DurableAgents.Engine.Postgres;
using DurableAgents.Engine.Redis;
using DurableAgents.Engine.Storage;
using DurableAgents.Engine.Testing;
using DurableAgents.Engine.Tests.Support;
using Microsoft.Extensions.Logging;
using NUnit.Framework;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Engine.Tests.Crash;

/// <summary>Infrastructure faults: the database restarts, Redis dies, the database is unreachable at start.</summary>
// Restarts and kills servers of its own (scripts/services.sh starts a "fault" PostgreSQL and Redis for these tests
// alone): a restart of the shared servers would cut connections of tests running in other test assemblies.
[NonParallelizable]
public sealed class FaultTests
{
    private static string Env(string name) =>
        Environment.GetEnvironmentVariable(name) ?? throw new IgnoreException($"{name} is not set: run scripts/test.sh");

    private static void Register(DurableTaskRegistry b) => b
        .AddOrchestratorFunc<int, int>("Five", async (ctx, n) =>
        {
            var sum = 0;
            for (var i = 0; i < 5; i++)
            {
                sum += await ctx.CallActivityAsync<int>("Slow", n + i);
            }

            return sum;
        })
        .AddActivityFunc<int, int>("Slow", async (ctx, i) =>
        {
            await Task.Delay(20, ctx.GetCancellationToken());
            return i;
        });

    private static async Task RunShellAsync(string script, params string[] args)
    {
        var psi = new ProcessStartInfo(script) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        await p.WaitForExitAsync(TestTimeout.Token(90));
        Assert.That(p.ExitCode, Is.Zero, await p.StandardError.ReadToEndAsync());
    }

    /// <summary>Counts completed instances, riding out store errors while a server is down.</summary>
    private static async Task WaitForCompletedAsync(DurableAgentsClient client, int expected, int seconds)
    {
        var token = TestTimeout.Token(seconds);
        while (true)
        {
            try
            {
                var done = await client.QueryInstancesAsync(new InstanceQuery { Statuses = [OrchestrationRuntimeStatus.Completed], PageSize = 1000 }, token);
                if (done.Instances.Count >= expected)
                {
                    return;
                }
            }
            catch (Exception ex) when (ex is Npgsql.NpgsqlException or InvalidOperationException or TimeoutException)
            {
                // the server is restarting
            }

            await Task.Delay(50, token);
        }
    }

    [Test]
    public async Task PostgresRestartedMidRun_HostsReconnect_AndEveryWorkflowFinishes()
    {
        var cs = Env("DURABLEAGENTS_TEST_FAULT_POSTGRES");
        var pgCtl = Env("DURABLEAGENTS_TEST_FAULT_PG_CTL");
        var hub = "f" + Guid.NewGuid().ToString("N")[..12];
        try
        {
            await using var host = await DurableAgentsTestHost.StartAsync(
                Register,
                o =>
                {
                    o.OrchestrationLease = TimeSpan.FromSeconds(3);
                    o.ActivityLease = TimeSpan.FromSeconds(3);
                },
                storeFactory: _ => new PostgresOrchestrationStore(cs, hub));
            for (var i = 0; i < 40; i++)
            {
                await host.Client.ScheduleNewOrchestrationInstanceAsync("Five", i * 10, new StartOrchestrationOptions { InstanceId = $"r-{i:D2}" });
            }

            await WaitForCompletedAsync(host.Backend, 5, 60);
            await RunShellAsync(pgCtl, "restart", "-m", "fast");
            await WaitForCompletedAsync(host.Backend, 40, 120);

            var all = (await host.Backend.QueryInstancesAsync(new InstanceQuery { PageSize = 100, FetchInputsAndOutputs = true })).Instances;
            Assert.That(all.Select(i => i.Status).Distinct(), Is.EqualTo(new[] { OrchestrationRuntimeStatus.Completed }));
            Assert.That(all.Single(i => i.InstanceId == "r-03").Output, Is.EqualTo((150 + 10).ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }
        finally
        {
            StoreKinds.DropHub(cs, hub);
        }
    }

    [Test]
    public async Task PostgresUnreachableAtStart_StartupFails_NamingTheSetting_WithoutThePassword()
    {
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => DurableAgentsTestHost.StartAsync(
            Register,
            storeFactory: _ => new PostgresOrchestrationStore("Host=127.0.0.1;Port=1;Username=app;Password=hunter2-secret;Database=agents;Timeout=3", "x")));

        Assert.That(ex!.Message, Does.Contain("DurableAgents:Postgres:ConnectionString").And.Contain("127.0.0.1:1").And.Contain("agents"));
        Assert.That(ex.ToString(), Does.Not.Contain("hunter2-secret"));
    }

    [Test]
    public async Task RedisNotifications_WakeAnIdleHostThatDoesNotPoll()
    {
        var redis = Env("DURABLEAGENTS_TEST_REDIS");
        var (factory, cleanup) = StoreKinds.Create("sqlite");
        var hub = "w" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            // The worker polls only every 60 s: finishing sooner proves the Redis wake-up arrived.
            await using var worker = await DurableAgentsTestHost.StartAsync(
                b => b.UseRedisNotifications(redis, hub).AddTasks(Register),
                o =>
                {
                    o.MinPollInterval = TimeSpan.FromSeconds(60);
                    o.MaxPollInterval = TimeSpan.FromSeconds(60);
                },
                storeFactory: factory);
            await using var client = await DurableAgentsTestHost.StartAsync(
                b => b.UseRedisNotifications(redis, hub).AddTasks(Register),
                o => o.EnableWorker = false,
                storeFactory: factory);
            await Task.Delay(200); // let the worker's first poll find nothing and go to sleep

            var id = await client.Client.ScheduleNewOrchestrationInstanceAsync("Five", 1);
            var done = await client.Client.WaitForInstanceCompletionAsync(id, true, TestTimeout.Token(20));

            Assert.That(done.ReadOutputAs<int>(), Is.EqualTo(15));
        }
        finally
        {
            cleanup();
        }
    }

    [Test]
    public async Task RedisKilledMidRun_WorkflowsStillFinish()
    {
        var redis = Env("DURABLEAGENTS_TEST_FAULT_REDIS");
        var stop = Env("DURABLEAGENTS_TEST_FAULT_REDIS_STOP");
        var start = Env("DURABLEAGENTS_TEST_FAULT_REDIS_START");
        var (factory, cleanup) = StoreKinds.Create("sqlite");
        var logs = new CapturingLoggerProvider();
        try
        {
            await using var a = await DurableAgentsTestHost.StartAsync(b => b.UseRedisNotifications(redis, "k").AddTasks(Register), o => o.MaxPollInterval = TimeSpan.FromMilliseconds(200), storeFactory: factory, loggerProvider: logs);
            await using var b = await DurableAgentsTestHost.StartAsync(b => b.UseRedisNotifications(redis, "k").AddTasks(Register), o => o.MaxPollInterval = TimeSpan.FromMilliseconds(200), storeFactory: factory);
            for (var i = 0; i < 30; i++)
            {
                await a.Client.ScheduleNewOrchestrationInstanceAsync("Five", i);
            }

            await WaitForCompletedAsync(a.Backend, 3, 60);
            await RunShellAsync(stop);
            var token = TestTimeout.Token(30);
            while (!logs.Entries.Any(e => e.Id.Id == 1200))
            {
                await Task.Delay(20, token); // the outage is noticed and logged as a warning
            }

            // Work started while Redis is down still completes (hosts poll).
            for (var i = 0; i < 20; i++)
            {
                await b.Client.ScheduleNewOrchestrationInstanceAsync("Five", 100 + i);
            }

            await WaitForCompletedAsync(a.Backend, 50, 120);

            Assert.That(logs.Entries.Where(e => e.Level >= LogLevel.Error).Select(e => e.Message), Is.Empty, "a Redis outage is not an error");
        }
        finally
        {
            await RunShellAsync(start);
            cleanup();
        }
    }
}
