using DurableAgents.Activities;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Moq;
using NUnit.Framework;

namespace DurableAgents.Functions.Isolated.Tests;

/// <summary>The activity wrappers give the product activities what they read from their context on Durable Functions.</summary>
public sealed class TaskWrapperTests
{
    [Test]
    public void TaskId_IsStableForTheSameCall_AndDiffersForOthers()
    {
        var a = TaskWrappers.TaskIdOf("CallModel", new { prompt = "hi" });

        Assert.That(TaskWrappers.TaskIdOf("CallModel", new { prompt = "hi" }), Is.EqualTo(a), "a re-executed task gets the same id (and idempotency key)");
        Assert.That(TaskWrappers.TaskIdOf("CallModel", new { prompt = "ho" }), Is.Not.EqualTo(a));
        Assert.That(TaskWrappers.TaskIdOf("Embed", new { prompt = "hi" }), Is.Not.EqualTo(a));
        Assert.That(a, Is.GreaterThanOrEqualTo(0));
    }

    [Test]
    public async Task ActivityWrapper_RunsTheClass_WithADurableAgentsContext_AndHandsOnTheClient()
    {
        var services = new ServiceCollection().AddSingleton<DurableClientHolder>().BuildServiceProvider();
        using var cts = new CancellationTokenSource();
        var function = new Mock<FunctionContext>();
        function.SetupGet(f => f.InstanceServices).Returns(services);
        function.SetupGet(f => f.CancellationToken).Returns(cts.Token);
        var client = new Mock<DurableTaskClient>("test").Object;

        var output = await ActivityFunctions.SayHello("Oslo", "run-1", client, function.Object);
        var key = await TaskWrappers.RunActivityAsync<KeyProbe, string, string>("KeyProbe", "x", "run-1", client, function.Object);

        Assert.That(output, Is.EqualTo("Hello Oslo!"));
        Assert.That(key, Is.EqualTo($"run-1:functions:{TaskWrappers.TaskIdOf("KeyProbe", "x")}"));
        Assert.That(services.GetRequiredService<DurableClientHolder>().Client, Is.SameAs(client));
    }

    /// <summary>Returns the idempotency key the activity sees.</summary>
    private sealed class KeyProbe : TaskActivity<string, string>
    {
        public override Task<string> RunAsync(TaskActivityContext context, string input) => Task.FromResult(context.GetIdempotencyKey());
    }
}
