using DurableAgents.Tests.Support;
using DurableTask.Core.History;
using System.Collections.Concurrent;
using DurableAgents.Engine.Client;
using DurableAgents.Engine.Hosting;
using DurableAgents.Engine.Storage;
using DurableAgents.Engine.Testing;
using DurableAgents.Engine.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using NUnit.Framework;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Engine.Tests.Runtime;

/// <summary>End-to-end engine behaviour, run against every store kind.</summary>
[TestFixtureSource(typeof(StoreKinds), nameof(StoreKinds.All))]
public sealed class OrchestrationConformanceTests
{
    private readonly string _storeKind;
    private readonly List<Action> _cleanups = [];

    public OrchestrationConformanceTests(string storeKind) => _storeKind = storeKind;

    [TearDown]
    public void TearDown()
    {
        foreach (var c in _cleanups)
        {
            c();
        }

        _cleanups.Clear();
    }

    private async Task<DurableAgentsTestHost> StartAsync(Action<DurableTaskRegistry> configure, Action<DurableAgentsOptions>? options = null, TimeProvider? time = null, Action<IServiceCollection>? services = null)
    {
        var (factory, cleanup) = StoreKinds.Create(_storeKind);
        _cleanups.Add(cleanup);
        return await DurableAgentsTestHost.StartAsync(configure, options, time, factory, services);
    }

    private static async Task<OrchestrationMetadata> RunToCompletionAsync(DurableAgentsTestHost host, string name, object? input, string? id = null)
    {
        var instanceId = await host.Client.ScheduleNewOrchestrationInstanceAsync(name, input, new StartOrchestrationOptions { InstanceId = id });
        return await host.Client.WaitForInstanceCompletionAsync(instanceId, getInputsAndOutputs: true, TestTimeout.Token());
    }

