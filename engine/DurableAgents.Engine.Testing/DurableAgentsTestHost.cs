using DurableAgents.Engine.Client;
using DurableAgents.Engine.Hosting;
using Microsoft.DurableTask.Client;
using DurableAgents.Engine.Sqlite;
using DurableAgents.Engine.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace DurableAgents.Engine.Testing;

/// <summary>
/// A real engine (worker, client, store) in the test process. By default it runs on a throw-away
/// SQLite file; pass a store factory to run the same tests on another store.
/// </summary>
public sealed class DurableAgentsTestHost : IAsyncDisposable
{
    private readonly IHost _host;
    private readonly string? _tempDirectory;

    private DurableAgentsTestHost(IHost host, string? tempDirectory)
    {
        _host = host;
        _tempDirectory = tempDirectory;
    }

    /// <summary>The Durable Task SDK client.</summary>
    public DurableTaskClient Client => _host.Services.GetRequiredService<DurableTaskClient>();

    /// <summary>The same client with the backend's extras (protocol history, counts, name filter).</summary>
    public DurableAgentsClient Backend => _host.Services.GetRequiredService<DurableAgentsClient>();

    /// <summary>The store.</summary>
    public IOrchestrationStore Store => _host.Services.GetRequiredService<IOrchestrationStore>();

    /// <summary>The worker, for cache statistics.</summary>
    public DurableAgentsWorker Worker => _host.Services.GetServices<IHostedService>().OfType<DurableAgentsWorker>().Single();

    /// <summary>The service provider.</summary>
    public IServiceProvider Services => _host.Services;

    /// <summary>Builds and starts a host with the orchestrators and activities <paramref name="tasks"/> registers in the SDK's registry.</summary>
    public static Task<DurableAgentsTestHost> StartAsync(
        Action<Microsoft.DurableTask.DurableTaskRegistry> tasks,
        Action<DurableAgentsOptions>? options = null,
        TimeProvider? timeProvider = null,
        Func<IServiceProvider, IOrchestrationStore>? storeFactory = null,
        Action<IServiceCollection>? services = null,
        ILoggerProvider? loggerProvider = null,
        CancellationToken cancellationToken = default) =>
        StartAsync(b => b.AddTasks(tasks), options, timeProvider, storeFactory, services, loggerProvider, cancellationToken);

    /// <summary>Builds and starts a host.</summary>
    /// <param name="configure">Registers orchestrators and activities (<c>b.AddTasks(r => ...)</c>).</param>
    /// <param name="options">Adjusts engine options (poll intervals default to 1–20 ms for fast tests).</param>
    /// <param name="timeProvider">A fake clock, if the test controls time.</param>
    /// <param name="storeFactory">Creates the store; null for a fresh SQLite file in a temp folder.</param>
    /// <param name="services">Extra services for activities.</param>
    /// <param name="loggerProvider">Captures logs.</param>
    /// <param name="cancellationToken">Cancels start-up.</param>
    public static async Task<DurableAgentsTestHost> StartAsync(
        Action<DurableAgentsBuilder> configure,
        Action<DurableAgentsOptions>? options = null,
        TimeProvider? timeProvider = null,
        Func<IServiceProvider, IOrchestrationStore>? storeFactory = null,
        Action<IServiceCollection>? services = null,
        ILoggerProvider? loggerProvider = null,
        CancellationToken cancellationToken = default)
    {
        string? temp = null;
        if (storeFactory is null)
        {
            temp = Path.Combine(Path.GetTempPath(), "durableagents-tests", Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(temp);
            var path = Path.Combine(temp, "store.db");
            storeFactory = _ => new SqliteOrchestrationStore($"Data Source={path}");
        }

        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        if (loggerProvider is not null)
        {
            builder.Logging.AddProvider(loggerProvider);
            builder.Logging.SetMinimumLevel(LogLevel.Debug);
        }

        builder.Services.AddSingleton(timeProvider ?? TimeProvider.System);
        builder.Services.AddSingleton(storeFactory);
        builder.Services.AddDurableAgents(configure);
        builder.Services.Configure<DurableAgentsOptions>(o =>
        {
            o.MinPollInterval = TimeSpan.FromMilliseconds(1);
            o.MaxPollInterval = TimeSpan.FromMilliseconds(20);
            options?.Invoke(o);
        });
        services?.Invoke(builder.Services);
        var host = builder.Build();
        await host.StartAsync(cancellationToken).ConfigureAwait(false);
        return new DurableAgentsTestHost(host, temp);
    }

    /// <summary>
    /// Waits until <paramref name="condition"/> holds, re-checking it after every commit of the
    /// instance by this host's worker: woken by the commit, never by sleeping.
    /// </summary>
    public Task WaitUntilAsync(string instanceId, Func<Task<bool>> condition, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(condition);
        return Services.GetRequiredService<WorkSignal>().WaitForAsync(
            instanceId,
            async () => (await condition().ConfigureAwait(false), true),
            firstPoll: null,
            maxPoll: default,
            TimeProvider.System,
            cancellationToken);
    }

    /// <summary>
    /// Waits until the orchestration dispatcher has polled <paramref name="polls"/> more times and
    /// found nothing due: "nothing happened" as an event, not as the end of a sleep.
    /// </summary>
    public Task WaitForIdlePollsAsync(int polls, CancellationToken cancellationToken)
    {
        var signal = Services.GetRequiredService<WorkSignal>();
        var target = Worker.EmptyOrchestrationPolls + polls;
        return signal.WaitForAsync(
            DurableAgentsWorker.IdlePollKey,
            () =>
            {
                var done = Worker.EmptyOrchestrationPolls >= target;
                if (!done)
                {
                    // A poll also happens when the clock or a notification wakes the dispatcher.
                    signal.WakeOrchestrations();
                }

                return Task.FromResult((done, done));
            },
            firstPoll: null,
            maxPoll: default,
            TimeProvider.System,
            cancellationToken);
    }

    /// <summary>Stops the host; work still running after <paramref name="shutdownTimeout"/> is cancelled and abandoned.</summary>
    public async Task StopAsync(TimeSpan shutdownTimeout)
    {
        using var cts = new CancellationTokenSource(shutdownTimeout);
        await _host.StopAsync(cts.Token).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);

        if (_host.Services.GetService<IOrchestrationStore>() is IDisposable d)
        {
            d.Dispose();
        }

        _host.Dispose();
        if (_tempDirectory is not null)
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            try
            {
                Directory.Delete(_tempDirectory, recursive: true);
            }
            catch (IOException)
            {
                // best effort: the OS temp cleaner will get it
            }
        }
    }
}
