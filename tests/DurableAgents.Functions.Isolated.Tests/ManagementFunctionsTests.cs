using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Moq;
using NUnit.Framework;

namespace DurableAgents.Functions.Isolated.Tests;

/// <summary>The isolated app's HTTP functions against a mocked <see cref="DurableTaskClient"/> (the one class under test is the function).</summary>
public sealed class ManagementFunctionsTests
{
    private static DefaultHttpContext Http(string method, string path, string? json = null, string contentType = "application/json")
    {
        var http = new DefaultHttpContext { RequestServices = new ServiceCollection().AddLogging().BuildServiceProvider() };
        http.Request.Method = method;
        http.Request.Scheme = "https";
        http.Request.Host = new HostString("agents.example.net");
        http.Request.Path = path;
        if (json is not null)
        {
            http.Request.ContentType = contentType;
            http.Request.Body = new MemoryStream(Encoding.UTF8.GetBytes(json));
        }

        http.Response.Body = new MemoryStream();
        return http;
    }

    private static async Task<(int Status, JsonElement Body, IHeaderDictionary Headers)> ExecuteAsync(IResult result, DefaultHttpContext http)
    {
        await result.ExecuteAsync(http);
        http.Response.Body.Position = 0;
        var text = await new StreamReader(http.Response.Body).ReadToEndAsync();
        return (http.Response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone(), http.Response.Headers);
    }

    private static OrchestrationMetadata Instance(string id, OrchestrationRuntimeStatus status) => new("HelloCities", id)
    {
        RuntimeStatus = status,
        SerializedInput = "[\"Oslo\"]",
        SerializedOutput = status == OrchestrationRuntimeStatus.Completed ? "[\"Hello Oslo!\"]" : null,
        CreatedAt = DateTimeOffset.UnixEpoch,
        LastUpdatedAt = DateTimeOffset.UnixEpoch,
    };

    [Test]
    public async Task Start_Answers202_WithTheStatusAndControlUris()
    {
        var client = new Mock<DurableTaskClient>("test");
        client.Setup(c => c.ScheduleNewOrchestrationInstanceAsync(It.IsAny<TaskName>(), It.IsAny<object?>(), It.IsAny<StartOrchestrationOptions?>(), It.IsAny<CancellationToken>()))
            .ReturnsAsync("run-1");
        var http = Http("POST", "/api/orchestrators/HelloCities/run-1", "[\"Oslo\"]");

        var (status, body, headers) = await ExecuteAsync(await ManagementFunctions.StartAsync(http.Request, client.Object, "HelloCities", "run-1"), http);

        Assert.That(status, Is.EqualTo(202));
        Assert.That(headers.Location.ToString(), Is.EqualTo("https://agents.example.net/api/instances/run-1"));
        Assert.That(body.GetProperty("statusQueryGetUri").GetString(), Is.EqualTo("https://agents.example.net/api/instances/run-1"));
        Assert.That(body.GetProperty("sendEventPostUri").GetString(), Is.EqualTo("https://agents.example.net/api/instances/run-1/raiseEvent/{eventName}"));
        Assert.That(body.GetProperty("terminatePostUri").GetString(), Does.StartWith("https://agents.example.net/api/instances/run-1/terminate"));
        client.Verify(c => c.ScheduleNewOrchestrationInstanceAsync(
            It.Is<TaskName>(n => n.Name == "HelloCities"),
            It.Is<object?>(o => o is JsonElement && ((JsonElement)o).GetArrayLength() == 1),
            It.Is<StartOrchestrationOptions?>(o => o!.InstanceId == "run-1"),
            It.IsAny<CancellationToken>()), Times.Once);
    }

