using DurableAgents.Engine;
using DurableAgents.Engine.Client;
using DurableAgents.Engine.Hosting;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the DurableAgents engine.</summary>
public static class DurableAgentsServiceCollectionExtensions
{
    /// <summary>
    /// Adds the engine: client, worker (unless <see cref="DurableAgentsOptions.EnableWorker"/> is false)
    /// and the orchestrators and activities registered in <paramref name="configure"/>. A store must be
    /// registered too (for example <c>b.UseSqlite(...)</c>). Options bind from the <c>DurableAgents</c>
    /// configuration section and are validated at start.
    /// </summary>
    public static DurableAgentsBuilder AddDurableAgents(this IServiceCollection services, Action<DurableAgentsBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        var registry = new TaskRegistry();
        var builder = new DurableAgentsBuilder(services, registry);
        services.AddSingleton(registry);
        services.AddOptions<DurableAgentsOptions>()
            .BindConfiguration(DurableAgentsOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<WorkSignal>();
        services.TryAddSingleton<DurableTaskClient>();
        services.TryAddSingleton<DurableAgentsWorker>();
        // Registered before the worker: hosted services start in order, so the schema exists
        // before any work or client call, and an unreachable store fails start-up clearly.
        services.AddSingleton<IHostedService, StoreInitializer>();
        services.AddSingleton<IHostedService>(sp =>
            sp.GetRequiredService<IOptions<DurableAgentsOptions>>().Value.EnableWorker
                ? sp.GetRequiredService<DurableAgentsWorker>()
                : new NoopHostedService());
        configure(builder);
        return builder;
    }

    private sealed class StoreInitializer(DurableAgents.Engine.Storage.IOrchestrationStore store) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => store.EnsureCreatedAsync(cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    private sealed class NoopHostedService : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
