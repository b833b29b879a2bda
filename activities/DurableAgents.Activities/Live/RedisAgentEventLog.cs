using System.Globalization;
using System.Text.Json.Nodes;
using DurableAgents.Activities.Llm;
using StackExchange.Redis;

namespace DurableAgents.Activities.Live;

/// <summary>
/// Live streams in Redis: one Redis Stream per instance with ids <c>n-0</c> (n = 1, 2, 3 … from a counter
/// beside it, assigned and added in one script so ids never go backwards), trimmed to exactly
/// <see cref="LiveStreamOptions.MaxEvents"/> and expiring <see cref="LiveStreamOptions.MaxAge"/> after its
/// last event. Every append publishes the new id, which wakes readers on any host.
/// </summary>
public sealed class RedisAgentEventLog(LlmRedis redis, LiveStreamOptions options) : IAgentEventLog
{
    private const string Append = """
        local n = redis.call('INCR', KEYS[2])
        redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[2], n .. '-0', 'e', ARGV[1])
        redis.call('PEXPIRE', KEYS[1], ARGV[3])
        redis.call('PEXPIRE', KEYS[2], ARGV[3])
        redis.call('PUBLISH', ARGV[4], n)
        return n
        """;

    /// <inheritdoc />
    public string Kind => "redis";

    // One hash tag per instance: its stream and counter live in one cluster slot.
    private RedisKey StreamKey(string instanceId) => redis.Key("live:{" + instanceId + "}:events");

    private RedisKey CounterKey(string instanceId) => redis.Key("live:{" + instanceId + "}:last");

    private RedisChannel ChannelOf(string instanceId) => redis.Channel("live:" + instanceId);

    /// <inheritdoc />
    public async Task<long> AppendAsync(string instanceId, JsonObject agUiEvent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(agUiEvent);
        var db = await redis.DatabaseAsync(cancellationToken).ConfigureAwait(false);
        if (db is null)
        {
            return 0;
        }

        try
        {
            var result = await db.ScriptEvaluateAsync(
                Append,
                [StreamKey(instanceId), CounterKey(instanceId)],
                [agUiEvent.ToJsonString(), options.MaxEvents, (long)options.MaxAge.TotalMilliseconds, ChannelOf(instanceId).ToString()]).ConfigureAwait(false);
            return (long)result;
        }
        catch (RedisException ex)
        {
            redis.ReportFailure(ex);
            return 0;
        }
    }

    /// <inheritdoc />
    public async Task<AgentEventPage> ReadAsync(string instanceId, long after, int max, CancellationToken cancellationToken)
    {
        var db = await redis.DatabaseAsync(cancellationToken).ConfigureAwait(false)
            ?? throw new RedisException("Redis is unavailable for live streams.");
        var key = StreamKey(instanceId);
        var batch = db.CreateBatch();
        var entries = batch.StreamRangeAsync(key, (after + 1).ToString(CultureInfo.InvariantCulture) + "-0", "+", max);
        var first = batch.StreamRangeAsync(key, "-", "+", 1);
        var last = batch.StringGetAsync(CounterKey(instanceId));
        batch.Execute();
        await Task.WhenAll(entries, first, last).ConfigureAwait(false);
        var list = (await entries.ConfigureAwait(false)).Select(e => new AgentStreamEntry(IdOf(e.Id), e["e"].ToString())).ToList();
        var head = await first.ConfigureAwait(false);
        var newest = await last.ConfigureAwait(false);
        return new AgentEventPage(list, head.Length > 0 ? IdOf(head[0].Id) : 0, newest.IsNull ? 0 : (long)newest);
    }

    /// <inheritdoc />
    public async Task<IAgentEventWakeup> SubscribeAsync(string instanceId, CancellationToken cancellationToken)
    {
        var subscriber = await redis.SubscriberAsync(cancellationToken).ConfigureAwait(false)
            ?? throw new RedisException("Redis is unavailable for live streams.");
        var wakeup = new Wakeup();
        var queue = await subscriber.SubscribeAsync(ChannelOf(instanceId)).ConfigureAwait(false);
        queue.OnMessage(_ => wakeup.Set());
        wakeup.Cleanup = async () =>
        {
            try
            {
                await queue.UnsubscribeAsync().ConfigureAwait(false);
            }
            catch (RedisException)
            {
                // the connection is gone; so is the subscription
            }
        };
        return wakeup;
    }

    private static long IdOf(RedisValue id)
    {
        var s = id.ToString();
        var dash = s.IndexOf('-', StringComparison.Ordinal);
        return long.Parse(dash < 0 ? s : s[..dash], CultureInfo.InvariantCulture);
    }
}
