using System.ComponentModel.DataAnnotations;

namespace DurableAgents.Engine.Postgres;

/// <summary>The PostgreSQL store's settings, bound from <c>DurableAgents:Postgres</c> and validated at start.</summary>
public sealed class PostgresStoreOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "DurableAgents:Postgres";

    /// <summary>An Npgsql connection string. Its password never appears in a log or an error.</summary>
    [Required(AllowEmptyStrings = false, ErrorMessage = "DurableAgents:Postgres:ConnectionString is empty; set it to an Npgsql connection string.")]
    public string ConnectionString { get; set; } = string.Empty;

    /// <summary>Partitions the tables (a schema <c>durableagents_&lt;hub&gt;</c>), so several apps can share a database.</summary>
    /// <value>The default value is "default".</value>
    [RegularExpression("^[a-z0-9_]{1,40}$", ErrorMessage = "DurableAgents:Postgres:TaskHub must be 1-40 characters of a-z, 0-9 and _.")]
    public string TaskHub { get; set; } = "default";

    /// <summary>Statements Npgsql prepares per connection (the store's statements are a fixed set).</summary>
    /// <value>The default value is 64.</value>
    [Range(0, 1024)]
    public int MaxAutoPrepare { get; set; } = 64;
}
