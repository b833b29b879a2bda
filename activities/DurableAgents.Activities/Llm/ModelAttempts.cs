using Microsoft.Extensions.Logging;

namespace DurableAgents.Activities.Llm;

/// <summary>One HTTP attempt to a provider: every retry and failure is one, and each is accounted.</summary>
/// <param name="Provider">The provider entry.</param>
/// <param name="StatusCode">The HTTP status, or null when no response came (timeout, refused connection).</param>
/// <param name="Latency">Until the response headers (or the failure).</param>
/// <param name="RetryAfter">The provider's Retry-After, if it sent one.</param>
/// <param name="Error">Why it failed, if it did (no payloads, no secrets).</param>
/// <param name="RemainingRequests">The provider's <c>x-ratelimit-remaining-requests</c>, if it sent it.</param>
/// <param name="RemainingTokens">The provider's <c>x-ratelimit-remaining-tokens</c>, if it sent it.</param>
public sealed record HttpAttempt(string Provider, int? StatusCode, TimeSpan Latency, TimeSpan? RetryAfter, string? Error, long? RemainingRequests = null, long? RemainingTokens = null);

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
    private readonly Func<int, CancellationToken, Task>? _beforeSend;
    private int _sent;

    private ModelAttemptScope(Func<int, CancellationToken, Task>? beforeSend)
    {
        _outer = CurrentScope.Value;
        _beforeSend = beforeSend;
        CurrentScope.Value = this;
    }

    /// <summary>The scope of this async flow, if any.</summary>
    public static ModelAttemptScope? Current => CurrentScope.Value;

    /// <summary>Opens a scope on this async flow.</summary>
    /// <param name="beforeSend">
    /// Awaited before each HTTP attempt leaves, with the attempt's 0-based index in this scope: the
    /// write-ahead ledger row. When it throws, the request is not sent.
    /// </param>
    public static ModelAttemptScope Begin(Func<int, CancellationToken, Task>? beforeSend = null) => new(beforeSend);

    /// <summary>Attempts sent so far in this scope (written ahead).</summary>
    public int Sent => Volatile.Read(ref _sent);

    /// <summary>Runs the write-ahead callback for the next attempt (called by <see cref="AttemptRecordingHandler"/>).</summary>
    public Task BeforeSendAsync(CancellationToken cancellationToken)
    {
        var index = Interlocked.Increment(ref _sent) - 1;
        return _beforeSend?.Invoke(index, cancellationToken) ?? Task.CompletedTask;
    }

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
    private static long? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) && long.TryParse(values.FirstOrDefault(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : null;

    /// <summary>Whether a request can start a generation (and be billed): every POST except a cancel.</summary>
    public static bool Generates(HttpRequestMessage request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return request.Method == HttpMethod.Post && request.RequestUri?.AbsolutePath.EndsWith("/cancel", StringComparison.Ordinal) != true;
    }

    /// <inheritdoc />
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        // Polls, stream resumes and cancels of a background response generate nothing: they are not attempts.
        if (!Generates(request))
        {
            return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }

        // Written ahead: the attempt is on the books before the provider can bill it.
        if (ModelAttemptScope.Current is { } scope)
        {
            await scope.BeforeSendAsync(cancellationToken).ConfigureAwait(false);
        }

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
                response.IsSuccessStatusCode ? null : $"HTTP {(int)response.StatusCode}",
                Header(response, "x-ratelimit-remaining-requests"),
                Header(response, "x-ratelimit-remaining-tokens")));
            return response;
        }
        catch (Exception ex)
        {
            // Every attempt that was written ahead gets its entry, whatever stopped it.
            ModelAttemptScope.Current?.Add(new HttpAttempt(provider, null, time.GetElapsedTime(started), null, ex.GetType().Name));
            throw;
        }
    }
}

/// <summary>The host id model attempts are written under: the engine's host id, so its heartbeat tells whether they can still settle.</summary>
/// <param name="Id">The id.</param>
public sealed record ModelHost(string Id);

/// <summary>Marks the model attempts that were in flight on a host interrupted when the engine releases that host's leases (it died, or restarted under its id).</summary>
public sealed partial class InterruptedModelCalls(IModelLedger ledger, ILogger<InterruptedModelCalls> logger) : DurableAgents.Engine.Hosting.IHostLeaseObserver
{
    /// <inheritdoc />
    public async Task OnLeasesReleasedAsync(IReadOnlyList<DurableAgents.Engine.Storage.ReleasedHost> hosts, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(hosts);
        var marked = await ledger.InterruptHostsAsync(hosts.Select(h => h.HostId).ToList(), cancellationToken).ConfigureAwait(false);
        if (marked > 0)
        {
            LogInterrupted(logger, marked, string.Join(", ", hosts.Select(h => h.HostId)));
        }
    }

    [LoggerMessage(EventId = 1311, Level = LogLevel.Warning, Message = "{Count} model attempts in flight on {Hosts} were marked interrupted: sent, maybe billed, never settled. Their estimates count against their instances' budgets.")]
    private static partial void LogInterrupted(ILogger logger, int count, string hosts);
}
