using DurableAgents.Grpc.Worker;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NUnit.Framework;

namespace DurableAgents.Grpc.Tests;

/// <summary>
/// The Durable Task conformance scenarios through the host's gRPC endpoint, with Microsoft's stock
/// gRPC worker and client in this process, on SQLite and on PostgreSQL.
/// </summary>
[TestFixture("sqlite")]
[TestFixture("postgres")]
[NonParallelizable]
public sealed class ConformanceTests
{
    private readonly string _store;
    private GrpcHost _host = null!;
    private IHost _worker = null!;
    private DurableTaskClient _client = null!;

    public ConformanceTests(string store) => _store = store;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        // Small inline-history bound and chunks, so that long histories take the streaming path.
        _host = await GrpcHost.StartAsync(_store, new Dictionary<string, string>
        {
            ["DurableAgents__Grpc__InlineHistoryEvents"] = "40",
            ["DurableAgents__Grpc__HistoryChunkEvents"] = "16",
            ["Logging__LogLevel__DurableAgents.Engine.Grpc"] = "Debug",
        });
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddDurableTaskWorker(b =>
        {
            b.AddTasks(r => r.AddConformance());
            b.UseGrpc(_host.GrpcAddress.ToString());
        });
        builder.Services.AddDurableTaskClient(b => b.UseGrpc(_host.GrpcAddress.ToString()));
        _worker = builder.Build();
        await _worker.StartAsync();
        _client = _worker.Services.GetRequiredService<DurableTaskClient>();
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        if (_worker is not null)
        {
            await _worker.StopAsync();
            _worker.Dispose();
        }

