using DurableAgents.Engine.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace DurableAgents.Engine.Postgres;

/// <summary>Registers the PostgreSQL store.</summary>
public static class PostgresDurableAgentsBuilderExtensions
{
    /// <summary>
    /// Uses PostgreSQL as the store, with LISTEN/NOTIFY wake-ups across hosts. Settings bind from
    /// <c>DurableAgents:Postgres</c> (<see cref="PostgresStoreOptions"/>), then <paramref name="configure"/>,
    /// and are validated at start. One <see cref="NpgsqlDataSource"/> per process is registered in DI, with
    /// Npgsql's logging on the host's logger factory (parameter logging stays off); the activity stores
    /// (ledger, conversations, memory) use the same one.
    /// </summary>
    public static DurableAgentsBuilder UsePostgres(this DurableAgentsBuilder builder, Action<PostgresStoreOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = builder.Services.AddOptions<PostgresStoreOptions>().BindConfiguration(PostgresStoreOptions.SectionName);
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateDataAnnotations().ValidateOnStart();
        builder.Services.TryAddSingleton(sp => CreateDataSource(sp.GetRequiredService<IOptions<PostgresStoreOptions>>().Value, sp.GetRequiredService<ILoggerFactory>()));
        builder.Services.AddSingleton<IOrchestrationStore>(sp => new PostgresOrchestrationStore(
            sp.GetRequiredService<NpgsqlDataSource>(),
            sp.GetRequiredService<IOptions<PostgresStoreOptions>>().Value.TaskHub));
        builder.Services.AddSingleton<IHostedService, PostgresNotificationListener>();
        return builder;
    }

    /// <summary>Uses PostgreSQL with this connection string and task hub.</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="connectionString">An Npgsql connection string (DurableAgents:Postgres:ConnectionString).</param>
    /// <param name="taskHub">Partitions the tables so several apps can share a database. The default value is "default".</param>
    public static DurableAgentsBuilder UsePostgres(this DurableAgentsBuilder builder, string connectionString, string taskHub = "default") =>
        builder.UsePostgres(o =>
        {
            o.ConnectionString = connectionString;
            o.TaskHub = taskHub;
        });

    /// <summary>The process's data source for the store's settings.</summary>
    /// <exception cref="ArgumentException">The connection string does not parse (the message never quotes it).</exception>
    public static NpgsqlDataSource CreateDataSource(PostgresStoreOptions options, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        NpgsqlConnectionStringBuilder parsed;
        try
        {
            parsed = new NpgsqlConnectionStringBuilder(options.ConnectionString);
        }
        catch (ArgumentException ex)
        {
            // The message of a parse error can quote the string: do not pass it on, it may hold a password.
            throw new ArgumentException("DurableAgents:Postgres:ConnectionString is not a valid Npgsql connection string.", nameof(options), ex.InnerException);
        }

        if (!options.ConnectionString.Contains("Max Auto Prepare", StringComparison.OrdinalIgnoreCase))
        {
            // The store's statements are a fixed set per task hub: prepared once per connection,
            // the server skips parsing and planning them on every call.
            parsed.MaxAutoPrepare = options.MaxAutoPrepare;
        }

        var builder = new NpgsqlDataSourceBuilder(parsed.ConnectionString);
        if (loggerFactory is not null)
        {
            builder.UseLoggerFactory(loggerFactory);
        }

        return builder.Build();
    }
}
