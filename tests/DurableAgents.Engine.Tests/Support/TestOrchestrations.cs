using Microsoft.DurableTask;
namespace DurableAgents.Engine.Tests.Support;

/// <summary>Orchestrators shared by tests and by the checked-in histories.</summary>
public sealed class SequentialGreeting : TaskOrchestrator<string[], List<string>>
{
    public override async Task<List<string>> RunAsync(TaskOrchestrationContext context, string[] input)
    {
        var results = new List<string>();
        foreach (var city in input)
        {
            results.Add(await context.CallActivityAsync<string>("SayHello", city));
        }

        return results;
    }
}

/// <summary>The same orchestrator after a careless change: a new activity inserted in front.</summary>
public sealed class SequentialGreetingChanged : TaskOrchestrator<string[], List<string>>
{
    public override async Task<List<string>> RunAsync(TaskOrchestrationContext context, string[] input)
    {
        await context.CallActivityAsync<string>("Audit", "start");
        var results = new List<string>();
        foreach (var city in input)
        {
            results.Add(await context.CallActivityAsync<string>("SayHello", city));
        }

        return results;
    }
}