    [Test]
    public async Task Start_WithAnInstanceUriKey_PutsItInEveryUri()
    {
        var client = new Mock<DurableTaskClient>("test");
        client.Setup(c => c.ScheduleNewOrchestrationInstanceAsync(It.IsAny<TaskName>(), It.IsAny<object?>(), It.IsAny<StartOrchestrationOptions?>(), It.IsAny<CancellationToken>())).ReturnsAsync("run-2");
        var http = Http("POST", "/api/orchestrators/HelloCities");
        http.RequestServices = new ServiceCollection().AddLogging()
            .AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["DurableAgents:Api:InstanceUriKey"] = "instance-key" }).Build())
            .BuildServiceProvider();

        var (status, body, headers) = await ExecuteAsync(await ManagementFunctions.StartAsync(http.Request, client.Object, "HelloCities", null), http);

        Assert.That(status, Is.EqualTo(202));
        Assert.That(body.GetProperty("statusQueryGetUri").GetString(), Is.EqualTo("https://agents.example.net/api/instances/run-2?code=instance-key"));
        Assert.That(body.GetProperty("suspendPostUri").GetString(), Is.EqualTo("https://agents.example.net/api/instances/run-2/suspend?reason={text}&code=instance-key"));
        Assert.That(headers.Location.ToString(), Is.EqualTo("https://agents.example.net/api/instances/run-2?code=instance-key"));
    }

    [TestCase("{not json", "application/json", 400)]
    [TestCase("[1]", "text/plain", 415)]
    public async Task Start_WithABadBody_IsAProblem_AndStartsNothing(string json, string contentType, int expected)
    {
        var client = new Mock<DurableTaskClient>(MockBehavior.Strict, "test");
        var http = Http("POST", "/api/orchestrators/HelloCities", json, contentType);

        var (status, body, _) = await ExecuteAsync(await ManagementFunctions.StartAsync(http.Request, client.Object, "HelloCities", null), http);

        Assert.That(status, Is.EqualTo(expected));
        Assert.That(body.GetProperty("status").GetInt32(), Is.EqualTo(expected), "problem details");
        client.VerifyNoOtherCalls();
    }

    [TestCase(OrchestrationRuntimeStatus.Running, 202)]
    [TestCase(OrchestrationRuntimeStatus.Completed, 200)]
    public async Task Status_Is202WhileRunning_And200WhenDone(OrchestrationRuntimeStatus runtime, int expected)
    {
        var client = new Mock<DurableTaskClient>("test");
        client.Setup(c => c.GetInstanceAsync("run-1", true, It.IsAny<CancellationToken>())).ReturnsAsync(Instance("run-1", runtime));
        var http = Http("GET", "/api/instances/run-1");

        var (status, body, _) = await ExecuteAsync(await ManagementFunctions.GetStatusAsync(http.Request, client.Object, "run-1"), http);

        Assert.That(status, Is.EqualTo(expected));
        Assert.That(body.GetProperty("runtimeStatus").GetString(), Is.EqualTo(runtime.ToString()));
        Assert.That(body.GetProperty("input")[0].GetString(), Is.EqualTo("Oslo"));
    }

    [Test]
    public async Task RaiseEvent_ForAnUnknownInstance_Is404_AndRaisesNothing()
    {
        var client = new Mock<DurableTaskClient>("test");
        client.Setup(c => c.GetInstanceAsync("nope", false, It.IsAny<CancellationToken>())).ReturnsAsync((OrchestrationMetadata?)null);
        var http = Http("POST", "/api/instances/nope/raiseEvent/approval", "{\"approved\":true}");

        var (status, body, _) = await ExecuteAsync(await ManagementFunctions.RaiseEventAsync(http.Request, client.Object, "nope", "approval"), http);

        Assert.That(status, Is.EqualTo(404));
        Assert.That(body.GetProperty("detail").GetString(), Does.Contain("nope"));
        client.Verify(c => c.RaiseEventAsync(It.IsAny<string>(), It.IsAny<string>(), It.IsAny<object?>(), It.IsAny<CancellationToken>()), Times.Never);
    }

    [Test]
    public async Task RaiseEvent_PassesTheJsonBody()
    {
        var client = new Mock<DurableTaskClient>("test");
        client.Setup(c => c.GetInstanceAsync("run-1", false, It.IsAny<CancellationToken>())).ReturnsAsync(Instance("run-1", OrchestrationRuntimeStatus.Running));
        var http = Http("POST", "/api/instances/run-1/raiseEvent/approval", "{\"approved\":true}");

        var (status, _, _) = await ExecuteAsync(await ManagementFunctions.RaiseEventAsync(http.Request, client.Object, "run-1", "approval"), http);

        Assert.That(status, Is.EqualTo(202));
        client.Verify(c => c.RaiseEventAsync("run-1", "approval", It.Is<object?>(o => ((JsonElement)o!).GetProperty("approved").GetBoolean()), It.IsAny<CancellationToken>()), Times.Once);
    }

    [Test]
    public async Task Terminate_IsRecursive_AndAConflictIsAProblem()
    {
        var client = new Mock<DurableTaskClient>("test");
        client.Setup(c => c.TerminateInstanceAsync("done", It.IsAny<TerminateInstanceOptions?>(), It.IsAny<CancellationToken>()))
            .ThrowsAsync(new Grpc.Core.RpcException(new Grpc.Core.Status(Grpc.Core.StatusCode.FailedPrecondition, "the instance is already completed")));
        var ok = Http("POST", "/api/instances/run-1/terminate");
        ok.Request.QueryString = new QueryString("?reason=enough");
        var done = Http("POST", "/api/instances/done/terminate");

        var (okStatus, _, _) = await ExecuteAsync(await ManagementFunctions.TerminateAsync(ok.Request, client.Object, "run-1"), ok);
        var (conflict, body, _) = await ExecuteAsync(await ManagementFunctions.TerminateAsync(done.Request, client.Object, "done"), done);

        Assert.That(okStatus, Is.EqualTo(202));
        client.Verify(c => c.TerminateInstanceAsync("run-1", It.Is<TerminateInstanceOptions?>(o => o!.Recursive && (string?)o.Output == "enough"), It.IsAny<CancellationToken>()), Times.Once);
        Assert.That(conflict, Is.EqualTo(409));
        Assert.That(body.GetProperty("detail").GetString(), Is.EqualTo("the instance is already completed"));
    }

    [Test]
    public async Task Purge_OfNothing_Is404()
    {
        var client = new Mock<DurableTaskClient>("test");
        client.Setup(c => c.PurgeInstanceAsync("nope", It.IsAny<PurgeInstanceOptions?>(), It.IsAny<CancellationToken>())).ReturnsAsync(new PurgeResult(0));
        var http = Http("DELETE", "/api/instances/nope");

        var (status, _, _) = await ExecuteAsync(await ManagementFunctions.PurgeAsync(http.Request, client.Object, "nope"), http);

        Assert.That(status, Is.EqualTo(404));
    }
}

