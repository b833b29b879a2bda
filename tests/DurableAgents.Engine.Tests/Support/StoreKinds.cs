using DurableAgents.Engine.Sqlite;
using DurableAgents.Engine.Storage;

namespace DurableAgents.Engine.Tests.Support;

/// <summary>
/// The stores the conformance suite runs on. SQLite always; other stores join here when their
/// server is available (scripts/test.sh starts them and exports the connection strings).
/// </summary>
public static class StoreKinds
{
    public static IEnumerable<string> All
    {
        get
        {
            yield return "sqlite";
        }
    }

    /// <summary>A factory for a fresh, empty store of the kind, and a cleanup action.</summary>
    public static (Func<IServiceProvider, IOrchestrationStore> Factory, Action Cleanup) Create(string kind)
    {
        switch (kind)
        {
            case "sqlite":
                var dir = Path.Combine(Path.GetTempPath(), "durableagents-tests", Guid.NewGuid().ToString("N"));
                Directory.CreateDirectory(dir);
                var path = Path.Combine(dir, "store.db");
                return (_ => new SqliteOrchestrationStore($"Data Source={path}"), () =>
                {
                    Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
                    try
                    {
                        Directory.Delete(dir, true);
                    }
                    catch (IOException)
                    {
                    }
                });
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown store kind.");
        }
    }
}
