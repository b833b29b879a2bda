using System.Globalization;
using DurableAgents.Activities;
using DurableAgents.Engine.Postgres;
using DurableAgents.Engine.Redis;
using DurableAgents.Engine.Sqlite;
using DurableAgents.Orchestrations;

namespace DurableAgents.Functions.Hosting;

/// <summary>Wires the engine, its store and the workflows into the host.</summary>
internal static class EngineHostingExtensions
{
    /// <summary>
    /// Listens where the Functions host asks (FUNCTIONS_CUSTOMHANDLER_PORT, loopback only) and
    /// otherwise on http://localhost:7071, the local Functions port, unless ASPNETCORE_URLS/--urls say otherwise.
    /// </summary>
    public static void AddListeningAddress(this WebApplicationBuilder builder)
    {
        var customHandlerPort = builder.Configuration["FUNCTIONS_CUSTOMHANDLER_PORT"];
        if (!string.IsNullOrEmpty(customHandlerPort))
        {
            if (!int.TryParse(customHandlerPort, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
            {
                throw new InvalidOperationException($"FUNCTIONS_CUSTOMHANDLER_PORT must be a TCP port number, not '{customHandlerPort}'.");
            }

            builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        }
        else if (string.IsNullOrEmpty(builder.Configuration["urls"]) && string.IsNullOrEmpty(builder.Configuration["ASPNETCORE_URLS"]))
        {
            builder.WebHost.UseUrls("http://localhost:7071");
        }

        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = Apis.ManagementApi.MaxRequestBodyBytes);
        builder.DeriveWorkerId(customHandlerPort);
    }

    /// <summary>
    /// Gives the host a stable id in the task hub when none is configured: machine name and listening
    /// port, which no two live processes share. Then a host restarted on the same machine and port
    /// releases its previous run's leases at start. On Azure the engine uses the instance id
    /// (WEBSITE_INSTANCE_ID) instead; with port 0 (a free port picked at start) the id stays random.
    /// </summary>
    private static void DeriveWorkerId(this WebApplicationBuilder builder, string? customHandlerPort)
    {
        var config = builder.Configuration;
        if (!string.IsNullOrWhiteSpace(config["DurableAgents:WorkerId"]) || !string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable("WEBSITE_INSTANCE_ID")))
        {
            return;
        }

        var url = (config["urls"] ?? config["ASPNETCORE_URLS"])?.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault();
        var port = !string.IsNullOrEmpty(customHandlerPort) ? int.Parse(customHandlerPort, CultureInfo.InvariantCulture)
            : url is null ? 7071
            : Uri.TryCreate(url.Replace("://*", "://0.0.0.0", StringComparison.Ordinal).Replace("://+", "://0.0.0.0", StringComparison.Ordinal), UriKind.Absolute, out var uri) ? uri.Port
            : 0;
        if (port > 0)
        {
            config.AddInMemoryCollection([new KeyValuePair<string, string?>("DurableAgents:WorkerId", $"{Environment.MachineName}:{port}")]);
        }
    }

    /// <summary>
    /// Registers the engine with the configured store (DurableAgents:Store = Sqlite | Postgres), the
    /// optional Redis wake-ups (DurableAgents:Redis:Configuration), and every workflow and activity.
    /// </summary>
    public static void AddDurableAgentsEngine(this WebApplicationBuilder builder)
    {
        var config = builder.Configuration;
        var store = config["DurableAgents:Store"] ?? "Sqlite";
        builder.Services.AddProductActivityServices(config);
        builder.Services.AddDurableAgents(b =>
        {
            switch (store.ToUpperInvariant())
            {
                case "SQLITE":
                    b.UseSqlite(); // DurableAgents:Sqlite (SqliteStoreOptions), validated at start
                    break;
                case "POSTGRES":
                    b.UsePostgres(); // DurableAgents:Postgres (PostgresStoreOptions), validated at start
                    break;
                default:
                    throw new InvalidOperationException($"DurableAgents:Store is '{store}'; supported stores: Sqlite, Postgres.");
            }

            if (config["DurableAgents:Redis:Configuration"] is { Length: > 0 } redis)
            {
                b.UseRedisNotifications(redis, config["DurableAgents:Postgres:TaskHub"] ?? "default");
            }

            b.AddTasks(r => r.AddWorkflows().AddProductActivities());
        });
        builder.Services.AddSingleton<Apis.ScheduleSync>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Apis.ScheduleSync>());
    }
}
