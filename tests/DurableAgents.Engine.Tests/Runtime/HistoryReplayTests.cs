using DurableAgents.Engine.History;
using DurableAgents.Engine.Testing;
using DurableAgents.Engine.Tests.Support;
using NUnit.Framework;

namespace DurableAgents.Engine.Tests.Runtime;

/// <summary>
/// Checked-in histories recorded from real runs must keep replaying against the current code:
/// a change that would break in-flight instances fails here, not in production.
/// </summary>
public sealed class HistoryReplayTests
{
    private static IReadOnlyList<HistoryEvent> LoadHistory(string name) =>
        HistoryReplayer.Load(File.ReadAllText(Path.Combine(TestContext.CurrentContext.TestDirectory, "Histories", name)));

    [Test]
    public void Replay_RecordedSequentialGreeting_CurrentCodeIsDeterministic()
    {
        var history = LoadHistory("SequentialGreeting.v1.json");

        var failure = HistoryReplayer.Replay(new SequentialGreeting(), history);

        Assert.That(failure, Is.Null);
        Assert.That(history.OfType<TaskScheduledEvent>().Count(), Is.EqualTo(3), "the recording is a complete three-step run");
    }

    [Test]
    public void Replay_RecordedSequentialGreeting_ChangedCodeFailsNamingBothActivities()
    {
        var history = LoadHistory("SequentialGreeting.v1.json");

        var failure = HistoryReplayer.Replay(new SequentialGreetingChanged(), history);

        Assert.That(failure, Is.Not.Null);
        Assert.That(failure!.ErrorType, Is.EqualTo(ErrorTypes.NonDeterminism));
        Assert.That(failure.ErrorMessage, Does.Contain("'SayHello'").And.Contain("'Audit'"));
    }

    [Test]
    public void Replay_HistoryWithExtraTaskTheCodeDoesNotSchedule_FailsAsNonDeterministic()
    {
        var history = LoadHistory("SequentialGreeting.v1.json").ToList();
        var input = (ExecutionStartedEvent)history.First(e => e is ExecutionStartedEvent);
        history[history.IndexOf(input)] = input with { Input = "[\"Tokyo\"]" };

        var failure = HistoryReplayer.Replay(new SequentialGreeting(), history);

        Assert.That(failure!.ErrorType, Is.EqualTo(ErrorTypes.NonDeterminism));
        Assert.That(failure.ErrorMessage, Does.Contain("did not schedule it"));
    }

    /// <summary>Records the checked-in history. Run by hand after an intentional format change: dotnet test --filter Record.</summary>
    [Test]
    [Explicit("writes Histories/SequentialGreeting.v1.json in the source tree")]
    [Category("Recording")]
    public async Task Record_SequentialGreeting()
    {
        await using var host = await DurableAgentsTestHost.StartAsync(b => b
            .AddOrchestrator<SequentialGreeting>()
            .AddActivityFunc<string, string>("SayHello", (_, city) => $"Hello {city}!"));
        var id = await host.Client.ScheduleNewOrchestrationInstanceAsync(nameof(SequentialGreeting), new[] { "Tokyo", "Seattle", "London" });
        await host.Client.WaitForInstanceCompletionAsync(id, false, TestTimeout.Token());
        var history = await host.Client.GetOrchestrationHistoryAsync(id);
        var source = Path.GetFullPath(Path.Combine(TestContext.CurrentContext.TestDirectory, "../../../Histories/SequentialGreeting.v1.json"));
        await File.WriteAllTextAsync(source, HistoryReplayer.Save(history) + "\n");
    }
}
