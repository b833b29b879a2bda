using DurableAgents.Engine.Storage;
using Microsoft.Extensions.Logging;

namespace DurableAgents.Engine.Hosting;

/// <summary>
/// Told about every committed episode (its new history events and the instance row after it), on the host
/// that committed it, before the activities it claimed start there. The agent activities use it to put run
/// started/finished and custom-status changes on the instance's live event stream.
/// </summary>
public interface IEpisodeObserver
{
    /// <summary>Called after the commit; keep it short (it delays this episode's activities). Exceptions are logged and ignored.</summary>
    Task OnCommittedAsync(OrchestrationWorkItem item, OrchestrationCommit commit, CancellationToken cancellationToken);
}

/// <summary>The registered <see cref="IEpisodeObserver"/>s, called in turn; a failing one is logged and never fails the episode.</summary>
public sealed class EpisodeObservers(IEnumerable<IEpisodeObserver> observers, ILogger<EpisodeObservers> logger)
{
    private readonly IEpisodeObserver[] _observers = observers.ToArray();

    /// <summary>Tells every observer.</summary>
    public async Task CommittedAsync(OrchestrationWorkItem item, OrchestrationCommit commit, CancellationToken cancellationToken)
    {
        foreach (var observer in _observers)
        {
            try
            {
                await observer.OnCommittedAsync(item, commit, cancellationToken).ConfigureAwait(false);
            }
#pragma warning disable CA1031 // an observer (a live stream) must never fail a committed episode
            catch (Exception ex)
#pragma warning restore CA1031
            {
                logger.EpisodeObserverFailed(observer.GetType().Name, item.InstanceId, ex);
            }
        }
    }
}
