using DurableAgents.Engine.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace DurableAgents.Engine.Redis;

/// <summary>
/// Redis pub/sub wake-ups across hosts: a host that writes work publishes on the task hub's
/// channel, and every subscribed host wakes its dispatchers at once. Redis is an accelerator,
/// never the source of truth: when it is unreachable, publishing is skipped and hosts fall back to
/// polling; the connection is retried in the background.
/// </summary>
internal sealed partial class RedisWorkNotifier : IHostedService, IAsyncDisposable
{
    private readonly string _configuration;
    private readonly RedisChannel _channel;
    private readonly WorkSignal _signal;
    private readonly ILogger<RedisWorkNotifier> _logger;
    private ConnectionMultiplexer? _redis;
    private int _publishFailuresLogged;

    public RedisWorkNotifier(string configuration, string taskHub, WorkSignal signal, ILogger<RedisWorkNotifier> logger)
    {
        _configuration = configuration;
        _channel = RedisChannel.Literal($"durableagents:{taskHub}:work");
        _signal = signal;
        _logger = logger;
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var options = ConfigurationOptions.Parse(_configuration);
        options.AbortOnConnectFail = false; // start even when Redis is down; reconnect in the background
        options.ConnectTimeout = 2000;
        options.SyncTimeout = 1000;
        options.AsyncTimeout = 1000;
        _redis = await ConnectionMultiplexer.ConnectAsync(options).ConfigureAwait(false);
        _redis.ConnectionFailed += (_, e) =>
        {
            var endPoint = e.EndPoint?.ToString() ?? "redis";
            var failure = e.FailureType.ToString();
            LogConnectionFailed(_logger, endPoint, failure);
        };
        _redis.ConnectionRestored += (_, e) =>
        {
            var endPoint = e.EndPoint?.ToString() ?? "redis";
            LogConnectionRestored(_logger, endPoint);
            Interlocked.Exchange(ref _publishFailuresLogged, 0);

            // Notifications may have been missed while disconnected: look once.
            _signal.WakeOrchestrations();
            _signal.WakeActivities();
        };
        var subscriber = _redis.GetSubscriber();
        await subscriber.SubscribeAsync(_channel, (_, message) =>
        {
            if (message == "a")
            {
                _signal.WakeActivities();
            }
            else
            {
                _signal.WakeOrchestrations();
            }
        }).ConfigureAwait(false);
        _signal.SetBroadcaster(Publish);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        if (_redis is not null)
        {
            await _redis.DisposeAsync().ConfigureAwait(false);
        }
    }

    private void Publish(WorkKind kind)
    {
        var redis = _redis;
        if (redis is null || !redis.IsConnected)
        {
            return; // other hosts poll; nothing is lost
        }

        try
        {
            redis.GetSubscriber().Publish(_channel, kind == WorkKind.Activity ? "a" : "o", CommandFlags.FireAndForget);
        }
        catch (RedisException ex)
        {
            if (Interlocked.Increment(ref _publishFailuresLogged) == 1)
            {
                LogPublishFailed(_logger, ex.Message);
            }
        }
    }

    [LoggerMessage(EventId = 1200, Level = LogLevel.Warning, Message = "Redis connection to {EndPoint} failed ({FailureType}); hosts fall back to polling until it returns.")]
    private static partial void LogConnectionFailed(ILogger logger, string endPoint, string failureType);

    [LoggerMessage(EventId = 1201, Level = LogLevel.Information, Message = "Redis connection to {EndPoint} restored; wake-ups resume.")]
    private static partial void LogConnectionRestored(ILogger logger, string endPoint);

    [LoggerMessage(EventId = 1202, Level = LogLevel.Warning, Message = "Could not publish a wake-up to Redis ({Reason}); further failures are not logged until the connection is restored.")]
    private static partial void LogPublishFailed(ILogger logger, string reason);
}
