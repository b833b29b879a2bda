using DurableAgents.Engine.Hosting;
using DurableAgents.Engine.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace DurableAgents.Engine.Postgres;

/// <summary>
/// Wakes this host's dispatchers when any host commits work (PostgreSQL LISTEN/NOTIFY), so pickup
/// does not wait on a poll interval. Notifications are an accelerator: if the connection drops,
/// polling carries on while the listener reconnects with back-off.
/// </summary>
internal sealed partial class PostgresNotificationListener : BackgroundService
{
    private readonly PostgresOrchestrationStore? _store;
    private readonly WorkSignal _signal;
    private readonly ILogger<PostgresNotificationListener> _logger;

    public PostgresNotificationListener(IOrchestrationStore store, WorkSignal signal, ILogger<PostgresNotificationListener> logger)
    {
        _store = store as PostgresOrchestrationStore;
        _signal = signal;
        _logger = logger;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_store is null)
        {
            return;
        }

        var delay = TimeSpan.FromMilliseconds(100);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var c = await _store.DataSource.OpenConnectionAsync(stoppingToken).ConfigureAwait(false);
                await using var connection = c.ConfigureAwait(false);
                c.Notification += OnNotification;
                var listen = new NpgsqlCommand($"LISTEN {_store.NotificationChannel}", c);
                await using (listen.ConfigureAwait(false))
                {
                    await listen.ExecuteNonQueryAsync(stoppingToken).ConfigureAwait(false);
                }

                LogListening(_logger, _store.NotificationChannel);

                // Anything committed while we were not listening: look once.
                _signal.WakeOrchestrations();
                _signal.WakeActivities();
                delay = TimeSpan.FromMilliseconds(100);
                while (!stoppingToken.IsCancellationRequested)
                {
                    await c.WaitAsync(stoppingToken).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex) when (ex is NpgsqlException or System.Net.Sockets.SocketException or IOException or TimeoutException or InvalidOperationException)
            {
                LogListenerDown(_logger, _store.Where, delay, ex.Message);
                try
                {
                    await Task.Delay(delay, stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 5000));
            }
        }
    }

    private void OnNotification(object sender, NpgsqlNotificationEventArgs e)
    {
        if (e.Payload == "a")
        {
            _signal.WakeActivities();
        }
        else if (e.Payload.StartsWith(PostgresOrchestrationStore.InstanceChangedPrefix, StringComparison.Ordinal))
        {
            _signal.InstanceChanged(e.Payload[PostgresOrchestrationStore.InstanceChangedPrefix.Length..]);
        }
        else
        {
            _signal.WakeOrchestrations();
        }
    }

    [LoggerMessage(EventId = 1100, Level = LogLevel.Debug, Message = "Listening for work notifications on channel {Channel}.")]
    private static partial void LogListening(ILogger logger, string channel);

    [LoggerMessage(EventId = 1101, Level = LogLevel.Warning, Message = "Work notifications from {Where} are unavailable ({Reason}); polling continues, reconnecting in {Delay}.")]
    private static partial void LogListenerDown(ILogger logger, string where, TimeSpan delay, string reason);
}
