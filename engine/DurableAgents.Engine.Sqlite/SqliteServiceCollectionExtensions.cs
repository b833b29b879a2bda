using System.ComponentModel.DataAnnotations;
using DurableAgents.Engine.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace DurableAgents.Engine.Sqlite;

/// <summary>The embedded store's settings, bound from <c>DurableAgents:Sqlite</c> and validated at start.</summary>
public sealed class SqliteStoreOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "DurableAgents:Sqlite";

    /// <summary>A SQLite connection string; the folder of its file is created if missing.</summary>
    /// <value>The default value is <c>Data Source=.data/durableagents.db</c>.</value>
    [Required(AllowEmptyStrings = false, ErrorMessage = "DurableAgents:Sqlite:ConnectionString is empty; set it to e.g. 'Data Source=.data/durableagents.db'.")]
    public string ConnectionString { get; set; } = "Data Source=.data/durableagents.db";

    /// <summary>
    /// <c>PRAGMA synchronous=FULL</c>: survives power loss, slower. The default (NORMAL in WAL mode)
    /// survives process crashes (SIGKILL) but may lose the last commits on power loss.
    /// </summary>
    /// <value>The default value is false.</value>
    public bool SynchronousFull { get; set; }
}

/// <summary>Registers the embedded SQLite store.</summary>
public static class SqliteDurableAgentsBuilderExtensions
{
    /// <summary>
    /// Uses an SQLite file as the store. Settings bind from <c>DurableAgents:Sqlite</c>
    /// (<see cref="SqliteStoreOptions"/>), then <paramref name="configure"/>, and are validated at start.
    /// </summary>
    public static DurableAgentsBuilder UseSqlite(this DurableAgentsBuilder builder, Action<SqliteStoreOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = builder.Services.AddOptions<SqliteStoreOptions>().BindConfiguration(SqliteStoreOptions.SectionName);
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<IOrchestrationStore>(sp =>
        {
            var o = sp.GetRequiredService<IOptions<SqliteStoreOptions>>().Value;
            return new SqliteOrchestrationStore(o.ConnectionString, o.SynchronousFull);
        });
        return builder;
    }

    /// <summary>Uses an SQLite file as the store, e.g. <c>b.UseSqlite("Data Source=.data/durableagents.db")</c>.</summary>
    public static DurableAgentsBuilder UseSqlite(this DurableAgentsBuilder builder, string connectionString, bool synchronousFull = false) =>
        builder.UseSqlite(o =>
        {
            o.ConnectionString = connectionString;
            o.SynchronousFull = synchronousFull;
        });
}
