using DurableAgents.Tests.Support;
using DurableTask.Core.History;
using DurableAgents.Engine.Client;
using DurableAgents.Engine.Storage;
using DurableAgents.Engine.Testing;
using DurableAgents.Engine.Tests.Support;
using NUnit.Framework;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Engine.Tests.Runtime;

/// <summary>Every kind of bad input gives a typed error or a clearly failed instance, and leaves stored state unchanged.</summary>
[TestFixtureSource(typeof(StoreKinds), nameof(StoreKinds.All))]
public sealed class BadInputTests
{
    private readonly string _storeKind;
    private Action _cleanup = () => { };
    private DurableAgentsTestHost _host = null!;

    public BadInputTests(string storeKind) => _storeKind = storeKind;

    [SetUp]
    public async Task SetUp()
    {
        var (factory, cleanup) = StoreKinds.Create(_storeKind);
        _cleanup = cleanup;
        _host = await DurableAgentsTestHost.StartAsync(
            b => b
                .AddOrchestratorFunc<int, int>("Echo", (_, n) => Task.FromResult(n))
                .AddOrchestratorFunc<object?, string>("Forever", (ctx, _) => ctx.WaitForExternalEvent<string>("never"))
                .AddOrchestratorFunc<object?, string>("CallsMissingActivity", (ctx, _) => ctx.CallActivityAsync<string>("NoSuchActivity"))
                .AddOrchestratorFunc<object?, string>("SignalsEntity", async (ctx, _) =>
                {
                    await ctx.Entities.SignalEntityAsync(new Microsoft.DurableTask.Entities.EntityInstanceId("counter", "c1"), "add", 1);
                    return "signalled";
                })
                .AddOrchestratorFunc<object?, string>("Throws", string (_, _) => throw new InvalidOperationException("orchestrator bug"))
                .AddOrchestratorFunc<object?, string>("BigOutput", (_, _) => Task.FromResult(new string('x', 4096)))
                .AddOrchestratorFunc<object?, string>("SendsBigInput", async (ctx, _) =>
                {
                    // A later episode (after the timer), whose new events do not carry ExecutionStarted.
                    await ctx.CreateTimer(ctx.CurrentUtcDateTime, CancellationToken.None);
                    return await ctx.CallActivityAsync<string>("NoSuchActivity", new string('y', 4096));
                })
                .AddOrchestratorFunc<object?, string>("ParentOfBigInput", async (ctx, _) =>
                {
                    try
                    {
                        return await ctx.CallSubOrchestratorAsync<string>("SendsBigInput");
                    }
                    catch (TaskFailedException ex)
                    {
                        return ex.FailureDetails.HasErrorType(ErrorTypes.PayloadTooLarge) ? "child refused: payload too large" : ex.FailureDetails.ToString();
                    }
                }),
            o => o.MaxPayloadBytes = 2048,
            storeFactory: factory);
    }

    [TearDown]
    public async Task TearDown()
    {
        await _host.DisposeAsync();
        _cleanup();
    }

    private async Task<int> CountInstancesAsync() => (await _host.Backend.QueryInstancesAsync(new InstanceQuery { PageSize = 1000 })).Instances.Count;

    [Test]
    public async Task Schedule_UnknownOrchestrator_ThrowsTypedError_NothingWritten()
    {
        var ex = await Assert.ThrowsAsync<TaskNotRegisteredException>(() => _host.Client.ScheduleNewOrchestrationInstanceAsync("NoSuchWorkflow", 1));

        Assert.That(ex!.ErrorType, Is.EqualTo(ErrorTypes.OrchestratorNotFound));
        Assert.That(ex.Message, Does.Contain("NoSuchWorkflow").And.Contain("Echo"));
        Assert.That(await CountInstancesAsync(), Is.Zero);
    }

    [Test]
    public async Task Schedule_OversizedInput_ThrowsPayloadTooLarge_NothingWritten()
    {
        var ex = await Assert.ThrowsAsync<PayloadTooLargeException>(() => _host.Client.ScheduleNewOrchestrationInstanceAsync("Echo", new string('a', 5000)));

        Assert.That(ex!.Limit, Is.EqualTo(2048));
        Assert.That(ex.Size, Is.GreaterThan(5000));
        Assert.That(await CountInstancesAsync(), Is.Zero);
    }

