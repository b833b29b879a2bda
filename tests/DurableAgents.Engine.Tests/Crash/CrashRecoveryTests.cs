using DurableAgents.Tests.Support;
using System.Diagnostics;
using DurableAgents.Engine.Tests.Support;
using NUnit.Framework;

namespace DurableAgents.Engine.Tests.Crash;

/// <summary>
/// A real crash: the host process is SIGKILLed mid-workflow and a new process on the same SQLite
/// file finishes it. Completed activities must not run again; only the one in flight may.
/// Recovery by heartbeat (leases of minutes, moved in seconds) is in CrashRecoveryTests.Heartbeats.cs.
/// </summary>
[NonParallelizable] // two host processes and tight timing: keep the machine to ourselves
public sealed partial class CrashRecoveryTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "durableagents-crash", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown()
    {
        try
        {
            Directory.Delete(_dir, true);
        }
        catch (IOException)
        {
        }
    }

    [Test]
    public async Task SigKillMidWorkflow_NewProcessFinishes_CompletedActivitiesRanExactlyOnce()
    {
        const int steps = 20;
        var db = Path.Combine(_dir, "store.db");
        var side = Path.Combine(_dir, "steps.log");

        using var first = CrashHosts.Start("sqlite", db, side, "start", "crash-1", steps.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var token = TestTimeout.Token(90);
        while (ReadSteps(side).Count < 6)
        {
            Assert.That(first.HasExited, Is.False, "the first host exited before it could be killed");
            await Task.Delay(20, token);
        }

        first.Kill(entireProcessTree: true); // SIGKILL on Linux: no shutdown code runs
        await first.WaitForExitAsync(token);
        var beforeKill = ReadSteps(side);
        Assert.That(beforeKill.Count, Is.LessThan(steps), "the kill must land mid-workflow");

        using var second = CrashHosts.Start("sqlite", db, side, "resume", "crash-1", steps.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var output = await second.StandardOutput.ReadToEndAsync(token);
        await second.WaitForExitAsync(token);

        Assert.That(second.ExitCode, Is.Zero, output + await second.StandardError.ReadToEndAsync(token));
        Assert.That(output, Does.Contain($"Completed {Enumerable.Range(1, steps).Sum()}"));
        var all = ReadSteps(side);
        var counts = all.GroupBy(s => s).ToDictionary(g => g.Key, g => g.Count());
        Assert.That(counts.Keys.Order(), Is.EqualTo(Enumerable.Range(0, steps)), "every step ran");
        var repeated = counts.Where(kv => kv.Value > 1).Select(kv => kv.Key).ToList();
        Assert.That(repeated.Count, Is.LessThanOrEqualTo(1), $"only the in-flight step may repeat; repeated: {string.Join(",", repeated)}");
        if (repeated.Count == 1)
        {
            Assert.That(repeated[0], Is.EqualTo(beforeKill.Max()), "the repeated step must be the one in flight at the kill");
            Assert.That(counts[repeated[0]], Is.EqualTo(2));
        }

        foreach (var step in beforeKill.Where(s => s < beforeKill.Max()))
        {
            Assert.That(counts[step], Is.EqualTo(1), $"step {step} completed before the kill and must not run again");
        }
    }

    private static List<int> ReadSteps(string path)
    {
        return SideFiles.ReadAll(path).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => int.Parse(l[(l.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture)).ToList();
    }
}
