using System.Text.Json.Nodes;

namespace DurableAgents.Activities.Live;

/// <summary>One stored event of an instance's live stream.</summary>
/// <param name="Id">Its id: 1, 2, 3 … per instance, in the order the events were appended.</param>
/// <param name="Json">The event, as AG-UI JSON (see <see cref="AgUi"/>).</param>
public sealed record AgentStreamEntry(long Id, string Json);

/// <summary>What a read found.</summary>
/// <param name="Entries">Events after the cursor, oldest first.</param>
/// <param name="First">The oldest id still held (0 when the log holds nothing).</param>
/// <param name="Last">The newest id ever appended (0 when nothing was).</param>
public sealed record AgentEventPage(IReadOnlyList<AgentStreamEntry> Entries, long First, long Last);

/// <summary>How long and how much of each instance's live stream is kept (DurableAgents:Live).</summary>
public sealed class LiveStreamOptions
{
    /// <summary>The newest events kept per instance; older ones are trimmed, and a reader whose cursor is before them is told how many it missed.</summary>
    public int MaxEvents { get; set; } = 5_000;

    /// <summary>How long an instance's stream is kept after its last event.</summary>
    public TimeSpan MaxAge { get; set; } = TimeSpan.FromHours(6);

    /// <summary>Instances whose streams the in-process log keeps at once (the least recently written go first).</summary>
    public int MaxInstances { get; set; } = 200;

    /// <summary>
    /// A quiet stream gets an SSE comment this often (to within 2 s), so proxies and load balancers that close idle
    /// connections keep it open while an agent waits (for a person, a timer, a slow model). Zero turns them off.
    /// </summary>
    public TimeSpan KeepAlive { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// When set, a GET stream response ends once it has sent what is stored and this long has passed, and the client
    /// (EventSource reconnects by itself) asks again after the last id: for a proxy that buffers whole responses, as
    /// the Azure Functions host does for a custom handler. Unset: 1 s behind the Functions host, otherwise unbounded.
    /// Zero: unbounded.
    /// </summary>
    public TimeSpan? ResponseWindow { get; set; }
}

/// <summary>
/// The live event stream of each instance: append-only, ids increasing by one per event, bounded by
/// <see cref="LiveStreamOptions"/>. In Redis (Redis Streams) when DurableAgents:Redis:Configuration is set, so
/// every host reads what any host wrote; in process otherwise.
/// </summary>
public interface IAgentEventLog
{
    /// <summary>"redis" or "in-process".</summary>
    string Kind { get; }

    /// <summary>Appends an event; its id, or 0 when it could not be stored (Redis down: logged, the call goes on).</summary>
    Task<long> AppendAsync(string instanceId, JsonObject agUiEvent, CancellationToken cancellationToken);

    /// <summary>Up to <paramref name="max"/> events with ids above <paramref name="after"/>.</summary>
    Task<AgentEventPage> ReadAsync(string instanceId, long after, int max, CancellationToken cancellationToken);

    /// <summary>A wake-up for new events of <paramref name="instanceId"/>; subscribe before the first read so nothing slips between.</summary>
    Task<IAgentEventWakeup> SubscribeAsync(string instanceId, CancellationToken cancellationToken);
}

/// <summary>Signals that an instance's stream may have new events.</summary>
public interface IAgentEventWakeup : IAsyncDisposable
{
    /// <summary>Completes when an event was appended since the last call (or at once if one was), or after <paramref name="timeout"/>.</summary>
    Task WaitAsync(TimeSpan timeout, CancellationToken cancellationToken);
}

/// <summary>A wake-up flag: set by appends, consumed by waits.</summary>
internal sealed class Wakeup(Action<Wakeup>? onDispose = null) : IAgentEventWakeup
{
    private readonly SemaphoreSlim _signal = new(0, 1);

    public void Set()
    {
        try
        {
            if (_signal.CurrentCount == 0)
            {
                _signal.Release();
            }
        }
        catch (SemaphoreFullException)
        {
            // already set
        }
        catch (ObjectDisposedException)
        {
            // the reader left
        }
    }

