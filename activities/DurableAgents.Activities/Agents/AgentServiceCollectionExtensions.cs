using DurableAgents.Activities;
using DurableAgents.Activities.Agents;
using DurableAgents.Activities.Llm;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Services of agents: tools, agent profiles, conversations and memory.</summary>
public static class AgentServiceCollectionExtensions
{
    /// <summary>
    /// Agent profiles (DurableAgents:Agents), tool limits (DurableAgents:Tools), the built-in tools, the tool
    /// registry, the conversation store and long-term memory in the engine's database, and short-term memory in
    /// Redis when DurableAgents:Redis:Configuration is set (in-process otherwise).
    /// </summary>
    public static IServiceCollection AddAgentServices(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<AgentOptions>().BindConfiguration(AgentOptions.SectionName).ValidateOnStart();
        services.AddSingleton<IValidateOptions<AgentOptions>, AgentOptionsValidator>();
        services.AddOptions<ToolOptions>().BindConfiguration(ToolOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<MemoryOptions>().BindConfiguration(MemoryOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<PublishingOptions>().BindConfiguration(PublishingOptions.SectionName);
        services.TryAddSingleton(TimeProvider.System);

        services.TryAddSingleton(sp => new SafeFetcher(sp.GetRequiredService<IOptions<ToolOptions>>(), sp.GetService<SocketConnector>()));
        services.AddAgentTool<WebFetchTool>()
            .AddAgentTool<SitemapTool>()
            .AddAgentTool<MemorySearchTool>()
            .AddAgentTool<MemorySaveTool>()
            .AddAgentTool<ScratchpadReadTool>()
            .AddAgentTool<ScratchpadWriteTool>()
            .AddAgentTool<RequestHumanInputTool>();
        services.TryAddSingleton<ToolRegistry>();

        ActivityDatabase.TryAdd(services, configuration); // the one the model ledger uses
        services.TryAddSingleton<ConversationStore>();
        services.TryAddSingleton(sp => new FactStore(sp.GetRequiredService<ActivityDatabase>(), sp.GetRequiredService<IOptions<MemoryOptions>>().Value, sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton(sp => new MemoryService(
            sp.GetRequiredService<ModelService>(),
            sp.GetRequiredService<FactStore>(),
            sp.GetRequiredService<IOptions<MemoryOptions>>().Value,
            sp.GetRequiredService<Logging.ILogger<MemoryService>>()));
        if (configuration["DurableAgents:Redis:Configuration"] is { Length: > 0 })
        {
            services.TryAddSingleton<ISessionMemory>(sp => new RedisSessionMemory(sp.GetRequiredService<LlmRedis>(), sp.GetRequiredService<IOptions<MemoryOptions>>().Value));
        }
        else
        {
            services.TryAddSingleton<ISessionMemory>(sp => new InProcessSessionMemory(sp.GetRequiredService<IOptions<MemoryOptions>>().Value, sp.GetRequiredService<TimeProvider>()));
        }

        return services;
    }

    /// <summary>Registers a tool (grant it to agents by name in DurableAgents:Agents:{agent}:Tools).</summary>
    public static IServiceCollection AddAgentTool<TTool>(this IServiceCollection services)
        where TTool : class, IAgentTool
    {
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IAgentTool, TTool>());
        return services;
    }

    /// <summary>
    /// Defines an agent in code; configuration (DurableAgents:Agents:{name}:…) overrides any property it sets.
    /// </summary>
    public static IServiceCollection AddAgent(this IServiceCollection services, string name, Action<AgentProfile> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<AgentOptions>().Configure<IConfiguration>((options, configuration) =>
        {
            var profile = new AgentProfile();
            configure(profile);
            var section = configuration.GetSection($"DurableAgents:Agents:{name}");
            if (section.GetSection("Tools").Exists())
            {
                profile.Tools.Clear(); // a configured list replaces the code's, it does not add to it
            }

            section.Bind(profile);
            options.Agents[name] = profile;
        });
        return services;
    }
}

/// <summary>Checks agent profiles at start: every granted tool exists.</summary>
internal sealed class AgentOptionsValidator(IEnumerable<IAgentTool> tools) : IValidateOptions<AgentOptions>
{
    public ValidateOptionsResult Validate(string? name, AgentOptions options)
    {
        var known = tools.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var errors = new List<string>();
        foreach (var (agent, profile) in options.Agents)
        {
            foreach (var tool in profile.Tools.Where(t => !known.Contains(t)))
            {
                errors.Add($"DurableAgents:Agents:{agent}:Tools grants '{tool}', which is not a registered tool (registered: {string.Join(", ", known.Order(StringComparer.Ordinal))}).");
            }

            if (profile.MaxTurns is < 1 or > 200)
            {
                errors.Add($"DurableAgents:Agents:{agent}:MaxTurns must be between 1 and 200.");
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
