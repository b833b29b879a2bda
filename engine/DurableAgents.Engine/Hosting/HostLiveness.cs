using DurableAgents.Engine.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace DurableAgents.Engine.Hosting;

/// <summary>Told when leases of a host were released: it died, or this host started again under its id.</summary>
/// <remarks>The agent activities use it to mark model calls that were in flight on that host as interrupted.</remarks>
public interface IHostLeaseObserver
{
    /// <summary>Called after the release committed; exceptions are logged and do not stop the heartbeat.</summary>
    Task OnLeasesReleasedAsync(IReadOnlyList<ReleasedHost> hosts, CancellationToken cancellationToken);
}

/// <summary>
/// Host heartbeats (a hosted service, started before the worker and stopped after it). At start it
/// registers this host and releases what a previous run under the same id held; every
/// <see cref="DurableAgentsOptions.HostHeartbeatInterval"/> it counts a beat on its row and releases
/// the leases of hosts whose beat count has not moved for <see cref="DurableAgentsOptions.HostDeadAfter"/>
/// (on this host's clock), so their work moves within seconds instead of when the leases expire; at a graceful stop it hands
/// back whatever it still holds. Every release wakes the dispatchers (here and, through the store's
/// notifications, on other hosts). A store outage is logged and retried; it never stops the host.
/// </summary>
public sealed class HostLiveness(
    IOrchestrationStore store,
    HostIdentity identity,
    WorkSignal signal,
    TimeProvider time,
    IOptions<DurableAgentsOptions> options,
    IEnumerable<IHostLeaseObserver> observers,
    ILogger<HostLiveness> logger) : IHostedService, IAsyncDisposable
{
    private readonly DurableAgentsOptions _options = options.Value;
    private readonly CancellationTokenSource _stopping = new();
    private Task? _loop;
    private readonly SemaphoreSlim _beat = new(1, 1);

    // Per other host: the beat count last seen, and when (this host's clock) it was first seen at that count.
    private readonly Dictionary<string, (string Incarnation, long Beats, long Since)> _seen = new(StringComparer.Ordinal);
    private HostRowState _lastOwn = HostRowState.Ok;
    private long _heartbeats;
    private int _disposed;

    /// <summary>Heartbeats written so far (a counter for tests).</summary>
    public long Heartbeats => Interlocked.Read(ref _heartbeats);

    /// <summary>Whether heartbeats are on (<see cref="DurableAgentsOptions.HostHeartbeatInterval"/> above zero and a worker here).</summary>
    public bool Enabled => _options.EnableWorker && _options.HostHeartbeatInterval > TimeSpan.Zero;

    /// <inheritdoc />
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!Enabled)
        {
            return;
        }

        try
        {
            var previous = await store.RegisterHostAsync(identity.HostId, identity.Incarnation, time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
            logger.HostRegistered(identity.HostId, identity.Source, previous.Orchestrations, previous.Activities);
            if (previous.Orchestrations + previous.Activities > 0 || previous.LastHeartbeat is not null)
            {
                await ReleasedAsync([previous], cancellationToken).ConfigureAwait(false);
            }
        }
#pragma warning disable CA1031 // an unreachable store at this point fails the worker's polls too; the heartbeat loop keeps trying
        catch (Exception ex) when (ex is not OperationCanceledException)
#pragma warning restore CA1031
        {
            logger.HeartbeatFailed(identity.HostId, ex);
        }

        _loop = RunAsync(_stopping.Token);
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_loop is null)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        try
        {
            // The worker stopped before us (hosted services stop in reverse order): anything still
            // leased under our id is handed back now rather than when it expires.
            var released = await store.UnregisterHostAsync(identity.HostId, identity.Incarnation, cancellationToken).ConfigureAwait(false);
            logger.HostUnregistered(identity.HostId, released.Orchestrations, released.Activities);
            if (released.Orchestrations + released.Activities > 0)
            {
                Wake(released);
            }
        }
