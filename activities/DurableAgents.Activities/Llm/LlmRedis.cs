using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace DurableAgents.Activities.Llm;

/// <summary>
/// The Redis connection of the model activities (response cache, token streams), when
/// DurableAgents:Redis:Configuration is set. Connects lazily and never fails a model call: while Redis
/// is down the cache misses and streams are not published, and one warning says so.
/// </summary>
public sealed partial class LlmRedis(string configuration, string taskHub, ILogger<LlmRedis> logger) : IAsyncDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private ConnectionMultiplexer? _redis;
    private int _warned;

    /// <summary>A key under this task hub's prefix.</summary>
    public RedisKey Key(string suffix) => $"durableagents:{taskHub}:{suffix}";

    /// <summary>A pub/sub channel under this task hub's prefix.</summary>
    public RedisChannel Channel(string suffix) => RedisChannel.Literal($"durableagents:{taskHub}:{suffix}");

    /// <summary>The database, or null when Redis cannot be reached.</summary>
    public async Task<IDatabase?> DatabaseAsync(CancellationToken cancellationToken) =>
        (await ConnectAsync(cancellationToken).ConfigureAwait(false))?.GetDatabase();

    /// <summary>The subscriber, or null when Redis cannot be reached.</summary>
    public async Task<ISubscriber?> SubscriberAsync(CancellationToken cancellationToken) =>
        (await ConnectAsync(cancellationToken).ConfigureAwait(false))?.GetSubscriber();

    /// <summary>Notes a failed Redis operation (one warning until Redis works again).</summary>
    public void ReportFailure(Exception exception)
    {
        if (Interlocked.Exchange(ref _warned, 1) == 0)
        {
            LogUnavailable(logger, exception.GetType().Name);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_redis is not null)
        {
            await _redis.DisposeAsync().ConfigureAwait(false);
        }

        _gate.Dispose();
    }

    private async Task<ConnectionMultiplexer?> ConnectAsync(CancellationToken cancellationToken)
    {
        if (_redis is { IsConnected: true } ready)
        {
            Interlocked.Exchange(ref _warned, 0);
            return ready;
        }

        if (_redis is not null)
        {
            return null; // reconnecting in the background
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_redis is null)
            {
                var options = ConfigurationOptions.Parse(configuration);
                options.AbortOnConnectFail = false;
                options.BacklogPolicy = BacklogPolicy.FailFast; // while disconnected, commands fail at once instead of queueing: a Redis outage never stalls a call
                options.ConnectTimeout = 3000;
                _redis = await ConnectionMultiplexer.ConnectAsync(options).ConfigureAwait(false);
            }

            return _redis.IsConnected ? _redis : null;
        }
        catch (RedisException ex)
        {
            ReportFailure(ex);
            return null;
        }
        finally
        {
            _gate.Release();
        }
    }

    [LoggerMessage(EventId = 1300, Level = LogLevel.Warning, Message = "Redis is unavailable for the model cache and token streams ({Error}); calls go on without them.")]
    private static partial void LogUnavailable(ILogger logger, string error);
}
