using System.Collections.Concurrent;
using System.Diagnostics;
using DurableAgents.Engine.Postgres;
using DurableAgents.Engine.Storage;
using DurableAgents.Engine.Testing;
using DurableAgents.Engine.Tests.Support;
using DurableAgents.Tests.Support;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using NUnit.Framework;

namespace DurableAgents.Engine.Tests.Crash;

/// <summary>
/// Recovery by heartbeat, with real processes and SIGKILL. The hosts' leases last five minutes, so
/// only the heartbeat mechanism can move the work within the tests' time limits: a survivor releases
/// a dead host's leases, and a host restarting under its id releases its previous run's at start.
/// </summary>
public sealed partial class CrashRecoveryTests
{
    private const string FiveMinutes = "300";

    [Test]
    public async Task SqliteHost_KilledAndRestartedUnderItsId_ReclaimsItsLeasesAtStart()
    {
        const int steps = 12;
        var db = Path.Combine(_dir, "store.db");
        var side = Path.Combine(_dir, "steps.log");
        var env = new Dictionary<string, string> { ["CRASHHOST_WORKER_ID"] = "solo", ["CRASHHOST_LEASE_SECONDS"] = FiveMinutes };
        var token = TestTimeout.Token(90);

        using (var first = CrashHosts.Start(env, "sqlite", db, side, "start", "r-1", steps.ToString(System.Globalization.CultureInfo.InvariantCulture)))
        {
            await WaitForStepsAsync(side, 4, first, token);
            first.Kill(entireProcessTree: true);
            await first.WaitForExitAsync(token);
            TestContext.Out.WriteLine($"killed after {SideFiles.ReadAll(side).Count(c => c == '\n')} steps; first output: {await first.StandardOutput.ReadToEndAsync(token)}");
        }

        using var second = CrashHosts.Start(env, "sqlite", db, side, "resume", "r-1", steps.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var output = await second.StandardOutput.ReadToEndAsync(token);
        await second.WaitForExitAsync(token);

        Assert.That(second.ExitCode, Is.Zero, output);
        Assert.That(output, Does.Contain($"Completed {Enumerable.Range(1, steps).Sum()}"));
        var registered = System.Text.RegularExpressions.Regex.Match(output, @"Host solo \(configured id\) registered; released (\d+) orchestration and (\d+) activity leases its previous run held");
        Assert.That(registered.Success, Is.True, output);
        Assert.That(int.Parse(registered.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) + int.Parse(registered.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture), Is.GreaterThan(0), "what the killed run held was released at start, not after its 5-minute lease");
    }

    [Test]
    public async Task SqliteHost_RestartedUnderANewId_ReleasesTheDeadRunsLeasesOnceItsHeartbeatIsOld()
    {
        const int steps = 8;
        var db = Path.Combine(_dir, "store.db");
        var side = Path.Combine(_dir, "steps.log");
        var token = TestTimeout.Token(90);

        using (var first = CrashHosts.Start(new Dictionary<string, string> { ["CRASHHOST_WORKER_ID"] = "run-1", ["CRASHHOST_LEASE_SECONDS"] = FiveMinutes }, "sqlite", db, side, "start", "r-2", steps.ToString(System.Globalization.CultureInfo.InvariantCulture)))
        {
            await WaitForStepsAsync(side, 3, first, token);
            first.Kill(entireProcessTree: true);
            await first.WaitForExitAsync(token);
        }

        using var second = CrashHosts.Start(new Dictionary<string, string> { ["CRASHHOST_WORKER_ID"] = "run-2", ["CRASHHOST_LEASE_SECONDS"] = FiveMinutes }, "sqlite", db, side, "resume", "r-2", steps.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var output = await second.StandardOutput.ReadToEndAsync(token);
        await second.WaitForExitAsync(token);

        Assert.That(second.ExitCode, Is.Zero, output);
        Assert.That(output, Does.Contain($"Completed {Enumerable.Range(1, steps).Sum()}"));
        Assert.That(output, Does.Match(@"Host run-1 stopped heartbeating .*released its \d+ orchestration and \d+ activity leases"), output);
    }

    [Test]
    public async Task PostgresHosts_OneSigKilled_TheOtherReleasesItsLeasesAndFinishesEverything()
    {
        var cs = StoreKinds.PostgresConnectionString;
        if (cs is null)
        {
            Assert.Ignore("no PostgreSQL server: run scripts/test.sh");
        }

        const int workflows = 60;
        const int steps = 5;
        var hub = "r" + Guid.NewGuid().ToString("N")[..12];
        var side = Path.Combine(_dir, "steps.log");
        var token = TestTimeout.Token(120);
        var hosts = new List<(Process Process, ConcurrentQueue<string> Lines, Task Reader)>();
        try
        {
            await using var client = await DurableAgentsTestHost.StartAsync(
                b => b.AddOrchestratorFunc<int, int>("Sequential", int (_, _) => throw new NotSupportedException("runs in the worker processes")),
                o => o.EnableWorker = false,
                storeFactory: _ => new PostgresOrchestrationStore(cs, hub));
            foreach (var id in new[] { "host-a", "host-b" })
            {
                var p = CrashHosts.Start(new Dictionary<string, string> { ["CRASHHOST_WORKER_ID"] = id, ["CRASHHOST_LEASE_SECONDS"] = FiveMinutes }, "pg-worker", cs, hub, side);
                var early = new List<string>();
                Assert.That(await CrashHosts.WaitReadyAsync(p, early, token), Is.True, string.Join("\n", early));
                var lines = new ConcurrentQueue<string>(early);
                hosts.Add((p, lines, DrainAsync(p, lines)));
            }

            for (var i = 0; i < workflows; i++)
            {
                await client.Client.ScheduleNewOrchestrationInstanceAsync("Sequential", steps, new StartOrchestrationOptions { InstanceId = $"w-{i:D3}" }, token);
            }

            var victim = hosts[0].Process;
            var victimPid = victim.Id.ToString(System.Globalization.CultureInfo.InvariantCulture);
            await WaitForStepsAsync(side, workflows * steps / 4, victim, token);
            victim.Kill(entireProcessTree: true);
            await victim.WaitForExitAsync(token);
            var killedAt = Stopwatch.GetTimestamp();

            var done = 0;
            while (done < workflows)
            {
                Assert.That(hosts[1].Process.HasExited, Is.False, "the surviving host died");
                done = (await client.Backend.QueryInstancesAsync(new InstanceQuery { Statuses = [OrchestrationRuntimeStatus.Completed], PageSize = 1000 }, token)).Instances.Count;
                await Task.Delay(50, token);
            }

            var drained = Stopwatch.GetElapsedTime(killedAt);
            var survivorLog = string.Join("\n", hosts[1].Lines);
            Assert.That(survivorLog, Does.Match(@"Host host-a stopped heartbeating .*released its \d+ orchestration and \d+ activity leases"), survivorLog);
            var runs = SideFiles.ReadAll(side).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ', 2)).ToList();
            Assert.That(runs.Any(r => r[0] == victimPid), Is.True, "the killed host had done work");
            Assert.That(runs.Select(r => r[1]).Distinct().Count(), Is.EqualTo(workflows * steps), "every step ran");
            Assert.That(await client.Backend.GetHostsAsync(token), Has.Count.EqualTo(1), "the dead host's row was removed");
            TestContext.Out.WriteLine($"drain after the kill: {drained.TotalSeconds:F1} s (leases: 300 s)");
        }
        finally
        {
            foreach (var (p, _, reader) in hosts)
            {
                if (!p.HasExited)
                {
                    p.Kill(entireProcessTree: true);
                }

                await reader.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                p.Dispose();
            }

            StoreKinds.DropHub(cs, hub);
        }
    }

    private static async Task DrainAsync(Process p, ConcurrentQueue<string> lines)
    {
        while (await p.StandardOutput.ReadLineAsync() is { } line)
        {
            lines.Enqueue(line);
        }
    }

    private static async Task WaitForStepsAsync(string side, int count, Process host, CancellationToken token)
    {
        while (SideFiles.ReadAll(side).Count(c => c == '\n') < count)
        {
            if (host.HasExited)
            {
                Assert.Fail("the host exited before it could be killed: " + await host.StandardError.ReadToEndAsync(token));
            }

            await Task.Delay(20, token);
        }
    }
}