    [Test]
    public async Task Schedule_InputOfWrongType_InstanceFailsWithSerializationError()
    {
        var id = await _host.Client.ScheduleNewOrchestrationInstanceAsync("Echo", "not a number");
        var done = await _host.Client.WaitForInstanceCompletionAsync(id, false, TestTimeout.Token());

        Assert.That(done.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Failed));
        Assert.That(done.FailureDetails!.ErrorType, Does.Contain("JsonException"));
        Assert.That(done.FailureDetails.ErrorMessage, Does.Contain("Int32"));
    }

    [TestCase("")]
    [TestCase("has/slash")]
    [TestCase("has space")]
    [TestCase("tab\there")]
    public async Task Schedule_InvalidInstanceId_ThrowsTypedError_NothingWritten(string id)
    {
        await Assert.ThrowsAsync<InvalidInstanceIdException>(() => _host.Client.ScheduleNewOrchestrationInstanceAsync("Echo", 1, new StartOrchestrationOptions { InstanceId = id }));

        Assert.That(await CountInstancesAsync(), Is.Zero);
    }

    [Test]
    public async Task Schedule_TooLongInstanceId_ThrowsTypedError()
    {
        var ex = await Assert.ThrowsAsync<InvalidInstanceIdException>(() => _host.Client.ScheduleNewOrchestrationInstanceAsync("Echo", 1, new StartOrchestrationOptions { InstanceId = new string('a', 257) }));

        Assert.That(ex!.Message, Does.Contain("256"));
    }

    [Test]
    public async Task Schedule_DuplicateIdWhileRunning_ThrowsAlreadyExists_StateUnchanged()
    {
        await _host.Client.ScheduleNewOrchestrationInstanceAsync("Forever", "first", new StartOrchestrationOptions { InstanceId = "dup" });
        await _host.Client.WaitForInstanceStartAsync("dup", false, TestTimeout.Token());

        var ex = await Assert.ThrowsAsync<OrchestrationAlreadyExistsException>(() =>
            _host.Client.ScheduleNewOrchestrationInstanceAsync("Echo", 2, new StartOrchestrationOptions { InstanceId = "dup" }));

        Assert.That(ex!.Status, Is.EqualTo(OrchestrationRuntimeStatus.Running));
        var still = await _host.Client.GetInstanceAsync("dup", true);
        Assert.That(still!.Name, Is.EqualTo("Forever"));
        Assert.That(still.ReadInputAs<string>(), Is.EqualTo("first"));
    }

    [Test]
    public async Task Schedule_DuplicateIdAfterCompletion_ReplacesTheFinishedInstance()
    {
        await _host.Client.ScheduleNewOrchestrationInstanceAsync("Echo", 1, new StartOrchestrationOptions { InstanceId = "again" });
        await _host.Client.WaitForInstanceCompletionAsync("again", false, TestTimeout.Token());

        await _host.Client.ScheduleNewOrchestrationInstanceAsync("Echo", 2, new StartOrchestrationOptions { InstanceId = "again" });
        var done = await _host.Client.WaitForInstanceCompletionAsync("again", true, TestTimeout.Token());

        Assert.That(done.ReadOutputAs<int>(), Is.EqualTo(2));
        Assert.That((await _host.Client.GetOrchestrationHistoryAsync("again")).OfType<ExecutionStartedEvent>().Count(), Is.EqualTo(1));
    }

    [Test]
    public async Task Schedule_DuplicateIdWithCompletedInDedupeStatuses_Throws()
    {
        await _host.Client.ScheduleNewOrchestrationInstanceAsync("Echo", 1, new StartOrchestrationOptions { InstanceId = "once" });
        await _host.Client.WaitForInstanceCompletionAsync("once", false, TestTimeout.Token());

        await Assert.ThrowsAsync<OrchestrationAlreadyExistsException>(() => _host.Client.ScheduleNewOrchestrationInstanceAsync(
            "Echo", 2, new StartOrchestrationOptions { InstanceId = "once", DedupeStatuses = [nameof(OrchestrationRuntimeStatus.Completed)] }));
    }

    [Test]
    public async Task RaiseEvent_UnknownInstance_ThrowsNotFound()
    {
        var ex = await Assert.ThrowsAsync<OrchestrationNotFoundException>(() => _host.Client.RaiseEventAsync("ghost", "approval", "yes"));

        Assert.That(ex!.InstanceId, Is.EqualTo("ghost"));
        Assert.That(await CountInstancesAsync(), Is.Zero);
    }

    [Test]
    public async Task RaiseEvent_FinishedInstance_ThrowsStateError_HistoryUnchanged()
    {
        var id = await _host.Client.ScheduleNewOrchestrationInstanceAsync("Echo", 1);
        await _host.Client.WaitForInstanceCompletionAsync(id, false, TestTimeout.Token());
        var before = (await _host.Client.GetOrchestrationHistoryAsync(id)).Count;

        var ex = await Assert.ThrowsAsync<OrchestrationStateException>(() => _host.Client.RaiseEventAsync(id, "approval", "yes"));

        Assert.That(ex!.Message, Does.Contain("Completed"));
        Assert.That((await _host.Client.GetOrchestrationHistoryAsync(id)).Count, Is.EqualTo(before));
    }

    [Test]
    public async Task RaiseEvent_OversizedPayload_ThrowsPayloadTooLarge()
    {
        var id = await _host.Client.ScheduleNewOrchestrationInstanceAsync("Forever");

        await Assert.ThrowsAsync<PayloadTooLargeException>(() => _host.Client.RaiseEventAsync(id, "never", new string('z', 3000)));
    }

    [Test]
    public async Task Terminate_UnknownInstance_ThrowsNotFound()
    {
        await Assert.ThrowsAsync<OrchestrationNotFoundException>(() => _host.Client.TerminateInstanceAsync("ghost"));
    }

    [Test]
    public async Task Orchestrator_CallsUnknownActivity_FailsNamingIt()
    {
        var id = await _host.Client.ScheduleNewOrchestrationInstanceAsync("CallsMissingActivity");
        var done = await _host.Client.WaitForInstanceCompletionAsync(id, false, TestTimeout.Token());

        Assert.That(done.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Failed));
        Assert.That(done.FailureDetails!.InnerFailure!.ErrorType, Is.EqualTo(ErrorTypes.ActivityNotFound));
        Assert.That(done.FailureDetails.InnerFailure.ErrorMessage, Does.Contain("NoSuchActivity"));
    }

    [Test]
    public async Task SubOrchestration_SchedulesAnOversizedActivityInput_FailsAndItsParentIsTold()
    {
        var id = await _host.Client.ScheduleNewOrchestrationInstanceAsync("ParentOfBigInput");
        var done = await _host.Client.WaitForInstanceCompletionAsync(id, true, TestTimeout.Token());

        Assert.That(done.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Completed), done.FailureDetails?.ToString());
        Assert.That(done.ReadOutputAs<string>(), Is.EqualTo("child refused: payload too large"));
    }

    [Test]
    public async Task Orchestrator_UsesAnEntity_FailsAtOnceNamingEntities()
    {
        var id = await _host.Client.ScheduleNewOrchestrationInstanceAsync("SignalsEntity");
        var done = await _host.Client.WaitForInstanceCompletionAsync(id, false, TestTimeout.Token());

        Assert.That(done.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Failed));
        Assert.That(done.FailureDetails!.ToString(), Does.Contain("entit").IgnoreCase);
        Assert.That((await _host.Client.GetOrchestrationHistoryAsync(id)).OfType<EventSentEvent>(), Is.Empty, "no entity message was sent");
    }

    [Test]
    public void Client_Entities_RefusedNamingWhatIsMissing()
    {
        var entities = Assert.Throws<NotSupportedException>(() => _ = _host.Client.Entities);
        Assert.That(entities!.Message, Does.Contain("entities").And.Contain("DurableAgents"));
    }

    [Test]
    public async Task Rewind_CompletedOrUnknownInstance_ThrowsAndChangesNothing()
    {
        var id = await _host.Client.ScheduleNewOrchestrationInstanceAsync("Echo", 3);
        await _host.Client.WaitForInstanceCompletionAsync(id, false, TestTimeout.Token());
        var before = (await _host.Client.GetOrchestrationHistoryAsync(id)).Count;

        var ex = await Assert.ThrowsAsync<OrchestrationStateException>(() => _host.Client.RewindInstanceAsync(id, "retry"));
        await Assert.ThrowsAsync<OrchestrationNotFoundException>(() => _host.Client.RewindInstanceAsync("ghost", "retry"));

        Assert.That(ex!.Status, Is.EqualTo(OrchestrationRuntimeStatus.Completed));
        Assert.That((await _host.Client.GetInstanceAsync(id, true))!.ReadOutputAs<int>(), Is.EqualTo(3));
        Assert.That((await _host.Client.GetOrchestrationHistoryAsync(id)).Count, Is.EqualTo(before));
    }

    [Test]
    public async Task Orchestrator_Throws_FailsWithExceptionDetails()
    {
        var id = await _host.Client.ScheduleNewOrchestrationInstanceAsync("Throws");
        var done = await _host.Client.WaitForInstanceCompletionAsync(id, false, TestTimeout.Token());

        Assert.That(done.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Failed));
        Assert.That(done.FailureDetails!.ErrorType, Is.EqualTo(typeof(InvalidOperationException).FullName));
        Assert.That(done.FailureDetails.ErrorMessage, Is.EqualTo("orchestrator bug"));
        Assert.That(done.FailureDetails.StackTrace, Is.Not.Null.And.Not.Empty);
    }

    [Test]
    public async Task Orchestrator_OutputOverLimit_FailsWithPayloadTooLarge()
    {
        var id = await _host.Client.ScheduleNewOrchestrationInstanceAsync("BigOutput");
        var done = await _host.Client.WaitForInstanceCompletionAsync(id, true, TestTimeout.Token());

        Assert.That(done.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Failed));
        Assert.That(done.FailureDetails!.ErrorType, Is.EqualTo(ErrorTypes.PayloadTooLarge));
        Assert.That(done.SerializedOutput, Is.Null);
    }

    [Test]
    public async Task Query_InvalidContinuationToken_ThrowsArgumentException()
    {
        await Assert.ThrowsAsync<ArgumentException>(() => _host.Backend.QueryInstancesAsync(new InstanceQuery { ContinuationToken = "!!not-a-token!!" }));
    }
}
