namespace DurableAgents.Engine.Storage.Relational;

/// <summary>The schema upgrade rules both SQL stores apply before running a script.</summary>
internal static class StoreSchema
{
    /// <summary>The first schema whose histories are Durable Task protocol events.</summary>
    public static readonly Version ProtocolHistory = new(2, 0, 0);

    /// <summary>
    /// Throws when <paramref name="version"/> would upgrade a database that holds instances written
    /// in the pre-SDK history format (schema 1.x): those histories cannot be read by this version.
    /// </summary>
    /// <exception cref="InvalidOperationException">The database holds 1.x instances.</exception>
    public static void CheckUpgrade(IReadOnlySet<string> applied, string version, long instanceCount, string where)
    {
        ArgumentNullException.ThrowIfNull(applied);
        if (Version.Parse(version) == ProtocolHistory && applied.Count > 0 && instanceCount > 0)
        {
            throw new InvalidOperationException(
                $"The task hub in {where} was created by DurableAgents 1.x (schema {string.Join(", ", applied.Order(StringComparer.Ordinal))}) and holds {instanceCount} instance(s) " +
                "whose histories are in the pre-SDK format, which this version cannot replay. Point this version at a new task hub " +
                "(DurableAgents:Postgres:TaskHub) or database file (DurableAgents:Sqlite:ConnectionString), or finish and purge those instances with the version that wrote them.");
        }
    }
}
