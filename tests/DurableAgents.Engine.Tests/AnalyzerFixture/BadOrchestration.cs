using Microsoft.DurableTask;

namespace BadOrchestration;

public sealed class NonDeterministic : TaskOrchestrator<int, string>
{
    public override async Task<string> RunAsync(TaskOrchestrationContext context, int input)
    {
        var now = DateTime.UtcNow;
        var id = Guid.NewGuid();
        await Task.Delay(1000);
        await Task.Run(() => input + 1);
        var dice = new Random().Next();
        await context.CallActivityAsync<int>("x").ConfigureAwait(false);
        return $"{now}{id}{dice}";
    }
}
