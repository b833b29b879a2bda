using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Threading.Channels;
using DurableAgents.Activities.Contracts.Llm;

namespace DurableAgents.Activities.Llm;

/// <summary>A piece of an in-flight model answer.</summary>
/// <param name="InstanceId">The orchestration instance.</param>
/// <param name="TaskId">The CallModel activity's task id.</param>
/// <param name="Sequence">The chunk's position (0-based) within the call.</param>
/// <param name="Text">The new text; empty on the final chunk.</param>
/// <param name="Done">True on the final chunk.</param>
public sealed record ModelStreamChunk(string InstanceId, int TaskId, int Sequence, string Text, bool Done);

/// <summary>
/// Live tokens of in-flight model calls, per instance: published over Redis pub/sub when Redis is
/// configured (observers on any host see them) and in-process otherwise. Observation is best-effort:
/// the durable result is the activity's final message, not the stream.
/// </summary>
public sealed class ModelStreamHub(LlmRedis? redis = null)
{
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<Channel<ModelStreamChunk>, byte>> _local = new(StringComparer.Ordinal);

    /// <summary>Publishes a chunk.</summary>
    public async Task PublishAsync(ModelStreamChunk chunk, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(chunk);
        if (redis is not null)
        {
            var subscriber = await redis.SubscriberAsync(cancellationToken).ConfigureAwait(false);
            if (subscriber is not null)
            {
                try
                {
                    await subscriber.PublishAsync(redis.Channel("llmstream:" + chunk.InstanceId), JsonSerializer.Serialize(chunk, LlmJson.Options)).ConfigureAwait(false);
                }
                catch (StackExchange.Redis.RedisException ex)
                {
                    redis.ReportFailure(ex);
                }
            }

            return;
        }

        Deliver(chunk);
    }

    /// <summary>Chunks of <paramref name="instanceId"/>'s model calls from now until cancelled.</summary>
    public async IAsyncEnumerable<ModelStreamChunk> SubscribeAsync(string instanceId, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var channel = Channel.CreateBounded<ModelStreamChunk>(new BoundedChannelOptions(10_000) { FullMode = BoundedChannelFullMode.DropOldest });
        var subscribers = _local.GetOrAdd(instanceId, _ => new());
        subscribers.TryAdd(channel, 0);
        StackExchange.Redis.ChannelMessageQueue? queue = null;
        try
        {
            if (redis is not null && await redis.SubscriberAsync(cancellationToken).ConfigureAwait(false) is { } subscriber)
            {
                queue = await subscriber.SubscribeAsync(redis.Channel("llmstream:" + instanceId)).ConfigureAwait(false);
                queue.OnMessage(m =>
                {
                    if (JsonSerializer.Deserialize<ModelStreamChunk>(m.Message.ToString(), LlmJson.Options) is { } chunk)
                    {
                        channel.Writer.TryWrite(chunk);
                    }
                });
            }

            await foreach (var chunk in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                yield return chunk;
            }
        }
        finally
        {
            subscribers.TryRemove(channel, out _);
            if (queue is not null)
            {
                await queue.UnsubscribeAsync().ConfigureAwait(false);
            }
        }
    }

    private void Deliver(ModelStreamChunk chunk)
    {
        if (_local.TryGetValue(chunk.InstanceId, out var subscribers))
        {
            foreach (var channel in subscribers.Keys)
            {
                channel.Writer.TryWrite(chunk);
            }
        }
    }
}
