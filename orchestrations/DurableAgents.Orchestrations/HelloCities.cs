using DurableAgents.Activities.Contracts;
using Microsoft.DurableTask;

namespace DurableAgents.Orchestrations;

/// <summary>The smallest useful workflow: greet each city in turn, one checkpointed activity per city.</summary>
public sealed class HelloCities : TaskOrchestrator<string[]?, List<string>>
{
    /// <inheritdoc />
    public override async Task<List<string>> RunAsync(TaskOrchestrationContext context, string[]? input)
    {
        var cities = input is { Length: > 0 } ? input : ["Tokyo", "Seattle", "London", "Cairo", "Lima"];
        var greetings = new List<string>();
        foreach (var city in cities)
        {
            context.SetCustomStatus(new { city });
            greetings.Add(await context.CallActivityAsync<string>(ActivityNames.SayHello, city));
        }

        return greetings;
    }
}
