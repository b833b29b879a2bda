using DurableAgents.Engine.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace DurableAgents.Engine.Postgres;

/// <summary>Registers the PostgreSQL store.</summary>
public static class PostgresDurableAgentsBuilderExtensions
{
    /// <summary>
    /// Uses PostgreSQL as the store, with LISTEN/NOTIFY wake-ups across hosts.
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="connectionString">An Npgsql connection string (DurableAgents:Postgres:ConnectionString).</param>
    /// <param name="taskHub">Partitions the tables so several apps can share a database. The default value is "default".</param>
    public static DurableAgentsBuilder UsePostgres(this DurableAgentsBuilder builder, string connectionString, string taskHub = "default")
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddSingleton<IOrchestrationStore>(_ => new PostgresOrchestrationStore(connectionString, taskHub));
        builder.Services.AddSingleton<IHostedService, PostgresNotificationListener>();
        return builder;
    }
}
