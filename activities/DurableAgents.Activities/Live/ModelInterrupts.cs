using System.Collections.Concurrent;
using DurableAgents.Activities.Llm;
using StackExchange.Redis;

namespace DurableAgents.Activities.Live;

/// <summary>
/// Cuts off an instance's in-flight interruptible model calls (<see cref="DurableAgents.Activities.Contracts.Llm.ModelRequest.Interruptible"/>)
/// on whichever host runs them: over Redis pub/sub when Redis is configured, in process otherwise. The signal is
/// fast but not durable; the durable part is the interrupt event the agent loop reads at its next turn boundary.
/// </summary>
public sealed class ModelInterrupts(LlmRedis? redis = null) : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<InterruptWatch, byte>> _calls = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _gate = new(1, 1);
    private ChannelMessageQueue? _queue;
    private long _signals;

    /// <summary>Interrupt signals this host received (for tests and the log).</summary>
    public long Received => Interlocked.Read(ref _signals);

    private RedisChannel Channel => redis!.Channel("live:interrupts");

    /// <summary>Watches a call of <paramref name="instanceId"/>: its token is cancelled by an interrupt or by <paramref name="cancellationToken"/>.</summary>
    public async Task<InterruptWatch> WatchAsync(string instanceId, CancellationToken cancellationToken)
    {
        await SubscribeAsync(cancellationToken).ConfigureAwait(false);
        var watch = new InterruptWatch(
            w =>
            {
                if (_calls.TryGetValue(instanceId, out var set))
                {
                    set.TryRemove(w, out _);
                }
            },
            cancellationToken);
        _calls.GetOrAdd(instanceId, _ => new()).TryAdd(watch, 0);
        return watch;
    }

    /// <summary>Interrupts <paramref name="instanceId"/>'s calls here and on every host listening on Redis.</summary>
    public async Task SignalAsync(string instanceId, CancellationToken cancellationToken)
    {
        Cancel(instanceId);
        if (redis is not null && await redis.SubscriberAsync(cancellationToken).ConfigureAwait(false) is { } subscriber)
        {
            try
            {
                await subscriber.PublishAsync(Channel, instanceId).ConfigureAwait(false);
            }
            catch (RedisException ex)
            {
                redis.ReportFailure(ex);
            }
        }
    }

    private void Cancel(string instanceId)
    {
        Interlocked.Increment(ref _signals);
        if (_calls.TryGetValue(instanceId, out var set))
        {
            foreach (var watch in set.Keys)
            {
                watch.Interrupt();
            }
        }
    }

    private async Task SubscribeAsync(CancellationToken cancellationToken)
    {
        if (redis is null || _queue is not null)
        {
            return;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_queue is null && await redis.SubscriberAsync(cancellationToken).ConfigureAwait(false) is { } subscriber)
            {
                var queue = await subscriber.SubscribeAsync(Channel).ConfigureAwait(false);
                queue.OnMessage(m => Cancel(m.Message.ToString()));
                _queue = queue;
            }
        }
        catch (RedisException ex)
        {
            redis.ReportFailure(ex); // local interrupts still work; the next call tries again
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_queue is not null)
        {
            try
            {
                await _queue.UnsubscribeAsync().ConfigureAwait(false);
            }
            catch (RedisException)
            {
            }
        }

        _gate.Dispose();
    }
}

/// <summary>One watched call.</summary>
public sealed class InterruptWatch : IDisposable
{
    private readonly CancellationTokenSource _cts;
    private readonly Action<InterruptWatch> _unregister;
    private volatile bool _interrupted;

    internal InterruptWatch(Action<InterruptWatch> unregister, CancellationToken outer)
    {
        _cts = CancellationTokenSource.CreateLinkedTokenSource(outer);
        _unregister = unregister;
    }

    /// <summary>Cancelled by an interrupt or by the call's own token.</summary>
    public CancellationToken Token => _cts.Token;

    /// <summary>True once an interrupt arrived.</summary>
    public bool Interrupted => _interrupted;

    internal void Interrupt()
    {
        _interrupted = true;
        try
        {
            _cts.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // the call ended meanwhile
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _unregister(this);
        _cts.Dispose();
    }
}
