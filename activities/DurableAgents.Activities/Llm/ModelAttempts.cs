namespace DurableAgents.Activities.Llm;

/// <summary>One HTTP attempt to a provider: every retry and failure is one, and each is accounted.</summary>
/// <param name="Provider">The provider entry.</param>
/// <param name="StatusCode">The HTTP status, or null when no response came (timeout, refused connection).</param>
/// <param name="Latency">Until the response headers (or the failure).</param>
/// <param name="RetryAfter">The provider's Retry-After, if it sent one.</param>
/// <param name="Error">Why it failed, if it did (no payloads, no secrets).</param>
public sealed record HttpAttempt(string Provider, int? StatusCode, TimeSpan Latency, TimeSpan? RetryAfter, string? Error);

/// <summary>
/// Collects the HTTP attempts of the model call in flight on this async flow: the CallModel activity
/// opens a scope, and <see cref="AttemptRecordingHandler"/>, which sits inside the resilience pipeline,
/// adds one entry per attempt, so retries the SDK caller never sees are still accounted.
/// </summary>
public sealed class ModelAttemptScope : IDisposable
{
    private static readonly AsyncLocal<ModelAttemptScope?> CurrentScope = new();
    private readonly ModelAttemptScope? _outer;
    private readonly List<HttpAttempt> _attempts = [];

    private ModelAttemptScope()
    {
        _outer = CurrentScope.Value;
        CurrentScope.Value = this;
    }

    /// <summary>The scope of this async flow, if any.</summary>
    public static ModelAttemptScope? Current => CurrentScope.Value;

    /// <summary>Opens a scope on this async flow.</summary>
    public static ModelAttemptScope Begin() => new();

    /// <summary>Attempts so far, in order.</summary>
    public IReadOnlyList<HttpAttempt> Attempts
    {
        get
        {
            lock (_attempts)
            {
                return [.. _attempts];
            }
        }
    }

    /// <summary>Adds an attempt.</summary>
    public void Add(HttpAttempt attempt)
    {
        lock (_attempts)
        {
            _attempts.Add(attempt);
        }
    }

    /// <inheritdoc />
    public void Dispose() => CurrentScope.Value = _outer;
}

/// <summary>Records each HTTP attempt (status, latency, Retry-After) into the current <see cref="ModelAttemptScope"/>.</summary>
public sealed class AttemptRecordingHandler(string provider, TimeProvider time) : DelegatingHandler
{
    /// <inheritdoc />
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        try
        {
            var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            var retryAfter = response.Headers.RetryAfter is { } ra
                ? ra.Delta ?? (ra.Date is { } d ? d - time.GetUtcNow() : null)
                : null;
            ModelAttemptScope.Current?.Add(new HttpAttempt(
                provider,
                (int)response.StatusCode,
                time.GetElapsedTime(started),
                retryAfter,
                response.IsSuccessStatusCode ? null : $"HTTP {(int)response.StatusCode}"));
            return response;
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException)
        {
            ModelAttemptScope.Current?.Add(new HttpAttempt(provider, null, time.GetElapsedTime(started), null, ex.GetType().Name));
            throw;
        }
    }
}
