using DurableAgents.Engine.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace DurableAgents.Engine.Sqlite;

/// <summary>Registers the embedded SQLite store.</summary>
public static class SqliteDurableAgentsBuilderExtensions
{
    /// <summary>Uses an SQLite file as the store, e.g. <c>b.UseSqlite("Data Source=.data/durableagents.db")</c>.</summary>
    public static DurableAgentsBuilder UseSqlite(this DurableAgentsBuilder builder, string connectionString, bool synchronousFull = false)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddSingleton<IOrchestrationStore>(_ => new SqliteOrchestrationStore(connectionString, synchronousFull));
        return builder;
    }
}
