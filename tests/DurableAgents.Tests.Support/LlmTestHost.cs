using DurableAgents.Activities.Contracts.Llm;
using DurableAgents.Activities.Llm;
using DurableAgents.Engine;
using DurableAgents.Engine.Client;
using DurableAgents.Engine.Testing;
using DurableAgents.Orchestrations;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Tests.Support;

/// <summary>
/// An in-process engine host with the real model services, configured like the app is (configuration
/// keys under DurableAgents:Llm), its ledger in a SQLite file of its own, and logs captured.
/// </summary>
public sealed class LlmTestHost : IAsyncDisposable
{
    private readonly DurableAgentsTestHost _host;
    private readonly string _dir;

    private LlmTestHost(DurableAgentsTestHost host, string dir, CapturingLoggerProvider logs)
    {
        _host = host;
        _dir = dir;
        Logs = logs;
    }

    public CapturingLoggerProvider Logs { get; }

    public DurableTaskClient Client => _host.Client;

    /// <summary>The backend client (protocol history, counts).</summary>
    public DurableAgentsClient Backend => _host.Backend;

    public IServiceProvider Services => _host.Services;

    public IModelLedger Ledger => Services.GetRequiredService<IModelLedger>();

    public ModelService Models => Services.GetRequiredService<ModelService>();

    /// <summary>Runs a workflow to completion (2 minutes at most) and returns its metadata.</summary>
    public async Task<OrchestrationMetadata> RunAsync(string workflow, object input, string? instanceId = null)
    {
        var id = await Client.ScheduleNewOrchestrationInstanceAsync(workflow, input, new StartOrchestrationOptions { InstanceId = instanceId });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        return await Client.WaitForInstanceCompletionAsync(id, true, cts.Token);
    }

    /// <summary>Runs the <see cref="AgentChat"/> workflow and returns its completed metadata.</summary>
    public async Task<OrchestrationMetadata> ChatAsync(AgentChatInput input, string? instanceId = null)
    {
        var id = await Client.ScheduleNewOrchestrationInstanceAsync(nameof(AgentChat), input, new StartOrchestrationOptions { InstanceId = instanceId });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        return await Client.WaitForInstanceCompletionAsync(id, true, cts.Token);
    }

    /// <summary>Fast resilience for tests: 10 ms back-off, a breaker that needs 50 calls (tests that test the breaker lower it).</summary>
    public static Dictionary<string, string?> FastResilience() => new()
    {
        ["DurableAgents:Llm:Resilience:MaxRetryAttempts"] = "2",
        ["DurableAgents:Llm:Resilience:RetryBaseDelay"] = "00:00:00.010",
        ["DurableAgents:Llm:Resilience:AttemptTimeout"] = "00:00:05",
        ["DurableAgents:Llm:Resilience:CircuitMinimumThroughput"] = "50",
    };

    /// <summary>A profile entry for an OpenAI-compatible provider at <paramref name="server"/>.</summary>
    public static Dictionary<string, string?> Provider(string profile, int index, string name, FakeOpenAiServer server, string kind = "OpenAICompatible", string model = "gpt-test", string? apiKey = "sk-test-key") => new()
    {
        [$"DurableAgents:Llm:Profiles:{profile}:Providers:{index}:Name"] = name,
        [$"DurableAgents:Llm:Profiles:{profile}:Providers:{index}:Kind"] = kind,
        [$"DurableAgents:Llm:Profiles:{profile}:Providers:{index}:Endpoint"] = kind == "AzureOpenAI" ? server.BaseAddress.ToString() : server.OpenAiEndpoint.ToString(),
        [$"DurableAgents:Llm:Profiles:{profile}:Providers:{index}:Model"] = model,
        [$"DurableAgents:Llm:Profiles:{profile}:Providers:{index}:EmbeddingModel"] = "embed-test",
        [$"DurableAgents:Llm:Profiles:{profile}:Providers:{index}:ApiKey"] = apiKey,
    };

    public static Task<LlmTestHost> StartAsync(params IEnumerable<KeyValuePair<string, string?>>[] settings) => StartAsync(null, settings);

    /// <summary>Starts a host; <paramref name="services"/> adds test services (tools, agents, a socket connector).</summary>
    public static async Task<LlmTestHost> StartAsync(Action<IServiceCollection>? services, params IEnumerable<KeyValuePair<string, string?>>[] settings)
    {
        var dir = Path.Combine(Path.GetTempPath(), "durableagents-llm-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var values = new Dictionary<string, string?>
        {
            ["DurableAgents:Sqlite:ConnectionString"] = $"Data Source={Path.Combine(dir, "ledger.db")}",
            ["DurableAgents:Llm:Prices:gpt-test:InputPerMillion"] = "2.5",
            ["DurableAgents:Llm:Prices:gpt-test:OutputPerMillion"] = "10",
        };
        foreach (var pair in settings.SelectMany(s => s))
        {
            values[pair.Key] = pair.Value;
        }

        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        var logs = new CapturingLoggerProvider();
        var host = await DurableAgentsTestHost.StartAsync(
            b => b.AddAgentActivities()
                .AddWorkflows()
                .AddOrchestrator<Ask>(),
            services: s =>
            {
                s.AddSingleton<IConfiguration>(configuration);
                s.AddAgentActivityServices(configuration);
                s.AddWorkflowAgents();
                services?.Invoke(s);
            },
            loggerProvider: logs);
        return new LlmTestHost(host, dir, logs);
    }

    /// <summary>Runs the <see cref="Ask"/> workflow and returns its completed metadata.</summary>
    public async Task<OrchestrationMetadata> AskAsync(ModelRequest request, string? instanceId = null)
    {
        var id = await Client.ScheduleNewOrchestrationInstanceAsync(nameof(Ask), request, new StartOrchestrationOptions { InstanceId = instanceId });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        return await Client.WaitForInstanceCompletionAsync(id, true, cts.Token);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>A one-step workflow: one CallModel activity, no orchestration-side retries.</summary>
public sealed class Ask : TaskOrchestrator<ModelRequest, ModelResponse>
{
    public override Task<ModelResponse> RunAsync(TaskOrchestrationContext context, ModelRequest input) => context.CallModelAsync(input);
}