/// <summary>The schedules' keep-alive timer against a mocked client.</summary>
public sealed class ScheduleFunctionsTests
{
    [Test]
    public async Task Heartbeat_StartsMissingAndFinishedRunners_LeavesRunningOnes_SkipsInvalid()
    {
        var config = new Microsoft.Extensions.Configuration.ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["DurableAgents:Schedules:nightly:Cron"] = "0 3 * * *",
            ["DurableAgents:Schedules:nightly:Orchestrator"] = "HelloCities",
            ["DurableAgents:Schedules:weekly:Cron"] = "0 6 * * 1",
            ["DurableAgents:Schedules:weekly:Orchestrator"] = "WeeklyContent",
            ["DurableAgents:Schedules:done:Cron"] = "0 6 * * *",
            ["DurableAgents:Schedules:done:Orchestrator"] = "SeoAudit",
            ["DurableAgents:Schedules:typo:Cron"] = "0 6 * * *",
            ["DurableAgents:Schedules:typo:Orchestrator"] = "NoSuchWorkflow",
        }).Build();
        var client = new Mock<DurableTaskClient>("test");
        client.Setup(c => c.GetInstanceAsync("schedule:nightly", false, It.IsAny<CancellationToken>())).ReturnsAsync((OrchestrationMetadata?)null);
        client.Setup(c => c.GetInstanceAsync("schedule:weekly", false, It.IsAny<CancellationToken>())).ReturnsAsync(new OrchestrationMetadata("ScheduleRunner", "schedule:weekly") { RuntimeStatus = OrchestrationRuntimeStatus.Suspended });
        client.Setup(c => c.GetInstanceAsync("schedule:done", false, It.IsAny<CancellationToken>())).ReturnsAsync(new OrchestrationMetadata("ScheduleRunner", "schedule:done") { RuntimeStatus = OrchestrationRuntimeStatus.Failed });
        client.Setup(c => c.ScheduleNewOrchestrationInstanceAsync(It.IsAny<TaskName>(), It.IsAny<object?>(), It.IsAny<StartOrchestrationOptions?>(), It.IsAny<CancellationToken>())).ReturnsAsync((TaskName _, object? _, StartOrchestrationOptions? o, CancellationToken _) => o!.InstanceId!);

        var started = await new ScheduleFunctions(config, Microsoft.Extensions.Logging.Abstractions.NullLogger<ScheduleFunctions>.Instance).SyncAsync(client.Object, CancellationToken.None);

        Assert.That(started, Is.EqualTo(2));
        client.Verify(c => c.ScheduleNewOrchestrationInstanceAsync(It.Is<TaskName>(n => n.Name == "ScheduleRunner"), It.IsAny<object?>(), It.Is<StartOrchestrationOptions?>(o => o!.InstanceId == "schedule:nightly"), It.IsAny<CancellationToken>()), Times.Once);
        client.Verify(c => c.ScheduleNewOrchestrationInstanceAsync(It.IsAny<TaskName>(), It.IsAny<object?>(), It.Is<StartOrchestrationOptions?>(o => o!.InstanceId == "schedule:done"), It.IsAny<CancellationToken>()), Times.Once);
        client.Verify(c => c.ScheduleNewOrchestrationInstanceAsync(It.IsAny<TaskName>(), It.IsAny<object?>(), It.Is<StartOrchestrationOptions?>(o => o!.InstanceId == "schedule:weekly" || o.InstanceId == "schedule:typo"), It.IsAny<CancellationToken>()), Times.Never);
    }
}
