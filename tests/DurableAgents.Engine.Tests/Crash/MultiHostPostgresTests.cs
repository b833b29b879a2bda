using DurableAgents.Tests.Support;
using DurableAgents.Engine.Client;
using DurableAgents.Engine.Postgres;
using DurableAgents.Engine.Storage;
using DurableAgents.Engine.Testing;
using DurableAgents.Engine.Tests.Support;
using NUnit.Framework;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Engine.Tests.Crash;

/// <summary>
/// Three host processes share one PostgreSQL database; one is SIGKILLed mid-run. The survivors
/// take over its leases and finish everything; only activities in flight at the kill may repeat.
/// </summary>
[NonParallelizable] // four processes on two cores: keep the machine to ourselves
public sealed class MultiHostPostgresTests
{
    private const int Workflows = 500;
    private const int Steps = 5;
    private const int KilledHostActivitySlots = 8; // CrashHost's MaxConcurrentActivities

    [Test]
    public async Task ThreeHosts_OneSigKilledMidRun_All500Complete_NoCompletedActivityRanTwice()
    {
        var cs = StoreKinds.PostgresConnectionString;
        if (cs is null)
        {
            Assert.Ignore("no PostgreSQL server: run scripts/test.sh");
        }

        var hub = "m" + Guid.NewGuid().ToString("N")[..12];
        var side = Path.Combine(Path.GetTempPath(), $"durableagents-multihost-{hub}.log");
        var hosts = new List<System.Diagnostics.Process>();
        try
        {
            // This process is a client only: the three worker processes do all the work.
            await using var client = await DurableAgentsTestHost.StartAsync(
                b => b.AddOrchestratorFunc<int, int>("Sequential", int (_, _) => throw new NotSupportedException("runs in the worker processes")),
                o => o.EnableWorker = false,
                storeFactory: _ => new PostgresOrchestrationStore(cs, hub));
            for (var i = 0; i < 3; i++)
            {
                var host = CrashHosts.Start("pg-worker", cs, hub, side);
                hosts.Add(host);
                Assert.That(await CrashHosts.WaitReadyAsync(host, new List<string>(), TestTimeout.Token(60)), Is.True, await ErrorsOf(host));
            }

            for (var i = 0; i < Workflows; i++)
            {
                await client.Client.ScheduleNewOrchestrationInstanceAsync("Sequential", Steps, new StartOrchestrationOptions { InstanceId = $"w-{i:D3}" });
            }

            var victim = hosts[0];
            var token = TestTimeout.Token(120);
            while (ReadLines(side).Count < Workflows * Steps / 3)
            {
                await Task.Delay(20, token);
            }

            victim.Kill(entireProcessTree: true); // SIGKILL
            await victim.WaitForExitAsync(token);
            var beforeKill = ReadLines(side);

            while ((await client.Backend.QueryInstancesAsync(new InstanceQuery { Statuses = [OrchestrationRuntimeStatus.Completed], PageSize = 1000 }, token)).Instances.Count < Workflows)
            {
                Assert.That(hosts.Skip(1).All(h => !h.HasExited), Is.True, "a surviving host died");
                await Task.Delay(100, token);
            }

            var all = (await client.Backend.QueryInstancesAsync(new InstanceQuery { PageSize = 1000, FetchInputsAndOutputs = true })).Instances;
            Assert.That(all, Has.Count.EqualTo(Workflows));
            Assert.That(all.Where(i => i.Status != OrchestrationRuntimeStatus.Completed), Is.Empty, "no instance is left Running");
            Assert.That(all.Select(i => int.Parse(i.Output!, System.Globalization.CultureInfo.InvariantCulture)).Distinct(), Is.EqualTo(new[] { Enumerable.Range(1, Steps).Sum() }));

            var lines = ReadLines(side);
            var victimPid = victim.Id.ToString(System.Globalization.CultureInfo.InvariantCulture);
            Assert.That(beforeKill.Any(l => l.Pid == victimPid), Is.True, "the killed host had done work before the kill");
            var runs = lines.GroupBy(l => l.Step).ToDictionary(g => g.Key, g => g.Count());
            Assert.That(runs.Count, Is.EqualTo(Workflows * Steps), "every activity ran");
            var repeated = runs.Where(kv => kv.Value > 1).Select(kv => kv.Key).ToList();
            TestContext.Out.WriteLine($"{lines.Count} activity executions for {Workflows * Steps} activities; repeated after the kill: {repeated.Count} ({string.Join(", ", repeated)})");
            Assert.That(repeated.Count, Is.LessThanOrEqualTo(KilledHostActivitySlots), "only activities in flight on the killed host may run twice");
            Assert.That(runs.Values.Max(), Is.LessThanOrEqualTo(2));
        }
        finally
        {
            foreach (var h in hosts.Where(h => !h.HasExited))
            {
                h.Kill(entireProcessTree: true);
            }

            hosts.ForEach(h => h.Dispose());
            SideFiles.Delete(side);
            StoreKinds.DropHub(cs, hub);
        }
    }

    private static async Task<string> ErrorsOf(System.Diagnostics.Process p) =>
        p.HasExited ? await p.StandardError.ReadToEndAsync() : "host did not report ready";

    private static List<(string Pid, string Step)> ReadLines(string path)
    {
        return SideFiles.ReadAll(path).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ', 2))
            .Select(p => (p[0], p[1]))
            .ToList();
    }
}
