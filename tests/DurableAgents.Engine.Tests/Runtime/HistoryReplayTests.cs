using DurableAgents.Tests.Support;
using DurableAgents.Engine.Testing;
using DurableAgents.Engine.Tests.Support;
using NUnit.Framework;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableAgents.Engine.Tests.Runtime;

/// <summary>
/// Checked-in histories recorded from real runs must keep replaying against the current code on
/// the SDK's runner: a change that would break in-flight instances fails here, not in production.
/// </summary>
public sealed class HistoryReplayTests
{
    private static IReadOnlyList<P.HistoryEvent> LoadHistory(string name) =>
        HistoryReplayer.Load(File.ReadAllText(Path.Combine(TestContext.CurrentContext.TestDirectory, "Histories", name)));

    [Test]
    public void Replay_RecordedSequentialGreeting_CurrentCodeIsDeterministic()
    {
        var history = LoadHistory("SequentialGreeting.v2.json");

        var failure = HistoryReplayer.Replay(new SequentialGreeting(), history);

        Assert.That(failure, Is.Null);
        Assert.That(history.Count(e => e.TaskScheduled is not null), Is.EqualTo(3), "the recording is a complete three-step run");
    }

    [Test]
    public void Replay_RecordedSequentialGreeting_ChangedCodeFailsNamingBothActivities()
    {
        var history = LoadHistory("SequentialGreeting.v2.json");

        var failure = HistoryReplayer.Replay(new SequentialGreetingChanged(), history);

        Assert.That(failure, Is.Not.Null);
        Assert.That(failure!.ErrorMessage, Does.Contain("SayHello").And.Contain("Audit"));
    }

    [Test]
    public void Replay_HistoryWithExtraTaskTheCodeDoesNotSchedule_Fails()
    {
        var history = LoadHistory("SequentialGreeting.v2.json").Select(e => e.Clone()).ToList();
        history.First(e => e.ExecutionStarted is not null).ExecutionStarted.Input = "[\"Tokyo\"]";

        var failure = HistoryReplayer.Replay(new SequentialGreeting(), history);

        Assert.That(failure, Is.Not.Null);
        Assert.That(failure!.ErrorMessage, Does.Contain("SayHello"));
    }

    /// <summary>Records the checked-in history. Run by hand after an intentional format change: dotnet test --filter Record.</summary>
    [Test]
    [Explicit("writes Histories/SequentialGreeting.v2.json in the source tree")]
    [Category("Recording")]
    public async Task Record_SequentialGreeting()
    {
        await using var host = await DurableAgentsTestHost.StartAsync(r => r
            .AddOrchestrator<SequentialGreeting>()
            .AddActivityFunc<string, string>("SayHello", (_, city) => $"Hello {city}!"));
        var id = await host.Client.ScheduleNewOrchestrationInstanceAsync(nameof(SequentialGreeting), new[] { "Tokyo", "Seattle", "London" });
        await host.Client.WaitForInstanceCompletionAsync(id, false, TestTimeout.Token());
        var history = await host.Backend.GetHistoryEventsAsync(id);
        var source = Path.GetFullPath(Path.Combine(TestContext.CurrentContext.TestDirectory, "../../../Histories/SequentialGreeting.v2.json"));
        await File.WriteAllTextAsync(source, HistoryReplayer.Save(history) + "\n");
    }
}
