using DurableAgents.Engine.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace DurableAgents.Engine.Redis;

/// <summary>Registers the Redis accelerator.</summary>
public static class RedisDurableAgentsBuilderExtensions
{
    /// <summary>
    /// Wakes idle hosts through Redis pub/sub when any host writes work. Optional: without it (or
    /// with Redis down) hosts poll, or use the store's own notifications (PostgreSQL LISTEN/NOTIFY).
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="configuration">A StackExchange.Redis configuration string, e.g. <c>127.0.0.1:6379</c> (DurableAgents:Redis:Configuration).</param>
    /// <param name="taskHub">Scopes the channel, as the store's task hub does. The default value is "default".</param>
    public static DurableAgentsBuilder UseRedisNotifications(this DurableAgentsBuilder builder, string configuration, string taskHub = "default")
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(configuration);
        builder.Services.AddSingleton(sp => new RedisWorkNotifier(configuration, taskHub, sp.GetRequiredService<WorkSignal>(), sp.GetRequiredService<ILogger<RedisWorkNotifier>>()));
        builder.Services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<RedisWorkNotifier>());
        return builder;
    }
}