    public async Task WaitAsync(TimeSpan timeout, CancellationToken cancellationToken) =>
        await _signal.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);

    public Func<ValueTask>? Cleanup { get; set; }

    public async ValueTask DisposeAsync()
    {
        onDispose?.Invoke(this);
        if (Cleanup is { } cleanup)
        {
            await cleanup().ConfigureAwait(false);
        }

        _signal.Dispose();
    }
}

/// <summary>The in-process log: a ring of the newest events per instance, for a single host without Redis.</summary>
public sealed class InProcessAgentEventLog(LiveStreamOptions options, TimeProvider time) : IAgentEventLog
{
    private sealed class Log
    {
        public readonly LinkedList<(long Id, DateTimeOffset At, string Json)> Entries = new();
        public readonly HashSet<Wakeup> Readers = [];
        public long Last;
        public DateTimeOffset Touched;
    }

    private readonly Dictionary<string, Log> _logs = new(StringComparer.Ordinal);
    private readonly object _gate = new();

    /// <inheritdoc />
    public string Kind => "in-process";

    /// <inheritdoc />
    public Task<long> AppendAsync(string instanceId, JsonObject agUiEvent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(agUiEvent);
        var now = time.GetUtcNow();
        var json = agUiEvent.ToJsonString();
        Wakeup[] readers;
        long id;
        lock (_gate)
        {
            var log = LogLocked(instanceId, now);
            id = ++log.Last;
            log.Touched = now;
            log.Entries.AddLast((id, now, json));
            while (log.Entries.Count > options.MaxEvents || (log.Entries.First is { } first && now - first.Value.At > options.MaxAge))
            {
                log.Entries.RemoveFirst();
            }

            readers = [.. log.Readers];
        }

        foreach (var reader in readers)
        {
            reader.Set();
        }

        return Task.FromResult(id);
    }

    /// <inheritdoc />
    public Task<AgentEventPage> ReadAsync(string instanceId, long after, int max, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (!_logs.TryGetValue(instanceId, out var log))
            {
                return Task.FromResult(new AgentEventPage([], 0, 0));
            }

            var now = time.GetUtcNow();
            while (log.Entries.First is { } stale && now - stale.Value.At > options.MaxAge)
            {
                log.Entries.RemoveFirst();
            }

            var entries = log.Entries.Where(e => e.Id > after).Take(max).Select(e => new AgentStreamEntry(e.Id, e.Json)).ToList();
            return Task.FromResult(new AgentEventPage(entries, log.Entries.First?.Value.Id ?? 0, log.Last));
        }
    }

    /// <inheritdoc />
    public Task<IAgentEventWakeup> SubscribeAsync(string instanceId, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var log = LogLocked(instanceId, time.GetUtcNow());
            var wakeup = new Wakeup(w =>
            {
                lock (_gate)
                {
                    log.Readers.Remove(w);
                }
            });
            log.Readers.Add(wakeup);
            return Task.FromResult<IAgentEventWakeup>(wakeup);
        }
    }

    /// <summary>The instance's log, created (after evicting stale ones) if it has none.</summary>
    private Log LogLocked(string instanceId, DateTimeOffset now)
    {
        if (!_logs.TryGetValue(instanceId, out var log))
        {
            EvictLocked(now);
            log = new Log { Touched = now };
            _logs[instanceId] = log;
        }

        return log;
    }

    private void EvictLocked(DateTimeOffset now)
    {
        foreach (var (key, log) in _logs.Where(p => p.Value.Readers.Count == 0 && now - p.Value.Touched > options.MaxAge).ToList())
        {
            _logs.Remove(key);
        }

        while (_logs.Count >= options.MaxInstances)
        {
            var oldest = _logs.Where(p => p.Value.Readers.Count == 0).OrderBy(p => p.Value.Touched).Select(p => p.Key).FirstOrDefault();
            if (oldest is null)
            {
                break;
            }

            _logs.Remove(oldest);
        }
    }
}
