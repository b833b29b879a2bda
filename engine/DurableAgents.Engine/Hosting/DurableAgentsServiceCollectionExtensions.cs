using DurableAgents.Engine;
using DurableAgents.Engine.Client;
using DurableAgents.Engine.Hosting;
using DurableAgents.Engine.Storage;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Worker;
using Microsoft.DurableTask.Worker.Shims;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the DurableAgents backend for the Durable Task SDK.</summary>
public static class DurableAgentsServiceCollectionExtensions
{
    /// <summary>
    /// Adds the backend with the SDK's worker and client on it: the same as
    /// <c>AddDurableAgentsBackend()</c>, <c>AddDurableTaskWorker(b => b.UseDurableAgents())</c> and
    /// <c>AddDurableTaskClient(b => b.UseDurableAgents())</c>. Register orchestrators and activities
    /// with <c>b.AddTasks(r => ...)</c>; a store must be registered too (for example
    /// <c>b.UseSqlite(...)</c>). Options bind from the <c>DurableAgents</c> configuration section and
    /// are validated at start.
    /// </summary>
    public static DurableAgentsBuilder AddDurableAgents(this IServiceCollection services, Action<DurableAgentsBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.AddDurableAgentsBackend();
        DurableAgentsBuilder? builder = null;
        services.AddDurableTaskWorker(w =>
        {
            w.UseDurableAgents();
            builder = new DurableAgentsBuilder(services, w);
        });
        services.AddDurableTaskClient(c => c.UseDurableAgents());
        configure(builder!);
        return builder!;
    }

    /// <summary>
    /// Adds what the DurableAgents worker and client share (options, wake-ups, the store's start-up
    /// hosted service, the SDK data converter). Called by <see cref="AddDurableAgents"/>; call it
    /// yourself when composing with the SDK's own <c>AddDurableTaskWorker</c>/<c>AddDurableTaskClient</c>.
    /// </summary>
    public static IServiceCollection AddDurableAgentsBackend(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (services.Any(d => d.ServiceType == typeof(BackendMarker)))
        {
            return services;
        }

        services.AddSingleton<BackendMarker>();
        services.AddOptions<DurableAgentsOptions>()
            .BindConfiguration(DurableAgentsOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<WorkSignal>();
        services.TryAddSingleton<EpisodeObservers>();

        // WARNING: payloads of in-flight orchestrations were written with this converter; a host
        // that changes it must still read what is stored (see DataConverter).
        services.Configure<DurableTaskWorkerOptions>(o => o.DataConverter = DataConverter.Sdk);
        services.Configure<DurableTaskClientOptions>(o => o.DataConverter = DataConverter.Sdk);

        // The SDK's runner takes its data converter and logger factory from this factory.
        services.TryAddSingleton(sp => new DurableTaskShimFactory(
            sp.GetRequiredService<IOptionsMonitor<DurableTaskWorkerOptions>>().Get(Options.Options.DefaultName),
            sp.GetRequiredService<ILoggerFactory>()));
        services.TryAddSingleton(sp => (DurableAgentsClient)sp.GetRequiredService<DurableTaskClient>());

        // Registered before the worker: hosted services start in order, so the schema exists
        // before any work or client call, and an unreachable store fails start-up clearly.
        services.AddSingleton<IHostedService, StoreInitializer>();

        // Then the heartbeat: it registers this host (releasing what a previous run under the same
        // id held) before the worker polls, and stops after the worker, handing back what is left.
        services.TryAddSingleton<HostIdentity>();
        services.TryAddSingleton<HostLiveness>();
        services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<HostLiveness>());
        return services;
    }

    /// <summary>Runs this SDK worker on the DurableAgents backend.</summary>
    public static IDurableTaskWorkerBuilder UseDurableAgents(this IDurableTaskWorkerBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddDurableAgentsBackend();
        builder.UseBuildTarget<DurableAgentsWorker>();
        return builder;
    }

    /// <summary>Points this SDK client at the DurableAgents backend.</summary>
    public static IDurableTaskClientBuilder UseDurableAgents(this IDurableTaskClientBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddDurableAgentsBackend();
        builder.UseBuildTarget<DurableAgentsClient>();
        return builder;
    }

    private sealed class BackendMarker;

    private sealed class StoreInitializer(IOrchestrationStore store) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => store.EnsureCreatedAsync(cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
