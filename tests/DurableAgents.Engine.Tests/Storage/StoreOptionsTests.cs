using DurableAgents.Engine.Postgres;
using DurableAgents.Engine.Sqlite;
using DurableAgents.Engine.Storage;
using DurableAgents.Engine.Testing;
using DurableAgents.Engine.Tests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using NUnit.Framework;

namespace DurableAgents.Engine.Tests.Storage;

/// <summary>Store settings are bound and validated options; PostgreSQL gets one data source per process, with Npgsql's logging wired.</summary>
public sealed class StoreOptionsTests
{
    private static IHost Build(Dictionary<string, string?> settings, Action<DurableAgentsBuilder> store, ILoggerProvider? logs = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Logging.ClearProviders();
        if (logs is not null)
        {
            builder.Logging.AddProvider(logs);
            builder.Logging.SetMinimumLevel(LogLevel.Debug);
        }

        builder.Services.AddDurableAgents(b => store(b.AddTasks(r => r.AddOrchestratorFunc<int, int>("Echo", (_, n) => Task.FromResult(n)))));
        return builder.Build();
    }

    [TestCase("DurableAgents:Postgres:TaskHub", "Bad-Hub!", "DurableAgents:Postgres:TaskHub must be 1-40 characters")]
    [TestCase("DurableAgents:Postgres:ConnectionString", "", "DurableAgents:Postgres:ConnectionString is empty")]
    public async Task UsePostgres_InvalidSetting_StartFailsNamingIt(string key, string value, string expected)
    {
        var settings = new Dictionary<string, string?> { ["DurableAgents:Postgres:ConnectionString"] = "Host=127.0.0.1;Port=1;Username=u;Password=hunter2;Database=d", [key] = value };
        using var host = Build(settings, b => b.UsePostgres());

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.That(ex!.Message, Does.Contain(expected));
        Assert.That(ex.Message, Does.Not.Contain("hunter2"));
    }

    [Test]
    public async Task UseSqlite_EmptyConnectionString_StartFailsNamingIt()
    {
        using var host = Build(new Dictionary<string, string?> { ["DurableAgents:Sqlite:ConnectionString"] = "" }, b => b.UseSqlite());

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.That(ex!.Message, Does.Contain("DurableAgents:Sqlite:ConnectionString is empty"));
    }

    [Test]
    public async Task UsePostgres_OneDataSourcePerProcess_WithNpgsqlLoggingOnTheHostsLoggers()
    {
        var cs = StoreKinds.PostgresConnectionString ?? throw new IgnoreException("no PostgreSQL server: run scripts/test.sh");
        var hub = "o" + Guid.NewGuid().ToString("N")[..12];
        var logs = new CapturingLoggerProvider();
        try
        {
            using var host = Build(new Dictionary<string, string?> { ["DurableAgents:Postgres:ConnectionString"] = cs, ["DurableAgents:Postgres:TaskHub"] = hub }, b => b.UsePostgres(), logs);
            await host.StartAsync();

            var store = host.Services.GetRequiredService<IOrchestrationStore>();
            Assert.That(await store.GetInstanceAsync("none", false), Is.Null);
            Assert.That(host.Services.GetRequiredService<NpgsqlDataSource>(), Is.SameAs(host.Services.GetRequiredService<NpgsqlDataSource>()));
            Assert.That(logs.Entries.Select(e => e.Category), Has.Some.StartsWith("Npgsql"), "Npgsql logs through the host's logger factory");
            await host.StopAsync();
        }
        finally
        {
            StoreKinds.DropHub(cs, hub);
        }
    }
}