    [Test]
    public async Task SequentialChain_RunsActivitiesInOrder_ReturnsTheirResults()
    {
        await using var host = await StartAsync(b => b
            .AddOrchestrator<SequentialGreeting>()
            .AddActivityFunc<string, string>("SayHello", (_, city) => $"Hello {city}!"));

        var done = await RunToCompletionAsync(host, nameof(SequentialGreeting), new[] { "Tokyo", "Seattle", "London" });

        Assert.That(done.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Completed), done.FailureDetails?.ToString());
        Assert.That(done.ReadOutputAs<List<string>>(), Is.EqualTo(new[] { "Hello Tokyo!", "Hello Seattle!", "Hello London!" }));
        var history = await host.Client.GetOrchestrationHistoryAsync(done.InstanceId);
        // The SDK schedules an activity's input as a one-element array (the Functions convention).
        Assert.That(history.OfType<TaskScheduledEvent>().Select(e => e.Input), Is.EqualTo(new[] { "[\"Tokyo\"]", "[\"Seattle\"]", "[\"London\"]" }));
        Assert.That(history[0], Is.InstanceOf<OrchestratorStartedEvent>());
        Assert.That(history[1], Is.InstanceOf<ExecutionStartedEvent>());
        Assert.That(history[^2], Is.InstanceOf<ExecutionCompletedEvent>());
        Assert.That(history[^1], Is.InstanceOf<OrchestratorCompletedEvent>(), "every episode ends with OrchestratorCompleted");
    }

    [Test]
    public async Task FanOutFanIn_1000Activities_AllResultsAggregated()
    {
        await using var host = await StartAsync(b => b
            .AddOrchestratorFunc<int, long>("FanOut", async (ctx, n) =>
            {
                var tasks = Enumerable.Range(1, n).Select(i => ctx.CallActivityAsync<long>("Square", i)).ToList();
                var results = await Task.WhenAll(tasks);
                return results.Sum();
            })
            .AddActivityFunc<int, long>("Square", (_, i) => (long)i * i));

        var done = await RunToCompletionAsync(host, "FanOut", 1000);

        Assert.That(done.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Completed), done.FailureDetails?.ToString());
        Assert.That(done.ReadOutputAs<long>(), Is.EqualTo(Enumerable.Range(1, 1000).Sum(i => (long)i * i)));
        var history = await host.Client.GetOrchestrationHistoryAsync(done.InstanceId);
        Assert.That(history.OfType<TaskScheduledEvent>().Count(), Is.EqualTo(1000));
        Assert.That(history.OfType<TaskCompletedEvent>().Count(), Is.EqualTo(1000));
    }

    [Test]
    public async Task SubOrchestrations_NestedTwoLevels_FailurePropagatesWithDetails()
    {
        await using var host = await StartAsync(b => b
            .AddOrchestratorFunc<int, int>("Parent", async (ctx, n) =>
            {
                var ok = await ctx.CallSubOrchestratorAsync<int>("Child", n, new SubOrchestrationOptions { InstanceId = ctx.InstanceId + "-child" });
                try
                {
                    await ctx.CallSubOrchestratorAsync<int>("Child", -1);
                }
                catch (TaskFailedException ex) when (ex.FailureDetails.HasErrorType(typeof(InvalidOperationException).FullName!))
                {
                    return ok + 1000;
                }

                return ok;
            })
            .AddOrchestratorFunc<int, int>("Child", (ctx, n) => ctx.CallSubOrchestratorAsync<int>("GrandChild", n))
            .AddOrchestratorFunc<int, int>("GrandChild", (ctx, n) => ctx.CallActivityAsync<int>("Check", n))
            .AddActivityFunc<int, int>("Check", (_, n) => n >= 0 ? n * 2 : throw new InvalidOperationException("negative input")));

        var done = await RunToCompletionAsync(host, "Parent", 21, "parent-1");

        Assert.That(done.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Completed), done.FailureDetails?.ToString());
        Assert.That(done.ReadOutputAs<int>(), Is.EqualTo(1042));
        var child = await host.Backend.GetInstanceRecordAsync("parent-1-child");
        Assert.That(child!.ParentInstanceId, Is.EqualTo("parent-1"));
        Assert.That(child.Status, Is.EqualTo(OrchestrationRuntimeStatus.Completed));
        var children = (await host.Client.GetOrchestrationHistoryAsync("parent-1")).OfType<SubOrchestrationInstanceCreatedEvent>().Select(e => e.InstanceId).ToList();
        Assert.That(children, Has.Count.EqualTo(2));
        var failedChild = await host.Client.GetInstanceAsync(children[1]);
        Assert.That(failedChild!.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Failed));
        Assert.That(failedChild.FailureDetails!.HasErrorType(typeof(InvalidOperationException).FullName!), Is.True);
        Assert.That(failedChild.FailureDetails!.ToString(), Does.Contain("Check"));
    }

    [Test]
    public async Task SubOrchestration_UncaughtFailure_FailsParentWithInnerDetails()
    {
        await using var host = await StartAsync(b => b
            .AddOrchestratorFunc<int, int>("Parent", (ctx, n) => ctx.CallSubOrchestratorAsync<int>("Child", n))
            .AddOrchestratorFunc<int, int>("Child", int (_, _) => throw new ArgumentException("bad child input")));

        var done = await RunToCompletionAsync(host, "Parent", 1);

        Assert.That(done.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Failed));
        Assert.That(done.FailureDetails!.ErrorType, Is.EqualTo(typeof(TaskFailedException).FullName));
        Assert.That(done.FailureDetails.InnerFailure!.ErrorType, Is.EqualTo(typeof(ArgumentException).FullName));
        Assert.That(done.FailureDetails.InnerFailure.ErrorMessage, Does.Contain("bad child input"));
    }

    [Test]
    public async Task Timer_WithFakeClock_FiresOnlyWhenTimeAdvances()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        await using var host = await StartAsync(
            b => b.AddOrchestratorFunc<object?, string>("Sleeper", async (ctx, _) =>
            {
                var start = ctx.CurrentUtcDateTime;
                await ctx.CreateTimer(TimeSpan.FromHours(3), CancellationToken.None);
                return $"{(ctx.CurrentUtcDateTime - start).TotalHours}";
            }),
            time: time);

        var id = await host.Client.ScheduleNewOrchestrationInstanceAsync("Sleeper");
        await host.WaitUntilAsync(id, async () => (await host.Client.GetOrchestrationHistoryAsync(id)).OfType<TimerCreatedEvent>().Any(), TestTimeout.Token(30));
        time.Advance(TimeSpan.FromHours(2));
        await host.WaitForIdlePollsAsync(3, TestTimeout.Token()); // the dispatcher looked and found nothing due
        Assert.That((await host.Client.GetInstanceAsync(id))!.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Running));

        time.Advance(TimeSpan.FromHours(1));
        var done = await host.Client.WaitForInstanceCompletionAsync(id, true, TestTimeout.Token());

        Assert.That(done.ReadOutputAs<string>(), Is.EqualTo("3"));
    }

    [Test]
    public async Task ExternalEvent_RaisedBeforeWait_IsBufferedAndNamesAreCaseInsensitive()
    {
        var gate = new Gate();
        await using var host = await StartAsync(
            b => b
                .AddOrchestratorFunc<object?, string>("LateWaiter", async (ctx, _) =>
                {
                    await ctx.CallActivityAsync<string>(nameof(GateActivity));
                    return await ctx.WaitForExternalEvent<string>("Approval");
                })
                .AddActivity<GateActivity>(),
            services: s => s.AddSingleton(gate));
        var id = await host.Client.ScheduleNewOrchestrationInstanceAsync("LateWaiter");
        await gate.Entered.Task.WaitAsync(TestTimeout.Token());

        await host.Client.RaiseEventAsync(id, "APPROVAL", "yes");
        gate.Open.TrySetResult();
        var done = await host.Client.WaitForInstanceCompletionAsync(id, true, TestTimeout.Token());

        Assert.That(done.ReadOutputAs<string>(), Is.EqualTo("yes"));
    }

    [Test]
    public async Task ExternalEvent_TwoWaitersSameName_EachEventCompletesOneWaiter()
    {
        await using var host = await StartAsync(b => b
            .AddOrchestratorFunc<object?, string>("TwoWaiters", async (ctx, _) =>
            {
                var first = ctx.WaitForExternalEvent<int>("vote");
                var second = ctx.WaitForExternalEvent<int>("Vote");
                ctx.SetCustomStatus("waiting");
                return $"{await first}+{await second}";
            }));
        var id = await host.Client.ScheduleNewOrchestrationInstanceAsync("TwoWaiters");
        await host.WaitUntilAsync(id, async () => (await host.Client.GetInstanceAsync(id))?.SerializedCustomStatus == "\"waiting\"", TestTimeout.Token(30));

        await host.Client.RaiseEventAsync(id, "vote", 1);
        await host.Client.RaiseEventAsync(id, "vote", 2);
        var done = await host.Client.WaitForInstanceCompletionAsync(id, true, TestTimeout.Token());

        // Which waiter the first event completes is the SDK's choice; each event completes exactly one.
        Assert.That(done.ReadOutputAs<string>(), Is.AnyOf("1+2", "2+1"));
    }

    [Test]
    public async Task ExternalEvent_WithTimeout_ThrowsTaskCanceledWhenTimeElapses()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        await using var host = await StartAsync(
            b => b.AddOrchestratorFunc<object?, string>("Approval", async (ctx, _) =>
            {
                try
                {
                    return await ctx.WaitForExternalEvent<string>("approval", TimeSpan.FromDays(2));
                }
                catch (TaskCanceledException)
                {
                    return "timed out";
                }
            }),
            time: time);
        var id = await host.Client.ScheduleNewOrchestrationInstanceAsync("Approval");
        await host.WaitUntilAsync(id, async () => (await host.Client.GetOrchestrationHistoryAsync(id)).OfType<TimerCreatedEvent>().Any(), TestTimeout.Token(30));

        time.Advance(TimeSpan.FromDays(2));
        var done = await host.Client.WaitForInstanceCompletionAsync(id, true, TestTimeout.Token());

        Assert.That(done.ReadOutputAs<string>(), Is.EqualTo("timed out"));
        await Assert.ThatAsync(() => host.Client.RaiseEventAsync(id, "approval", "late"), Throws.InstanceOf<OrchestrationStateException>());
    }

    [Test]
    public async Task ExternalEvent_ArrivesBeforeTimeout_ReturnsPayloadAndIgnoresLaterTimer()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        await using var host = await StartAsync(
            b => b.AddOrchestratorFunc<object?, string>("Approval", async (ctx, _) =>
            {
                var answer = await ctx.WaitForExternalEvent<string>("approval", TimeSpan.FromHours(1));
                await ctx.CreateTimer(TimeSpan.FromHours(2), CancellationToken.None);
                return answer;
            }),
            time: time);
        var id = await host.Client.ScheduleNewOrchestrationInstanceAsync("Approval");
        await host.WaitUntilAsync(id, async () => (await host.Client.GetOrchestrationHistoryAsync(id)).OfType<TimerCreatedEvent>().Any(), TestTimeout.Token(30));

        await host.Client.RaiseEventAsync(id, "approval", "approved");
        await host.WaitUntilAsync(id, async () => (await host.Client.GetOrchestrationHistoryAsync(id)).OfType<TimerCreatedEvent>().Count() == 2, TestTimeout.Token(30));
        time.Advance(TimeSpan.FromHours(3));
        var done = await host.Client.WaitForInstanceCompletionAsync(id, true, TestTimeout.Token());

        Assert.That(done.ReadOutputAs<string>(), Is.EqualTo("approved"));
    }

    [Test]
    public async Task ContinueAsNew_LoopsFiveTimes_HistoryIsResetEachTime()
    {
        await using var host = await StartAsync(b => b
            .AddOrchestratorFunc<int, int>("Counter", async (ctx, n) =>
            {
                await ctx.CallActivityAsync<int>("Noop", n);
                if (n < 5)
                {
                    ctx.ContinueAsNew(n + 1);
                }

                return n;
            })
            .AddActivityFunc<int, int>("Noop", (_, n) => n));

        var done = await RunToCompletionAsync(host, "Counter", 1);

        Assert.That(done.ReadOutputAs<int>(), Is.EqualTo(5));
        Assert.That(done.ReadInputAs<int>(), Is.EqualTo(5));
        var history = await host.Client.GetOrchestrationHistoryAsync(done.InstanceId);
        Assert.That(history.OfType<TaskScheduledEvent>().Count(), Is.EqualTo(1), "only the last execution's history is kept");
        Assert.That(history.OfType<ExecutionStartedEvent>().Single().Input, Is.EqualTo("5"));
    }

    [Test]
    public async Task ContinueAsNew_PreserveUnprocessedEvents_CarriesBufferedEventOver()
    {
        var gate = new Gate();
        await using var host = await StartAsync(
            b => b
                .AddOrchestratorFunc<int, string>("Carry", async (ctx, n) =>
                {
                    if (n == 0)
                    {
                        await ctx.CallActivityAsync<string>(nameof(GateActivity));
                        ctx.ContinueAsNew(1, preserveUnprocessedEvents: true);
                        return "first";
                    }

                    return await ctx.WaitForExternalEvent<string>("later");
                })
                .AddActivity<GateActivity>(),
            services: s => s.AddSingleton(gate));
        var id = await host.Client.ScheduleNewOrchestrationInstanceAsync("Carry", 0);
        await gate.Entered.Task.WaitAsync(TestTimeout.Token());
        await host.Client.RaiseEventAsync(id, "later", "carried");
        gate.Open.TrySetResult();

        var done = await host.Client.WaitForInstanceCompletionAsync(id, true, TestTimeout.Token());

        Assert.That(done.ReadOutputAs<string>(), Is.EqualTo("carried"));
    }

    [Test]
    public async Task Retry_ActivityAlwaysFails_AttemptsExactlyMaxWithGrowingDelays()
    {
        var attempts = 0;
        await using var host = await StartAsync(b => b
            .AddOrchestratorFunc<object?, string>("Retrying", async (ctx, _) =>
            {
                var policy = new RetryPolicy(4, TimeSpan.FromMilliseconds(20), backoffCoefficient: 2.0, maxRetryInterval: TimeSpan.FromMilliseconds(60));
                return await ctx.CallActivityAsync<string>("Flaky", null, TaskOptions.FromRetryPolicy(policy));
            })
            .AddActivityFunc<string?, string>("Flaky", string (_, _) =>
            {
                Interlocked.Increment(ref attempts);
                throw new TimeoutException("upstream timed out");
            }));

        var done = await RunToCompletionAsync(host, "Retrying", null);

        Assert.That(done.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Failed));
        Assert.That(attempts, Is.EqualTo(4));
        Assert.That(done.FailureDetails!.InnerFailure!.ErrorType, Is.EqualTo(typeof(TimeoutException).FullName));
        var history = await host.Client.GetOrchestrationHistoryAsync(done.InstanceId);
        var delays = history.OfType<TimerCreatedEvent>().Select(t => (t.FireAt - t.Timestamp).TotalMilliseconds).ToList();
        // 20 ms, doubled, capped at 60 ms; the SDK's retry loop then records a zero-length timer
        // after the last failed attempt before it gives up.
        Assert.That(delays, Is.EqualTo(new[] { 20.0, 40.0, 60.0, 0.0 }), "20 ms, doubled, capped at 60 ms");
        Assert.That(history.OfType<TaskFailedEvent>().Count(), Is.EqualTo(4));
    }

    [Test]
    public async Task Retry_NonRetriableFailure_StopsAfterFirstAttempt()
    {
        var attempts = 0;
        await using var host = await StartAsync(b => b
            .AddOrchestratorFunc<object?, string>("Retrying", (ctx, _) =>
                ctx.CallActivityAsync<string>("Filtered", null, RetryPolicies.Options(5, TimeSpan.FromMilliseconds(10))))
            .AddActivityFunc<string?, string>("Filtered", string (_, _) =>
            {
                Interlocked.Increment(ref attempts);
                throw new ApplicationFailureException("content filtered", "ContentFilter", nonRetryable: true);
            }));

        var done = await RunToCompletionAsync(host, "Retrying", null);

        Assert.That(attempts, Is.EqualTo(1));
        Assert.That(done.FailureDetails!.InnerFailure!.ErrorType, Is.EqualTo("ContentFilter"));
        Assert.That(done.FailureDetails.InnerFailure.IsNonRetriable(), Is.True);
    }

    [Test]
    public async Task Retry_SucceedsOnThirdAttempt_ReturnsResult()
    {
        var attempts = 0;
        await using var host = await StartAsync(b => b
            .AddOrchestratorFunc<object?, int>("Retrying", (ctx, _) =>
                ctx.CallActivityAsync<int>("Flaky", null, RetryPolicies.Options(5, TimeSpan.FromMilliseconds(5))))
            .AddActivityFunc<string?, int>("Flaky", (_, _) => Interlocked.Increment(ref attempts) < 3 ? throw new IOException("transient") : attempts));

        var done = await RunToCompletionAsync(host, "Retrying", null);

        Assert.That(done.ReadOutputAs<int>(), Is.EqualTo(3));
    }

    [Test]
    public async Task SendEvent_FromOneInstanceToAnother_CompletesItsWait()
    {
        await using var host = await StartAsync(b => b
            .AddOrchestratorFunc<object?, string>("Receiver", (ctx, _) => ctx.WaitForExternalEvent<string>("ping"))
            .AddOrchestratorFunc<string, string>("Sender", (ctx, target) =>
            {
                ctx.SendEvent(target, "ping", "from " + ctx.InstanceId);
                return Task.FromResult("sent");
            }));
        var receiver = await host.Client.ScheduleNewOrchestrationInstanceAsync("Receiver", null, new StartOrchestrationOptions { InstanceId = "receiver-1" });
        await host.Client.WaitForInstanceStartAsync(receiver, false, TestTimeout.Token());

        var sender = await RunToCompletionAsync(host, "Sender", receiver, "sender-1");
        var done = await host.Client.WaitForInstanceCompletionAsync(receiver, true, TestTimeout.Token());

        Assert.That(done.ReadOutputAs<string>(), Is.EqualTo("from sender-1"));
        var history = await host.Client.GetOrchestrationHistoryAsync(sender.InstanceId);
        Assert.That(history.OfType<EventSentEvent>().Single().InstanceId, Is.EqualTo("receiver-1"));
    }

    [Test]
    public async Task Retry_HandleFailurePredicate_RetriesOnlyMatchingErrors()
    {
        var attempts = 0;
        await using var host = await StartAsync(b => b
            .AddOrchestratorFunc<object?, string>("Picky", async (ctx, _) =>
            {
                var policy = new RetryPolicy(5, TimeSpan.FromMilliseconds(5))
                {
                    HandleFailure = f => f.HasErrorType(typeof(TimeoutException).FullName!),
                };
                try
                {
                    return await ctx.CallActivityAsync<string>("Fails", null, TaskOptions.FromRetryPolicy(policy));
                }
                catch (TaskFailedException ex)
                {
                    return ex.FailureDetails.ErrorType;
                }
            })
            .AddActivityFunc<object?, string>("Fails", string (_, _) => Interlocked.Increment(ref attempts) < 3
                ? throw new TimeoutException("slow")
                : throw new InvalidOperationException("bad request")));

        var done = await RunToCompletionAsync(host, "Picky", null);

        Assert.That(done.ReadOutputAs<string>(), Is.EqualTo(typeof(InvalidOperationException).FullName));
        Assert.That(attempts, Is.EqualTo(3), "two timeouts retried, the third error is not handled");
    }

    [Test]
    public async Task Terminate_RunningParent_TerminatesRunningChildrenRecursively()
    {
        await using var host = await StartAsync(b => b
            .AddOrchestratorFunc<object?, string>("Parent", (ctx, _) => ctx.CallSubOrchestratorAsync<string>("Child", null, new SubOrchestrationOptions { InstanceId = "t-child" }))
            .AddOrchestratorFunc<object?, string>("Child", (ctx, _) => ctx.CallSubOrchestratorAsync<string>("Leaf", null, new SubOrchestrationOptions { InstanceId = "t-leaf" }))
            .AddOrchestratorFunc<object?, string>("Leaf", (ctx, _) => ctx.WaitForExternalEvent<string>("never")));
        var id = await host.Client.ScheduleNewOrchestrationInstanceAsync("Parent", null, new StartOrchestrationOptions { InstanceId = "t-parent" });
        await host.WaitUntilAsync("t-leaf", async () => (await host.Client.GetInstanceAsync("t-leaf"))?.RuntimeStatus == OrchestrationRuntimeStatus.Running, TestTimeout.Token(30));

        await host.Client.TerminateInstanceAsync(id, new TerminateInstanceOptions("operator stopped it", Recursive: true));

        var parent = await host.Client.WaitForInstanceCompletionAsync(id, true, TestTimeout.Token());
        var child = await host.Client.WaitForInstanceCompletionAsync("t-child", true, TestTimeout.Token());
        var leaf = await host.Client.WaitForInstanceCompletionAsync("t-leaf", true, TestTimeout.Token());
        Assert.That(parent.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Terminated));
        Assert.That(parent.ReadOutputAs<string>(), Is.EqualTo("operator stopped it"));
        Assert.That(child.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Terminated));
        Assert.That(leaf.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Terminated));
    }

    [Test]
    public async Task Terminate_FinishedInstance_ThrowsAndChangesNothing()
    {
        await using var host = await StartAsync(b => b.AddOrchestratorFunc<int, int>("Echo", (_, n) => Task.FromResult(n)));
        var done = await RunToCompletionAsync(host, "Echo", 7);
        var historyBefore = await host.Client.GetOrchestrationHistoryAsync(done.InstanceId);

        var ex = await Assert.ThrowsAsync<OrchestrationStateException>(() => host.Client.TerminateInstanceAsync(done.InstanceId, "too late"));

        Assert.That(ex!.Status, Is.EqualTo(OrchestrationRuntimeStatus.Completed));
        var after = await host.Client.GetInstanceAsync(done.InstanceId, true);
        Assert.That(after!.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Completed));
        Assert.That(after.ReadOutputAs<int>(), Is.EqualTo(7));
        Assert.That((await host.Client.GetOrchestrationHistoryAsync(done.InstanceId)).Count, Is.EqualTo(historyBefore.Count));
    }

    [Test]
    public async Task SuspendResume_EventsWaitWhileSuspended_ThenComplete()
    {
        await using var host = await StartAsync(b => b
            .AddOrchestratorFunc<object?, string>("Pausable", async (ctx, _) =>
            {
                ctx.SetCustomStatus("ready");
                return await ctx.WaitForExternalEvent<string>("go");
            }));
        var id = await host.Client.ScheduleNewOrchestrationInstanceAsync("Pausable");
        await host.WaitUntilAsync(id, async () => (await host.Client.GetInstanceAsync(id))?.SerializedCustomStatus == "\"ready\"", TestTimeout.Token(30));

        await host.Client.SuspendInstanceAsync(id, "maintenance");
        await host.WaitUntilAsync(id, async () => (await host.Client.GetInstanceAsync(id))?.RuntimeStatus == OrchestrationRuntimeStatus.Suspended, TestTimeout.Token(30));
        await host.Client.RaiseEventAsync(id, "go", "went");
        await host.WaitForIdlePollsAsync(3, TestTimeout.Token()); // polls found nothing due: the event waits
        Assert.That((await host.Client.GetInstanceAsync(id))!.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Suspended), "a suspended instance must not consume events");

        await host.Client.ResumeInstanceAsync(id, "done");
        var done = await host.Client.WaitForInstanceCompletionAsync(id, true, TestTimeout.Token());

        Assert.That(done.ReadOutputAs<string>(), Is.EqualTo("went"));
        var history = await host.Client.GetOrchestrationHistoryAsync(id);
        Assert.That(history.Select(e => e.EventType.ToString()), Does.Contain("ExecutionSuspended").And.Contain("ExecutionResumed"));
    }

    [Test]
    public async Task Rewind_FailedActivity_RunsAgain_CompletedWorkIsNotRepeated()
    {
        var once = 0;
        var flaky = 0;
        await using var host = await StartAsync(b => b
            .AddOrchestratorFunc<object?, string>("TwoSteps", async (ctx, _) =>
            {
                var a = await ctx.CallActivityAsync<string>("Once");
                var b = await ctx.CallActivityAsync<string>("FailsFirst");
                return a + "+" + b;
            })
            .AddActivityFunc<object?, string>("Once", (_, _) => "once#" + Interlocked.Increment(ref once))
            .AddActivityFunc<object?, string>("FailsFirst", string (_, _) =>
                Interlocked.Increment(ref flaky) == 1 ? throw new TimeoutException("upstream down") : "flaky#" + flaky));
        var failed = await RunToCompletionAsync(host, "TwoSteps", null, "rewind-1");
        Assert.That(failed.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Failed));

        await host.Client.RewindInstanceAsync("rewind-1", "upstream is back");
        var done = await host.Client.WaitForInstanceCompletionAsync("rewind-1", true, TestTimeout.Token());

        Assert.That(done.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Completed), done.FailureDetails?.ToString());
        Assert.That(done.ReadOutputAs<string>(), Is.EqualTo("once#1+flaky#2"));
        Assert.That(once, Is.EqualTo(1), "the completed step is not repeated");
        var history = await host.Client.GetOrchestrationHistoryAsync("rewind-1");
        Assert.That(history.OfType<TaskFailedEvent>(), Is.Empty, "the failed episode is out of the history");
        Assert.That(history.OfType<ExecutionCompletedEvent>().Single().OrchestrationStatus, Is.EqualTo(DurableTask.Core.OrchestrationStatus.Completed));
    }

    [Test]
    public async Task Rewind_FailedSubOrchestration_StartsItAgain_AndTheParentCompletes()
    {
        var attempts = 0;
        await using var host = await StartAsync(b => b
            .AddOrchestratorFunc<object?, string>("Parent", (ctx, _) => ctx.CallSubOrchestratorAsync<string>("Child", null, new SubOrchestrationOptions { InstanceId = "rewind-child" }))
            .AddOrchestratorFunc<object?, string>("Child", (ctx, _) => ctx.CallActivityAsync<string>("FailsFirst"))
            .AddActivityFunc<object?, string>("FailsFirst", string (_, _) =>
                Interlocked.Increment(ref attempts) == 1 ? throw new InvalidOperationException("first attempt fails") : "ok#" + attempts));
        var failed = await RunToCompletionAsync(host, "Parent", null, "rewind-parent");
        Assert.That(failed.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Failed));
        await Assert.ThrowsAsync<OrchestrationStateException>(() => host.Client.RewindInstanceAsync("rewind-child", "not the root"));

        await host.Client.RewindInstanceAsync("rewind-parent", "retry");
        var done = await host.Client.WaitForInstanceCompletionAsync("rewind-parent", true, TestTimeout.Token());

        Assert.That(done.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Completed), done.FailureDetails?.ToString());
        Assert.That(done.ReadOutputAs<string>(), Is.EqualTo("ok#2"));
        Assert.That((await host.Client.GetInstanceAsync("rewind-child"))!.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Completed));
    }

    [Test]
    public async Task Purge_FinishedInstance_RemovesEverything_RunningInstanceIsRefused()
    {
        await using var host = await StartAsync(b => b
            .AddOrchestratorFunc<int, int>("Echo", (_, n) => Task.FromResult(n))
            .AddOrchestratorFunc<object?, string>("Forever", (ctx, _) => ctx.WaitForExternalEvent<string>("never")));
        var done = await RunToCompletionAsync(host, "Echo", 1);
        var running = await host.Client.ScheduleNewOrchestrationInstanceAsync("Forever");
        await host.Client.WaitForInstanceStartAsync(running, false, TestTimeout.Token());

        Assert.That((await host.Client.PurgeInstanceAsync(done.InstanceId)).PurgedInstanceCount, Is.EqualTo(1));
        Assert.That(await host.Client.GetInstanceAsync(done.InstanceId), Is.Null);
        Assert.That((await host.Client.PurgeInstanceAsync(done.InstanceId)).PurgedInstanceCount, Is.Zero);
        await Assert.ThrowsAsync<OrchestrationStateException>(() => host.Client.PurgeInstanceAsync(running));
        Assert.That((await host.Client.GetInstanceAsync(running))!.IsRunning, Is.True);
    }

    [Test]
    public async Task PurgeAll_DeletesOnlyFinishedInstances()
    {
        await using var host = await StartAsync(b => b
            .AddOrchestratorFunc<int, int>("Echo", (_, n) => Task.FromResult(n))
            .AddOrchestratorFunc<object?, string>("Forever", (ctx, _) => ctx.WaitForExternalEvent<string>("never")));
        for (var i = 0; i < 3; i++)
        {
            await RunToCompletionAsync(host, "Echo", i);
        }

        var running = await host.Client.ScheduleNewOrchestrationInstanceAsync("Forever");

        var purged = await host.Client.PurgeAllInstancesAsync(new PurgeInstancesFilter());

        Assert.That(purged.PurgedInstanceCount, Is.EqualTo(3));
        Assert.That((await host.Backend.QueryInstancesAsync(new InstanceQuery())).Instances.Select(i => i.InstanceId), Is.EqualTo(new[] { running }));
    }

    [Test]
    public async Task Query_FiltersAndContinuationPaging_ReturnEveryInstanceOnce()
    {
        await using var host = await StartAsync(b => b
            .AddOrchestratorFunc<int, int>("Echo", (_, n) => Task.FromResult(n))
            .AddOrchestratorFunc<object?, string>("Forever", (ctx, _) => ctx.WaitForExternalEvent<string>("never")));
        for (var i = 0; i < 7; i++)
        {
            await RunToCompletionAsync(host, "Echo", i, $"echo-{i}");
        }

        await host.Client.ScheduleNewOrchestrationInstanceAsync("Forever", null, new StartOrchestrationOptions { InstanceId = "forever-1" });

        var seen = new List<string>();
        string? token = null;
        do
        {
            var page = await host.Backend.QueryInstancesAsync(new InstanceQuery { PageSize = 3, ContinuationToken = token, Name = "Echo" });
            Assert.That(page.Instances.Count, Is.LessThanOrEqualTo(3));
            seen.AddRange(page.Instances.Select(i => i.InstanceId));
            token = page.ContinuationToken;
        }
        while (token is not null);

        Assert.That(seen, Is.EquivalentTo(Enumerable.Range(0, 7).Select(i => $"echo-{i}")));
        var byPrefix = await host.Backend.QueryInstancesAsync(new InstanceQuery { InstanceIdPrefix = "forever" });
        Assert.That(byPrefix.Instances.Select(i => i.InstanceId), Is.EqualTo(new[] { "forever-1" }));
        var completed = await host.Backend.QueryInstancesAsync(new InstanceQuery { Statuses = [OrchestrationRuntimeStatus.Completed] });
        Assert.That(completed.Instances, Has.Count.EqualTo(7));
        var future = await host.Backend.QueryInstancesAsync(new InstanceQuery { CreatedFrom = DateTimeOffset.UtcNow.AddHours(1) });
        Assert.That(future.Instances, Is.Empty);

        var counts = await host.Backend.CountInstancesAsync();
        Assert.That(counts[OrchestrationRuntimeStatus.Completed], Is.EqualTo(7));
        Assert.That(counts.Keys.Except([OrchestrationRuntimeStatus.Completed]).Sum(k => counts[k]), Is.EqualTo(1), "forever-1, pending or running");
        Assert.That(await host.Backend.CountInstancesAsync(new InstanceQuery { InstanceIdPrefix = "echo-", Statuses = [OrchestrationRuntimeStatus.Failed] }), Is.EquivalentTo(new Dictionary<OrchestrationRuntimeStatus, long> { [OrchestrationRuntimeStatus.Completed] = 7 }), "counts ignore the status filter");
        Assert.That(await host.Backend.CountInstancesAsync(new InstanceQuery { CreatedFrom = DateTimeOffset.UtcNow.AddHours(1) }), Is.Empty);
    }

    [Test]
    public async Task StartAt_FutureTime_StaysPendingUntilThen()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        await using var host = await StartAsync(b => b.AddOrchestratorFunc<int, int>("Echo", (_, n) => Task.FromResult(n)), time: time);

        var id = await host.Client.ScheduleNewOrchestrationInstanceAsync("Echo", 5, new StartOrchestrationOptions { StartAt = time.GetUtcNow().AddMinutes(30) });
        await host.WaitForIdlePollsAsync(3, TestTimeout.Token()); // polls found nothing due before StartAt
        Assert.That((await host.Client.GetInstanceAsync(id))!.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Pending));

        time.Advance(TimeSpan.FromMinutes(31));
        var done = await host.Client.WaitForInstanceCompletionAsync(id, true, TestTimeout.Token());
        Assert.That(done.ReadOutputAs<int>(), Is.EqualTo(5));
    }

    [Test]
    public async Task Context_VersionCustomStatusGuidAndParent_AreReplaySafe()
    {
        await using var host = await StartAsync(b => b
            .AddOrchestratorFunc<object?, string>("Ids", async (ctx, _) =>
            {
                var g1 = ctx.NewGuid();
                await ctx.CallActivityAsync<int>("One");
                var g2 = ctx.NewGuid();
                ctx.SetCustomStatus(new { stage = "done" });
                var child = await ctx.CallSubOrchestratorAsync<string>("Child");
                return $"{ctx.Version}|{g1}|{g2}|{child}";
            })
            .AddOrchestratorFunc<object?, string>("Child", (ctx, _) => Task.FromResult(ctx.Parent!.Name + "/" + ctx.Parent.InstanceId))
            .AddActivityFunc<object?, int>("One", (_, _) => 1));

        var id = await host.Client.ScheduleNewOrchestrationInstanceAsync("Ids", null, new StartOrchestrationOptions { InstanceId = "ids-1", Version = new TaskVersion("2.1") });
        var done = await host.Client.WaitForInstanceCompletionAsync(id, true, TestTimeout.Token());

        var parts = done.ReadOutputAs<string>()!.Split('|');
        Assert.That(parts[0], Is.EqualTo("2.1"));
        Assert.That(parts[1], Is.Not.EqualTo(parts[2]));
        Assert.That(parts[3], Is.EqualTo("Ids/ids-1"));
        Assert.That((await host.Backend.GetInstanceRecordAsync(id))!.Version, Is.EqualTo("2.1"));
        Assert.That(done.SerializedCustomStatus, Is.EqualTo("{\"stage\":\"done\"}"));

        // Replaying the recorded history produces the same GUIDs: the orchestrator returns the same output.
        var history = await host.Client.GetOrchestrationHistoryAsync(id);
        Assert.That(history.OfType<ExecutionCompletedEvent>().Single().Result, Is.EqualTo(done.SerializedOutput));
    }

    [Test]
    public async Task Activities_GetScopedConstructorInjection_AndStableIdempotencyKey()
    {
        var keys = new ConcurrentBag<string>();
        await using var host = await StartAsync(
            b => b
                .AddOrchestratorFunc<object?, string[]>("Scoped", async (ctx, _) =>
                    [await ctx.CallActivityAsync<string>(nameof(ScopedActivity)), await ctx.CallActivityAsync<string>(nameof(ScopedActivity))])
                .AddActivity<ScopedActivity>(),
            services: s =>
            {
                s.AddScoped<ScopeMarker>();
                s.AddSingleton(keys);
            });

        var done = await RunToCompletionAsync(host, "Scoped", null, "scoped-1");

        var output = done.ReadOutputAs<string[]>()!;
        Assert.That(output[0], Is.Not.EqualTo(output[1]), "each invocation gets its own scope");
        Assert.That(keys.Order(), Is.EqualTo(new[] { $"scoped-1:{ExecutionOf(host, "scoped-1")}:0", $"scoped-1:{ExecutionOf(host, "scoped-1")}:1" }.Order()));
    }

    private static string ExecutionOf(DurableAgentsTestHost host, string id) =>
        host.Store.GetInstanceAsync(id, false).GetAwaiter().GetResult()!.ExecutionId;

    [Test]
    public async Task Cache_LongSequentialWorkflow_ResumesWithoutReplay_AndMissReplaysCorrectly()
    {
        var (factory, cleanup) = StoreKinds.Create(_storeKind);
        _cleanups.Add(cleanup);
        var Shared = factory; // each host gets its own store object on the same database
        void Register(DurableTaskRegistry b) => b
            .AddOrchestratorFunc<int, int>("Steps", async (ctx, n) =>
            {
                var sum = 0;
                for (var i = 0; i < n; i++)
                {
                    sum += await ctx.CallActivityAsync<int>("Inc", i);
                    if (i == n / 2)
                    {
                        await ctx.WaitForExternalEvent<string>("continue");
                    }
                }

                return sum;
            })
            .AddActivityFunc<int, int>("Inc", (_, i) => i + 1);

        string id;
        await using (var first = await DurableAgentsTestHost.StartAsync(Register, storeFactory: Shared))
        {
            id = await first.Client.ScheduleNewOrchestrationInstanceAsync("Steps", 40);
            await first.WaitUntilAsync(id, async () => (await first.Client.GetOrchestrationHistoryAsync(id)).OfType<TaskCompletedEvent>().Count() == 21, TestTimeout.Token(30));
            Assert.That(first.Worker.CacheMisses, Is.LessThanOrEqualTo(1), "one miss at most: the first episode");
            Assert.That(first.Worker.CacheHits, Is.GreaterThanOrEqualTo(20));
        }

        // A new host has an empty cache: the next episode replays the whole history.
        await using var second = await DurableAgentsTestHost.StartAsync(Register, storeFactory: Shared);
        await second.Client.RaiseEventAsync(id, "continue");
        var done = await second.Client.WaitForInstanceCompletionAsync(id, true, TestTimeout.Token());

        Assert.That(done.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Completed), done.FailureDetails?.ToString());
        Assert.That(done.ReadOutputAs<int>(), Is.EqualTo(Enumerable.Range(1, 40).Sum()));
        Assert.That(second.Worker.CacheMisses, Is.EqualTo(1));
        var history = await second.Client.GetOrchestrationHistoryAsync(id);
        Assert.That(history.OfType<TaskScheduledEvent>().Count(), Is.EqualTo(40), "no activity was scheduled twice");
    }

    [Test]
    public async Task NonDeterminism_CodeChangedWhileInstanceWaits_FailsNamingBothActivities()
    {
        var (factory, cleanup) = StoreKinds.Create(_storeKind);
        _cleanups.Add(cleanup);
        var Shared = factory; // each host gets its own store object on the same database

        string id;
        await using (var v1 = await DurableAgentsTestHost.StartAsync(
            b => b.AddOrchestratorFunc<object?, string>("Flow", async (ctx, _) =>
                {
                    await ctx.CallActivityAsync<string>("Research");
                    return await ctx.WaitForExternalEvent<string>("go");
                })
                .AddActivityFunc<object?, string>("Research", (_, _) => "r"),
            storeFactory: Shared))
        {
            id = await v1.Client.ScheduleNewOrchestrationInstanceAsync("Flow");
            await v1.WaitUntilAsync(id, async () => (await v1.Client.GetOrchestrationHistoryAsync(id)).OfType<TaskCompletedEvent>().Any(), TestTimeout.Token(30));
        }

        await using var v2 = await DurableAgentsTestHost.StartAsync(
            b => b.AddOrchestratorFunc<object?, string>("Flow", async (ctx, _) =>
                {
                    await ctx.CallActivityAsync<string>("Outline");
                    return await ctx.WaitForExternalEvent<string>("go");
                })
                .AddActivityFunc<object?, string>("Outline", (_, _) => "o"),
            storeFactory: Shared);
        await v2.Client.RaiseEventAsync(id, "go", "now");
        var done = await v2.Client.WaitForInstanceCompletionAsync(id, true, TestTimeout.Token());

        Assert.That(done.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Failed));
        Assert.That(done.FailureDetails!.ErrorType, Does.Contain("NonDeterministic"));
        Assert.That(done.FailureDetails.ErrorMessage, Does.Contain("Research"));
    }

}

/// <summary>A per-test gate: the activity signals that it is running and waits to be let go.</summary>
public sealed class Gate
{
    public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public TaskCompletionSource Open { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

public sealed class GateActivity(Gate gate) : TaskActivity<object?, string>
{
    public override async Task<string> RunAsync(TaskActivityContext context, object? input)
    {
        var cancellationToken = context.GetCancellationToken();
        gate.Entered.TrySetResult();
        await gate.Open.Task.WaitAsync(cancellationToken);
        return "open";
    }
}

public sealed class ScopeMarker
{
    public Guid Id { get; } = Guid.NewGuid();
}

public sealed class ScopedActivity(ScopeMarker marker, ConcurrentBag<string> keys) : TaskActivity<object?, string>
{
    public override Task<string> RunAsync(TaskActivityContext context, object? input)
    {
        keys.Add(context.GetIdempotencyKey());
        return Task.FromResult(marker.Id.ToString());
    }
}