#pragma warning disable CA1031 // at shutdown: the row ages out and the others release what is left
        catch (Exception ex)
#pragma warning restore CA1031
        {
            logger.HeartbeatFailed(identity.HostId, ex);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return; // registered as itself and as a hosted service: disposed twice
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        _stopping.Dispose();
        _beat.Dispose();
    }

    /// <summary>
    /// Writes one heartbeat now, and releases the leases of every host whose beat count has not changed
    /// for <see cref="DurableAgentsOptions.HostDeadAfter"/> on this host's clock (the loop calls this; tests may too).
    /// Liveness goes by beat counts, never by comparing timestamps written by other hosts, so clock skew
    /// between hosts cannot make a live host look dead.
    /// </summary>
    /// <returns>The hosts released by this beat.</returns>
    public async Task<IReadOnlyList<ReleasedHost>> BeatAsync(CancellationToken cancellationToken)
    {
        await _beat.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var result = await store.HeartbeatAsync(identity.HostId, identity.Incarnation, time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
            Interlocked.Increment(ref _heartbeats);
            OwnState(result.Own);

            var now = time.GetTimestamp();
            var silent = new List<HostRecord>();
            foreach (var other in result.Others)
            {
                if (!_seen.TryGetValue(other.HostId, out var seen) || seen.Beats != other.Beats || seen.Incarnation != other.Incarnation)
                {
                    _seen[other.HostId] = (other.Incarnation, other.Beats, now);
                }
                else if (time.GetElapsedTime(seen.Since, now) >= _options.HostDeadAfter)
                {
                    silent.Add(other);
                }
            }

            foreach (var gone in _seen.Keys.Where(k => result.Others.All(o => o.HostId != k)).ToList())
            {
                _seen.Remove(gone);
            }

            var released = new List<ReleasedHost>();
            foreach (var dead in silent)
            {
                _seen.Remove(dead.HostId);
                if (await store.ReleaseHostAsync(dead.HostId, dead.Beats, cancellationToken).ConfigureAwait(false) is { } r)
                {
                    logger.HostDead(r.HostId, r.LastHeartbeat, r.Orchestrations, r.Activities);
                    released.Add(r);
                }
            }

            if (released.Count > 0)
            {
                await ReleasedAsync(released, cancellationToken).ConfigureAwait(false);
            }

            return released;
        }
        finally
        {
            _beat.Release();
        }
    }

    private void OwnState(HostRowState own)
    {
        if (own == _lastOwn)
        {
            return;
        }

        switch (own)
        {
            case HostRowState.Revived:
                logger.HostPresumedDead(identity.HostId, _options.HostDeadAfter);
                break;
            case HostRowState.Conflict:
                logger.HostIdConflict(identity.HostId);
                break;
        }

        _lastOwn = own;
    }

    private async Task RunAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_options.HostHeartbeatInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                try
                {
                    await BeatAsync(stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    break;
                }
#pragma warning disable CA1031 // a store outage must not stop the heartbeat: log and try at the next tick
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    logger.HeartbeatFailed(identity.HostId, ex);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopping
        }
    }

    private async Task ReleasedAsync(IReadOnlyList<ReleasedHost> hosts, CancellationToken cancellationToken)
    {
        foreach (var h in hosts)
        {
            Wake(h);
        }

        foreach (var observer in observers)
        {
            try
            {
                await observer.OnLeasesReleasedAsync(hosts, cancellationToken).ConfigureAwait(false);
            }
#pragma warning disable CA1031 // an observer's failure is its own; the heartbeat goes on
            catch (Exception ex) when (ex is not OperationCanceledException)
#pragma warning restore CA1031
            {
                logger.ObserverFailed(observer.GetType().Name, ex);
            }
        }
    }

    private void Wake(ReleasedHost released)
    {
        if (released.Orchestrations > 0)
        {
            signal.NotifyOrchestrations();
        }

        if (released.Activities > 0)
        {
            signal.NotifyActivities();
        }
    }
}
