using System.ClientModel;
using System.ClientModel.Primitives;
using System.Collections.Concurrent;
using Azure.AI.OpenAI;
using Azure.Identity;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Options;
using OpenAI;
using Polly;
using Microsoft.DurableTask;

namespace DurableAgents.Activities.Llm;

/// <summary>
/// Builds and keeps one chat client and one embedding generator per provider entry: the real OpenAI or
/// Azure OpenAI SDK over a named HttpClient whose pipeline retries (honouring Retry-After), times out
/// per attempt and breaks the circuit per provider; the SDK's own retries are off so there is one
/// policy. Traces follow the OpenTelemetry GenAI conventions (source <see cref="ActivitySourceName"/>).
/// </summary>
public sealed class ModelClients(IHttpClientFactory httpClients, IOptions<LlmOptions> options) : IDisposable
{
    /// <summary>The ActivitySource of model-call spans (gen_ai.* attributes).</summary>
    public const string ActivitySourceName = "DurableAgents.GenAI";

    private readonly ConcurrentDictionary<string, IChatClient> _chat = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, IEmbeddingGenerator<string, Embedding<float>>> _embed = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The named HttpClient of a provider entry.</summary>
    public static string HttpClientName(ModelProviderOptions provider)
    {
        ArgumentNullException.ThrowIfNull(provider);
        return "DurableAgents.Llm." + provider.EffectiveName;
    }

    /// <summary>The chat client of a provider entry.</summary>
    public IChatClient Chat(ModelProviderOptions provider)
    {
        ArgumentNullException.ThrowIfNull(provider);
        return _chat.GetOrAdd(provider.EffectiveName, _ =>
        {
            IChatClient inner = provider.Kind switch
            {
                ModelProviderKind.Simulator => new SimulatorChatClient(),
                ModelProviderKind.AzureOpenAI => Azure(provider).GetChatClient(provider.Model).AsIChatClient(),
#pragma warning disable OPENAI001 // the Responses API is marked for evaluation; background mode needs it
                _ when provider.BackgroundResponses => OpenAi(provider).GetResponsesClient().AsIChatClient(provider.Model),
#pragma warning restore OPENAI001
                _ => OpenAi(provider).GetChatClient(provider.Model).AsIChatClient(),
            };
            return new ChatClientBuilder(inner)
                .UseOpenTelemetry(sourceName: ActivitySourceName, configure: c => c.EnableSensitiveData = options.Value.LogContent)
                .Build();
        });
    }

    /// <summary>The embedding generator of a provider entry.</summary>
    public IEmbeddingGenerator<string, Embedding<float>> Embeddings(ModelProviderOptions provider)
    {
        ArgumentNullException.ThrowIfNull(provider);
        return _embed.GetOrAdd(provider.EffectiveName, _ =>
        {
            var model = provider.EmbeddingModel;
            IEmbeddingGenerator<string, Embedding<float>> inner = provider.Kind switch
            {
                ModelProviderKind.Simulator => new SimulatorEmbeddingGenerator(),
                _ when string.IsNullOrWhiteSpace(model) => throw new InvalidOperationException($"Provider '{provider.EffectiveName}' has no EmbeddingModel configured."),
                ModelProviderKind.AzureOpenAI => Azure(provider).GetEmbeddingClient(model).AsIEmbeddingGenerator(),
                _ => OpenAi(provider).GetEmbeddingClient(model).AsIEmbeddingGenerator(),
            };
            return new EmbeddingGeneratorBuilder<string, Embedding<float>>(inner)
                .UseOpenTelemetry(sourceName: ActivitySourceName)
                .Build();
        });
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var c in _chat.Values)
        {
            c.Dispose();
        }

        foreach (var e in _embed.Values)
        {
            e.Dispose();
        }
    }

    /// <summary>
    /// Registers a provider's named HttpClient: total timeout → retry (exponential with jitter, Retry-After
    /// honoured) → circuit breaker → attempt timeout, and inside them the attempt recorder.
    /// </summary>
    internal static void AddHttpClient(IServiceCollection services, ModelProviderOptions provider, ModelResilienceOptions r)
    {
        var name = provider.EffectiveName;
        var http = services.AddHttpClient(HttpClientName(provider), c => c.Timeout = Timeout.InfiniteTimeSpan);
        http.AddResilienceHandler("llm-" + name, b =>
            {
                b.AddTimeout(r.TotalTimeout);
                if (r.MaxRetryAttempts > 0)
                {
                    b.AddRetry(new HttpRetryStrategyOptions
                    {
                        MaxRetryAttempts = r.MaxRetryAttempts,
                        Delay = r.RetryBaseDelay,
                        BackoffType = DelayBackoffType.Exponential,
                        UseJitter = true,
                        ShouldRetryAfterHeader = true,
                    });
                }

                b.AddCircuitBreaker(new HttpCircuitBreakerStrategyOptions
                {
                    FailureRatio = r.CircuitFailureRatio,
                    MinimumThroughput = r.CircuitMinimumThroughput,
                    SamplingDuration = r.CircuitSamplingDuration,
                    BreakDuration = r.CircuitBreakDuration,
                });
                b.AddTimeout(r.AttemptTimeout);
            });
        http.AddHttpMessageHandler(sp => new AttemptRecordingHandler(name, sp.GetRequiredService<TimeProvider>()));
    }

    private T Configure<T>(T clientOptions, ModelProviderOptions provider)
        where T : ClientPipelineOptions
    {
        clientOptions.Transport = new HttpClientPipelineTransport(httpClients.CreateClient(HttpClientName(provider)));
        clientOptions.RetryPolicy = new ClientRetryPolicy(maxRetries: 0); // the resilience handler retries
        clientOptions.NetworkTimeout = Timeout.InfiniteTimeSpan; // the resilience handler times out
        return clientOptions;
    }

    private OpenAIClient OpenAi(ModelProviderOptions provider)
    {
        var clientOptions = Configure(new OpenAIClientOptions(), provider);
        if (!string.IsNullOrWhiteSpace(provider.Endpoint))
        {
            clientOptions.Endpoint = new Uri(provider.Endpoint);
        }
        else if (provider.Kind == ModelProviderKind.OpenAICompatible)
        {
            throw new InvalidOperationException($"Provider '{provider.EffectiveName}' is OpenAICompatible but has no Endpoint.");
        }

        // Local OpenAI-compatible servers often want no key; the SDK wants one, so send a placeholder.
        var key = string.IsNullOrEmpty(provider.ApiKey) ? "no-key" : provider.ApiKey;
        return new OpenAIClient(new ApiKeyCredential(key), clientOptions);
    }

    private AzureOpenAIClient Azure(ModelProviderOptions provider)
    {
        var endpoint = string.IsNullOrWhiteSpace(provider.Endpoint)
            ? throw new InvalidOperationException($"Provider '{provider.EffectiveName}' is AzureOpenAI but has no Endpoint.")
            : new Uri(provider.Endpoint);
        var clientOptions = Configure(new AzureOpenAIClientOptions(), provider);
        if (provider.UseManagedIdentity)
        {
            return new AzureOpenAIClient(endpoint, new DefaultAzureCredential(), clientOptions);
        }

        if (string.IsNullOrEmpty(provider.ApiKey))
        {
            throw new InvalidOperationException($"Provider '{provider.EffectiveName}' is AzureOpenAI with neither ApiKey nor UseManagedIdentity.");
        }

        return new AzureOpenAIClient(endpoint, new ApiKeyCredential(provider.ApiKey), clientOptions);
    }
}
