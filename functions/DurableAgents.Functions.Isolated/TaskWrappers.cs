using System.Security.Cryptography;
using System.Text.Json;
using DurableAgents.Activities.Llm;
using Microsoft.Azure.Functions.Worker;
using DurableAgents.Orchestrations;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;

namespace DurableAgents.Functions.Isolated;

/// <summary>
/// Runs the product's <see cref="TaskOrchestrator{TInput, TOutput}"/> and <see cref="TaskActivity{TInput, TOutput}"/>
/// classes behind Durable Functions triggers (what Microsoft.DurableTask.Generators would generate).
/// </summary>
internal static class TaskWrappers
{
    private static readonly HashSet<string> Workflows = new DurableTaskRegistry().AddWorkflows().GetOrchestrators().Select(o => o.Key.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);

    /// <summary>True for the name of a product workflow (schedules may start only those).</summary>
    public static bool IsWorkflow(string name) => Workflows.Contains(name);

    /// <summary>Runs an orchestrator class on the Durable extension's context.</summary>
    public static Task<TOutput> RunOrchestratorAsync<TOrchestrator, TInput, TOutput>(TaskOrchestrationContext context)
        where TOrchestrator : TaskOrchestrator<TInput, TOutput>, new()
    {
        ArgumentNullException.ThrowIfNull(context);
        return new TOrchestrator().RunAsync(context, context.GetInput<TInput>()!);
    }

    /// <summary>
    /// Runs an activity class with its dependencies from the worker's services. Durable Functions
    /// tells an activity its instance id only, so the DurableAgents invocation details are made
    /// from what it has: the execution is <c>functions</c> and the task id a stable hash of the
    /// activity's name and input (the same for a re-executed task; shared by two identical calls
    /// in one instance).
    /// </summary>
    public static async Task<TOutput> RunActivityAsync<TActivity, TInput, TOutput>(string name, TInput input, string instanceId, DurableTaskClient client, FunctionContext function)
        where TActivity : TaskActivity<TInput, TOutput>
    {
        ArgumentNullException.ThrowIfNull(function);
        function.InstanceServices.GetRequiredService<DurableClientHolder>().Set(client);
        var activity = ActivatorUtilities.GetServiceOrCreateInstance<TActivity>(function.InstanceServices);
        var invocation = new ActivityInvocation(instanceId, "functions", TaskIdOf(name, input), 1, function.CancellationToken);
        return await activity.RunAsync(new DurableAgentsActivityContext(name, invocation), input).ConfigureAwait(false);
    }

    /// <summary>A non-negative 31-bit hash of the activity's name and JSON input.</summary>
    internal static int TaskIdOf<TInput>(string name, TInput input)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(new { name, input });
        var hash = SHA256.HashData(bytes);
        return BitConverter.ToInt32(hash, 0) & int.MaxValue;
    }
}

/// <summary>
/// The Durable extension hands out its client through the <c>[DurableClient]</c> binding only;
/// activities that need one (the model service's budget lookup, StartScheduledRun) get the one
/// their trigger was given, which the extension caches per task hub.
/// </summary>
internal sealed class DurableClientHolder : IWorkflowNames
{
    private DurableTaskClient? _client;

    public DurableTaskClient Client => _client ?? throw new InvalidOperationException("No Durable Task client yet: it comes with the first activity or HTTP trigger invocation.");

    public void Set(DurableTaskClient client)
    {
        ArgumentNullException.ThrowIfNull(client);
        _client = client;
    }

    public async Task<WorkflowInstance?> DescribeAsync(string instanceId, CancellationToken cancellationToken) =>
        _client is not null && await _client.GetInstanceAsync(instanceId, false, cancellationToken).ConfigureAwait(false) is { } m ? new WorkflowInstance(m.Name, m.Tags) : null;
}