        if (_host is not null)
        {
            await _host.DisposeAsync();
        }
    }

    private static CancellationToken Timeout(int seconds = 60) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;

    private async Task<OrchestrationMetadata> RunAsync(string name, object? input, int seconds = 60)
    {
        var id = await _client.ScheduleNewOrchestrationInstanceAsync(name, input);
        return await _client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, Timeout(seconds));
    }

    [Test]
    public async Task Sequence_RunsActivitiesInOrder()
    {
        var done = await RunAsync("Sequence", new[] { "Tokyo", "Seattle", "London" });

        Assert.That(done.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Completed), done.FailureDetails?.ToString());
        Assert.That(done.ReadOutputAs<string>(), Is.EqualTo("Hello, Tokyo! Hello, Seattle! Hello, London!"));
    }

    [Test]
    public async Task FanOutFanIn_OfOneThousand()
    {
        var done = await RunAsync("FanOut", 1000, seconds: 180);

        Assert.That(done.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Completed), done.FailureDetails?.ToString());
        Assert.That(done.ReadOutputAs<long>(), Is.EqualTo(Enumerable.Range(1, 1000).Sum(i => (long)i * i)));
        var history = await _client.GetOrchestrationHistoryAsync(done.InstanceId);
        Assert.That(history.Count(e => e is DurableTask.Core.History.TaskCompletedEvent), Is.EqualTo(1000));
    }

    [Test]
    public async Task SubOrchestration_ResultAndFailure_ReachTheParent()
    {
        var ok = await RunAsync("Parent", false);
        var caught = await RunAsync("Parent", true);
        var uncaught = await RunAsync("ParentUncaught", true);

        Assert.That(ok.ReadOutputAs<string>(), Is.EqualTo($"child {ok.InstanceId}-child done"));
        Assert.That(caught.ReadOutputAs<string>(), Does.StartWith("caught: ").And.Contain("the child was told to fail"));
        Assert.That(uncaught.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Failed));
        Assert.That(uncaught.FailureDetails!.ErrorMessage, Does.Contain("Child"));
        var child = await _client.GetInstanceAsync(uncaught.InstanceId + "-child");
        Assert.That(child!.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Failed));
        Assert.That(child.FailureDetails!.ErrorMessage, Does.Contain("the child was told to fail"));
    }

    [Test]
    public async Task Timer_FiresAfterItsDelay()
    {
        var done = await RunAsync("Timer", 300);

        Assert.That(done.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Completed), done.FailureDetails?.ToString());
        Assert.That(done.LastUpdatedAt - done.CreatedAt, Is.GreaterThanOrEqualTo(TimeSpan.FromMilliseconds(300)));
    }

    [Test]
    public async Task Events_RaisedBeforeAndAfterTheWait_AreDelivered()
    {
        // Before: raised right after the start, before any episode ran.
        var early = await _client.ScheduleNewOrchestrationInstanceAsync("WaitEvent", "x");
        await _client.RaiseEventAsync(early, "go", "early");

        // After: raised once the orchestration says it waits.
        var late = await _client.ScheduleNewOrchestrationInstanceAsync("WaitEvent", "x");
        await WaitForCustomStatusAsync(late, "\"waiting\"");
        await _client.RaiseEventAsync(late, "go", "late");

        Assert.That((await _client.WaitForInstanceCompletionAsync(early, true, Timeout())).ReadOutputAs<string>(), Is.EqualTo("got early"));
        Assert.That((await _client.WaitForInstanceCompletionAsync(late, true, Timeout())).ReadOutputAs<string>(), Is.EqualTo("got late"));
    }

    [Test]
    public async Task ContinueAsNew_StartsAFreshExecution()
    {
        var done = await RunAsync("Counter", 0);

        Assert.That(done.ReadOutputAs<int>(), Is.EqualTo(5));
        var history = await _client.GetOrchestrationHistoryAsync(done.InstanceId);
        Assert.That(history.OfType<DurableTask.Core.History.ExecutionStartedEvent>().Single().Input, Is.EqualTo("5"), "only the last execution's history is kept");
    }

    [Test]
    public async Task Retries_ReRunAFailingActivity()
    {
        var done = await RunAsync("Retry", "x");

        Assert.That(done.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Completed), done.FailureDetails?.ToString());
        Assert.That(done.ReadOutputAs<string>(), Is.EqualTo("ok after 3"));
    }

    [Test]
    public async Task Terminate_Suspend_Resume()
    {
        var terminated = await _client.ScheduleNewOrchestrationInstanceAsync("WaitEvent", "x");
        await WaitForCustomStatusAsync(terminated, "\"waiting\"");
        await _client.TerminateInstanceAsync(terminated, new TerminateInstanceOptions("enough"));
        var t = await _client.WaitForInstanceCompletionAsync(terminated, true, Timeout());
        Assert.That(t.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Terminated));
        Assert.That(t.ReadOutputAs<string>(), Is.EqualTo("enough"));

        var suspended = await _client.ScheduleNewOrchestrationInstanceAsync("WaitEvent", "x");
        await WaitForCustomStatusAsync(suspended, "\"waiting\"");
        await _client.SuspendInstanceAsync(suspended, "hold on");
        await WaitForStatusAsync(suspended, OrchestrationRuntimeStatus.Suspended);
        await _client.RaiseEventAsync(suspended, "go", "while suspended");
        await _client.ResumeInstanceAsync(suspended, "go on");
        var s = await _client.WaitForInstanceCompletionAsync(suspended, true, Timeout());
        Assert.That(s.ReadOutputAs<string>(), Is.EqualTo("got while suspended"), "the event raised while suspended is delivered after the resume");
    }

    [Test]
    public async Task Restart_RunsAFinishedInstanceAgain()
    {
        var first = await RunAsync("Sequence", new[] { "Oslo" });
        var again = await _client.RestartAsync(first.InstanceId, restartWithNewInstanceId: false);
        var copy = await _client.RestartAsync(first.InstanceId, restartWithNewInstanceId: true);

        Assert.That(again, Is.EqualTo(first.InstanceId));
        Assert.That(copy, Is.Not.EqualTo(first.InstanceId));
        Assert.That((await _client.WaitForInstanceCompletionAsync(again, true, Timeout())).ReadOutputAs<string>(), Is.EqualTo("Hello, Oslo!"));
        Assert.That((await _client.WaitForInstanceCompletionAsync(copy, true, Timeout())).ReadOutputAs<string>(), Is.EqualTo("Hello, Oslo!"));
    }

    [Test]
    public async Task Rewind_RunsTheFailedActivityAgain()
    {
        var failed = await RunAsync("Rewindable", "x");
        Assert.That(failed.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Failed));

        await _client.RewindInstanceAsync(failed.InstanceId, "fixed the bug");
        var done = await _client.WaitForInstanceCompletionAsync(failed.InstanceId, true, Timeout());

        Assert.That(done.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Completed), done.FailureDetails?.ToString());
        Assert.That(done.ReadOutputAs<string>(), Is.EqualTo("Hello, before! fixed"));
    }

    [Test]
    public async Task Purge_ByIdAndByFilter()
    {
        var one = await RunAsync("Sequence", new[] { "A" });
        var two = await RunAsync("Parent", false);

        var byId = await _client.PurgeInstanceAsync(one.InstanceId);
        var recursive = await _client.PurgeInstanceAsync(two.InstanceId, new PurgeInstanceOptions(Recursive: true));
        Assert.That(byId.PurgedInstanceCount, Is.EqualTo(1));
        Assert.That(recursive.PurgedInstanceCount, Is.EqualTo(2), "the parent and its child");
        Assert.That(await _client.GetInstanceAsync(one.InstanceId), Is.Null);
        Assert.That(await _client.GetInstanceAsync(two.InstanceId + "-child"), Is.Null);

        var three = await RunAsync("Sequence", new[] { "B" });
        var filtered = await _client.PurgeAllInstancesAsync(new PurgeInstancesFilter(CreatedFrom: three.CreatedAt.AddMilliseconds(-1), Statuses: [OrchestrationRuntimeStatus.Completed]));
        Assert.That(filtered.PurgedInstanceCount, Is.GreaterThanOrEqualTo(1));
        Assert.That(await _client.GetInstanceAsync(three.InstanceId), Is.Null);
    }

    [Test]
    public async Task Query_PagesThroughInstances()
    {
        var prefix = "q" + Guid.NewGuid().ToString("N")[..8] + "-";
        var ids = new List<string>();
        for (var i = 0; i < 25; i++)
        {
            ids.Add(await _client.ScheduleNewOrchestrationInstanceAsync("Sequence", new[] { "P" }, new StartOrchestrationOptions($"{prefix}{i:00}")));
        }

        foreach (var id in ids)
        {
            await _client.WaitForInstanceCompletionAsync(id, Timeout());
        }

        var pages = new List<int>();
        var seen = new List<string>();
        await foreach (var page in _client.GetAllInstancesAsync(new OrchestrationQuery { InstanceIdPrefix = prefix, PageSize = 10 }).AsPages())
        {
            pages.Add(page.Values.Count);
            seen.AddRange(page.Values.Select(v => v.InstanceId));
        }

        Assert.That(pages, Is.EqualTo(new[] { 10, 10, 5 }));
        Assert.That(seen, Is.EquivalentTo(ids));
    }

    [Test]
    public async Task LargeHistory_IsStreamedInChunks_ToTheWorkerAndTheClient()
    {
        // 60 steps: from the 21st episode on the history is over the 40-event inline bound, so the
        // stock worker fetches it with StreamInstanceHistory (16-event chunks) on every episode.
        var done = await RunAsync("Long", 60, seconds: 120);

        Assert.That(done.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Completed), done.FailureDetails?.ToString());
        Assert.That(done.ReadOutputAs<int>(), Is.EqualTo(Enumerable.Range(0, 60).Sum(i => i * i)));
        var history = await _client.GetOrchestrationHistoryAsync(done.InstanceId);
        Assert.That(history.Count(e => e is DurableTask.Core.History.TaskScheduledEvent), Is.EqualTo(60));
        Assert.That(history.Count, Is.GreaterThan(16 * 10), "many chunks' worth");
        Assert.That(_host.Output, Does.Match($@"History of {done.InstanceId} streamed: \d+ events in ([2-9]|\d\d+) chunks \(for a work item: True\)"), "the worker fetched the history in chunks");
        await _host.WaitForOutputAsync($"History of {done.InstanceId} streamed: {history.Count} events in {(history.Count + 15) / 16} chunks (for a work item: False)", Timeout());
    }

    [Test]
    public async Task Routing_HostTasksRunOnTheHost_TheRestOnTheStream()
    {
        // A remote orchestration calls an activity only the host registers, and one of its own.
        var mixed = await RunAsync("Mixed", "Ada");
        Assert.That(mixed.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Completed), mixed.FailureDetails?.ToString());
        Assert.That(mixed.ReadOutputAs<string>(), Is.EqualTo("Hello Ada! / Hello, Ada!"));

        // A host workflow started through the gRPC client runs on the host's own worker.
        var hosted = await RunAsync("HelloCities", new[] { "Oslo", "Lima" });
        Assert.That(hosted.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Completed), hosted.FailureDetails?.ToString());
        Assert.That(hosted.ReadOutputAs<string[]>(), Is.EqualTo(new[] { "Hello Oslo!", "Hello Lima!" }));
    }

    [Test]
    public async Task BadInput_GetsATypedError_AndNothingIsStored()
    {
        var taken = await RunAsync("Sequence", new[] { "X" });

        // The stock client turns the endpoint's statuses into its typed exceptions.
        var exists = await Assert.CatchAsync<Exception>(() => _client.ScheduleNewOrchestrationInstanceAsync("Sequence", new[] { "Y" }, new StartOrchestrationOptions(taken.InstanceId) { DedupeStatuses = [OrchestrationRuntimeStatus.Completed.ToString()] }));
        Assert.That(exists!.GetType().Name, Is.EqualTo("OrchestrationAlreadyExistsException"), exists.ToString());
        Assert.That((await _client.GetInstanceAsync(taken.InstanceId, true))!.ReadInputAs<string[]>(), Is.EqualTo(new[] { "X" }), "the existing instance is untouched");
        var bad = await Assert.CatchAsync<Exception>(() => _client.ScheduleNewOrchestrationInstanceAsync("Sequence", null, new StartOrchestrationOptions("bad/id")));
        Assert.That(bad, Is.InstanceOf<ArgumentException>());
        Assert.That(bad!.Message, Does.Contain("instance id"));
        Assert.That(await _client.GetInstanceAsync("bad/id"), Is.Null);
        var missing = await Assert.CatchAsync<Exception>(() => _client.RaiseEventAsync("no-such-instance", "go", "x"));
        Assert.That(missing!.ToString(), Does.Contain("NotFound").Or.Contain("no-such-instance"));
        Assert.That(await _client.GetInstanceAsync("no-such-instance"), Is.Null);
    }

    private async Task WaitForCustomStatusAsync(string id, string status)
    {
        // Woken by the endpoint's notifications: WaitForInstanceStart returns at the first episode's
        // commit; the custom status is set in that same episode.
        var m = await _client.WaitForInstanceStartAsync(id, true, Timeout());
        while (m.SerializedCustomStatus != status)
        {
            m = await _client.WaitForInstanceStartAsync(id, true, Timeout());
        }
    }

    private async Task WaitForStatusAsync(string id, OrchestrationRuntimeStatus status)
    {
        var m = await _client.WaitForInstanceStartAsync(id, false, Timeout());
        while (m.RuntimeStatus != status)
        {
            await Task.Yield();
            m = await _client.WaitForInstanceStartAsync(id, false, Timeout());
        }
    }
}
