using Microsoft.DurableTask;
using Microsoft.DurableTask.Worker;
using Microsoft.Extensions.DependencyInjection;

namespace DurableAgents.Engine;

/// <summary>
/// Returned by <c>services.AddDurableAgents(...)</c>: the SDK's worker builder (register
/// orchestrators and activities on it as with any Durable Task worker) and the service collection
/// for the store extensions (<c>UseSqlite</c>, <c>UsePostgres</c>, <c>UseRedis</c>).
/// </summary>
public sealed class DurableAgentsBuilder
{
    internal DurableAgentsBuilder(IServiceCollection services, IDurableTaskWorkerBuilder worker)
    {
        Services = services;
        Worker = worker;
    }

    /// <summary>The service collection, for store extensions.</summary>
    public IServiceCollection Services { get; }

    /// <summary>The Durable Task SDK's worker builder this backend runs.</summary>
    public IDurableTaskWorkerBuilder Worker { get; }

    /// <summary>
    /// Registers orchestrators and activities in the SDK's <see cref="DurableTaskRegistry"/>, e.g.
    /// <c>b.AddTasks(r => r.AddOrchestrator&lt;ContentPipeline&gt;().AddActivity&lt;CallModel&gt;())</c>.
    /// </summary>
    public DurableAgentsBuilder AddTasks(Action<DurableTaskRegistry> configure)
    {
        Worker.AddTasks(configure);
        return this;
    }
}
