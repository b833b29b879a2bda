using DurableAgents.Activities;
using DurableAgents.Activities.Live;
using DurableAgents.Activities.Llm;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Services of the model activities (CallModel, Embed).</summary>
public static class LlmServiceCollectionExtensions
{
    /// <summary>
    /// Model profiles and providers (DurableAgents:Llm), each provider's resilient HttpClient, the ledger in
    /// the engine's database (DurableAgents:Store), and the response cache and token streams in Redis when
    /// DurableAgents:Redis:Configuration is set, in-process otherwise.
    /// </summary>
    public static IServiceCollection AddModelServices(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<LlmOptions>().BindConfiguration(LlmOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IValidateOptions<LlmOptions>, LlmOptionsValidator>();
        services.AddSingleton<IValidateOptions<LlmOptions>>(new LlmPrioritiesValidator(configuration));
        services.TryAddSingleton(TimeProvider.System);

        var llm = configuration.GetSection(LlmOptions.SectionName).Get<LlmOptions>() ?? new LlmOptions();
        foreach (var provider in llm.Profiles.Values.SelectMany(p => p.Providers).Where(p => p.Kind != ModelProviderKind.Simulator).DistinctBy(p => p.EffectiveName))
        {
            ModelClients.AddHttpClient(services, provider, llm.Resilience);
        }

        services.AddHttpClient();
        services.TryAddSingleton<ModelClients>();
        services.TryAddSingleton<IWorkflowNames, ClientWorkflowNames>();
        services.TryAddSingleton<ModelService>();

        ActivityDatabase.TryAdd(services, configuration);
        services.TryAddSingleton<IModelLedger>(sp => new RelationalModelLedger(sp.GetRequiredService<ActivityDatabase>()));
        services.TryAddSingleton(sp => new RateLimitWaits(sp.GetRequiredService<ActivityDatabase>(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton(sp =>
        {
            // Limits are held in Redis when it is configured (falling back to the database while it is down), else in the database.
            var llm = sp.GetRequiredService<IOptions<LlmOptions>>().Value;
            var clock = sp.GetRequiredService<TimeProvider>();
            IRateLimitStore store = new RelationalRateLimitStore(sp.GetRequiredService<ActivityDatabase>(), clock);
            if (sp.GetService<LlmRedis>() is { } redis)
            {
                store = new RedisRateLimitStore(redis, store, clock, sp.GetRequiredService<ILogger<RedisRateLimitStore>>());
            }

            return new ModelRateLimiter(store, llm.InteractiveReserve, llm.BatchShare, llm.BatchPaceWindow);
        });
        services.TryAddSingleton(sp => new ModelHost(sp.GetService<DurableAgents.Engine.Hosting.HostIdentity>()?.HostId ?? Environment.GetEnvironmentVariable("WEBSITE_INSTANCE_ID") ?? Environment.MachineName));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<DurableAgents.Engine.Hosting.IHostLeaseObserver, InterruptedModelCalls>());
        var taskHub = configuration["DurableAgents:Postgres:TaskHub"] ?? "default";

        if (configuration["DurableAgents:Redis:Configuration"] is { Length: > 0 } redis)
        {
            services.TryAddSingleton(sp => new LlmRedis(redis, taskHub, sp.GetRequiredService<ILogger<LlmRedis>>()));
            services.TryAddSingleton<IModelResponseCache>(sp => new RedisModelResponseCache(sp.GetRequiredService<LlmRedis>(), sp.GetRequiredService<IOptions<LlmOptions>>().Value.Cache));
            services.TryAddSingleton<IAgentEventLog>(sp => new RedisAgentEventLog(sp.GetRequiredService<LlmRedis>(), sp.GetRequiredService<IOptions<LiveStreamOptions>>().Value));
            services.TryAddSingleton(sp => new ModelInterrupts(sp.GetRequiredService<LlmRedis>()));
        }
        else
        {
            services.TryAddSingleton<IModelResponseCache>(sp => new MemoryModelResponseCache(sp.GetRequiredService<IOptions<LlmOptions>>().Value.Cache));
            services.TryAddSingleton<IAgentEventLog>(sp => new InProcessAgentEventLog(sp.GetRequiredService<IOptions<LiveStreamOptions>>().Value, sp.GetRequiredService<TimeProvider>()));
            services.TryAddSingleton(_ => new ModelInterrupts());
        }

        // The live event stream of each instance (AG-UI events), and the run lifecycle on it from every committed episode.
        services.AddOptions<LiveStreamOptions>().BindConfiguration("DurableAgents:Live").Validate(o => o.MaxEvents > 0 && o.MaxAge > TimeSpan.Zero && o.MaxInstances > 0 && o.KeepAlive >= TimeSpan.Zero && !(o.ResponseWindow < TimeSpan.Zero), "DurableAgents:Live:MaxEvents, MaxAge and MaxInstances must be positive, KeepAlive and ResponseWindow zero or more.").ValidateOnStart();
        services.TryAddSingleton<LiveEvents>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<DurableAgents.Engine.Hosting.IEpisodeObserver, RunLifecycleEvents>());

        services.AddHostedService<SimulatorNotice>();
        return services;
    }
}

/// <summary>Checks provider entries at start, naming the setting that is wrong (never its value).</summary>
internal sealed class LlmOptionsValidator : IValidateOptions<LlmOptions>
{
    public ValidateOptionsResult Validate(string? name, LlmOptions options)
    {
        var errors = new List<string>();
        foreach (var (profileName, profile) in options.Profiles)
        {
            if (profile.Providers.Count == 0)
            {
                errors.Add($"DurableAgents:Llm:Profiles:{profileName}:Providers is empty.");
            }

            if (profile.EscalateTo is { } to && !options.Profiles.ContainsKey(to))
            {
                errors.Add($"DurableAgents:Llm:Profiles:{profileName}:EscalateTo names '{to}', which is not a configured profile.");
            }

            for (var i = 0; i < profile.Providers.Count; i++)
            {
                var p = profile.Providers[i];
                var at = $"DurableAgents:Llm:Profiles:{profileName}:Providers:{i}";
                if (p.Kind is ModelProviderKind.AzureOpenAI or ModelProviderKind.OpenAICompatible && !Uri.TryCreate(p.Endpoint, UriKind.Absolute, out _))
                {
                    errors.Add($"{at}:Endpoint must be an absolute URL for a {p.Kind} provider.");
                }

                if (p.Kind == ModelProviderKind.AzureOpenAI && string.IsNullOrEmpty(p.ApiKey) && !p.UseManagedIdentity)
                {
                    errors.Add($"{at}: an AzureOpenAI provider needs ApiKey or UseManagedIdentity=true.");
                }

                if (p.Kind == ModelProviderKind.OpenAI && string.IsNullOrEmpty(p.ApiKey))
                {
                    errors.Add($"{at}:ApiKey is required for an OpenAI provider.");
                }

                foreach (var (setting, value) in new[] { ("TokensPerMinute", p.TokensPerMinute), ("RequestsPerMinute", p.RequestsPerMinute), ("MaxConcurrent", p.MaxConcurrent) })
                {
                    if (value is <= 0)
                    {
                        errors.Add($"{at}:{setting} must be a positive number (leave it unset for no limit); it is {value}.");
                    }
                }

                if (p.BackgroundResponses && p.Kind == ModelProviderKind.AzureOpenAI)
                {
                    errors.Add($"{at}:BackgroundResponses is not available with Kind=AzureOpenAI (its Azure SDK route has no background responses); use Kind=OpenAICompatible with the resource's v1 endpoint https://<resource>.openai.azure.com/openai/v1/ and its key.");
                }

                if (p.Kind != ModelProviderKind.Simulator && string.IsNullOrWhiteSpace(p.Model))
                {
                    errors.Add($"{at}:Model is required.");
                }
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

/// <summary>
/// Lanes in <c>Llm:Priorities</c> as written (the binder drops values it cannot convert, which would
/// silently put a misspelt workflow's calls in the interactive lane).
/// </summary>
internal sealed class LlmPrioritiesValidator(IConfiguration configuration) : IValidateOptions<LlmOptions>
{
    public ValidateOptionsResult Validate(string? name, LlmOptions options)
    {
        var errors = configuration.GetSection(LlmOptions.SectionName + ":Priorities").GetChildren()
            .Where(c => !(Enum.TryParse<DurableAgents.Activities.Contracts.Llm.ModelPriority>(c.Value, ignoreCase: true, out var lane) && Enum.IsDefined(lane) && !int.TryParse(c.Value, out _)))
            .Select(c => $"{c.Path} is '{c.Value}'; a lane is Interactive or Batch.")
            .ToList();
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

/// <summary>Says at start, once, which profiles answer with the offline simulator.</summary>
internal sealed partial class SimulatorNotice(IOptions<LlmOptions> options, ILogger<SimulatorNotice> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var simulated = ModelService.EffectiveProfiles(options.Value)
            .Where(p => p.Value.Providers.Any(x => x.Kind == ModelProviderKind.Simulator))
            .Select(p => p.Key)
            .ToList();
        if (simulated.Count > 0)
        {
            LogSimulator(logger, string.Join(", ", simulated));
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(EventId = 1304, Level = LogLevel.Warning, Message = "Model profiles {Profiles} use the offline LLM simulator: answers are simulated, labelled [simulated], and cost nothing. Configure DurableAgents:Llm:Profiles to call a real model.")]
    private static partial void LogSimulator(ILogger logger, string profiles);
}
