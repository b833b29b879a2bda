using System.Collections.Concurrent;
using System.Security.Cryptography;
using DurableAgents.Engine.History;
using DurableAgents.Engine.Hosting;
using DurableAgents.Engine.Runtime;
using DurableAgents.Engine.Storage;
using Grpc.Core;
using Microsoft.DurableTask;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableAgents.Engine.Grpc;

/// <summary>
/// The work-item side of the gRPC endpoint: each GetWorkItems stream leases orchestration episodes
/// and activity tasks from the store under its own lease owner, as far as the concurrency it
/// announced allows, and sends them with a fresh completion token. The token stands for the lease:
/// a completion is applied only while its token is outstanding here AND the store's lease still
/// matches (the same fenced commit the in-process worker uses); anything else is refused with
/// FailedPrecondition and writes nothing. A stream that ends hands its items back at once.
/// Completions must reach the host that served the stream (tokens live in its memory).
/// </summary>
internal sealed class WorkItemStreams : IDisposable
{
    // Most items leased in one store round trip.
    private const int MaxLeaseBatch = 32;

    private readonly IOrchestrationStore _store;
    private readonly WorkSignal _signal;
    private readonly EpisodeObservers? _observers;
    private readonly TimeProvider _time;
    private readonly DurableAgentsOptions _options;
    private readonly GrpcEndpointOptions _grpc;
    private readonly EpisodeBuilder _episodes;
    private readonly ILogger _logger;
    private readonly string _hostId;
    private readonly NameFilter? _defaultOrchestrations;
    private readonly NameFilter? _defaultActivities;
    private readonly ConcurrentDictionary<string, Pending> _pending = new(StringComparer.Ordinal);
    private readonly ITimer _renewal;

    public WorkItemStreams(
        IOrchestrationStore store,
        WorkSignal signal,
        HostIdentity identity,
        TimeProvider time,
        IOptions<DurableAgentsOptions> options,
        IOptions<GrpcEndpointOptions> grpc,
        IOptionsMonitor<DurableTaskRegistry> registry,
        ILoggerFactory loggerFactory,
        EpisodeObservers? observers = null)
    {
        _store = store;
        _observers = observers;
        _signal = signal;
        _time = time;
        _options = options.Value;
        _grpc = grpc.Value;
        _episodes = new EpisodeBuilder(store, loggerFactory, _options);
        _logger = loggerFactory.CreateLogger("DurableAgents.Engine.Grpc");
        _hostId = identity.HostId;

        // A stream that names no tasks gets everything this host's own worker does not run.
        if (_options.EnableWorker)
        {
            var tasks = registry.Get(Options.DefaultName);
            _defaultOrchestrations = NameFilter.AllBut(tasks.GetOrchestrators().Select(o => o.Key.Name));
            _defaultActivities = NameFilter.AllBut(tasks.GetActivities().Select(a => a.Key.Name));
        }

        // Activities held by a connected stream keep their lease for as long as the stream lives.
        var every = _options.ActivityLease / 3;
        _renewal = time.CreateTimer(_ => _ = RenewActivitiesAsync(), null, every, every);
    }

    /// <summary>Work items handed out and not yet completed or abandoned.</summary>
    public int Outstanding => _pending.Count;

    public void Dispose() => _renewal.Dispose();

    /// <summary>Serves one GetWorkItems stream until the caller goes away.</summary>
    public async Task RunStreamAsync(P.GetWorkItemsRequest request, IServerStreamWriter<P.WorkItem> writer, CancellationToken cancellationToken)
    {
        var stream = new WorkerStream(
            $"{_hostId}/grpc-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}", // under the host's id: its heartbeat covers the stream's leases
            Limit(request.MaxConcurrentOrchestrationWorkItems),
            Limit(request.MaxConcurrentActivityWorkItems),
            request.Capabilities.Contains(P.WorkerCapability.HistoryStreaming),
            request.WorkItemFilters is { Orchestrations.Count: > 0 } of ? NameFilter.Only(of.Orchestrations.Select(o => o.Name)) : _defaultOrchestrations,
            request.WorkItemFilters is { Activities.Count: > 0 } af ? NameFilter.Only(af.Activities.Select(a => a.Name)) : _defaultActivities);
        if (_logger.IsEnabled(LogLevel.Information))
        {
            _logger.StreamConnected(stream.Id, stream.MaxOrchestrations, stream.MaxActivities, Describe(stream.Orchestrations), Describe(stream.Activities));
        }
        var delay = _options.MinPollInterval;
        var lastWrite = _time.GetTimestamp();
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                // Signals are taken before polling, so a notification in between is not lost.
                var orchestrationSignal = _signal.NextOrchestrationSignal();
                var activitySignal = _signal.NextActivitySignal();
                var freed = stream.NextFreed();
                int sent = 0;
                try
                {
                    while (stream.TryDequeue(out var ready))
                    {
                        await SendAsync(ready.Pending, ready.WorkItem, writer, cancellationToken).ConfigureAwait(false);
                        sent++;
                    }

                    sent += await LeaseAndSendAsync(stream, writer, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception ex) when (ex is not RpcException and not InvalidOperationException)
                {
                    delay = Next(delay);
                    _logger.StreamPollError(stream.Id, delay, ex);
                    await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                    continue;
                }

                if (sent > 0)
                {
                    delay = _options.MinPollInterval;
                    lastWrite = _time.GetTimestamp();
                    continue;
                }

                var sincePing = _time.GetElapsedTime(lastWrite);
                if (sincePing >= _grpc.HealthPingInterval)
                {
                    await writer.WriteAsync(new P.WorkItem { HealthPing = new P.HealthPing() }, cancellationToken).ConfigureAwait(false);
                    lastWrite = _time.GetTimestamp();
                    continue;
                }

                // Idle: wake on new work of a kind there is room for, on a completion that frees
                // room, at the poll interval (work written by other hosts), or when a ping is due.
                var waits = new List<Task> { freed };
                if (stream.FreeOrchestrations > 0)
                {
                    waits.Add(orchestrationSignal);
                }

                if (stream.FreeActivities > 0)
                {
                    waits.Add(activitySignal);
                }

                var wait = delay < _grpc.HealthPingInterval - sincePing ? delay : _grpc.HealthPingInterval - sincePing;
                await WorkSignal.WaitAsync(Task.WhenAny(waits), wait, _time, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                delay = Next(delay);
            }
        }
        finally
        {
            var returned = await ReturnAsync(stream).ConfigureAwait(false);
            _logger.StreamEnded(stream.Id, returned);
        }
    }

    private async Task<int> LeaseAndSendAsync(WorkerStream stream, IServerStreamWriter<P.WorkItem> writer, CancellationToken cancellationToken)
    {
        // Slots are reserved before the store round trip: completions on other threads hand work
        // to this stream too, and together they must stay within what the worker announced.
        var sent = 0;
        var items = await LeaseReservedAsync(stream, orchestration: true, count => _store.TryLockOrchestrationsAsync(stream.Id, _options.OrchestrationLease, _time.GetUtcNow(), count, stream.Orchestrations, cancellationToken)).ConfigureAwait(false);
        for (var i = 0; i < items.Count; i++)
        {
            (PendingEpisode Pending, P.WorkItem WorkItem)? episode;
            try
            {
                episode = await EpisodeWorkItemAsync(stream, items[i], cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                // This one and the rest go back to the queue.
                for (var j = i; j < items.Count; j++)
                {
                    await AbandonLeasedAsync(items[j]).ConfigureAwait(false);
                }

                stream.Release(orchestration: true, items.Count - i);
                throw;
            }

            if (episode is { } e)
            {
                await SendAsync(e.Pending, e.WorkItem, writer, cancellationToken).ConfigureAwait(false);
                sent++;
            }
            else
            {
                stream.Release(orchestration: true, 1); // needed no worker
            }
        }

        var activities = await LeaseReservedAsync(stream, orchestration: false, count => _store.TryLockActivitiesAsync(stream.Id, _options.ActivityLease, _time.GetUtcNow(), count, stream.Activities, cancellationToken)).ConfigureAwait(false);
        foreach (var item in activities)
        {
            await SendAsync(new PendingActivity(NewToken(), stream, item), ActivityWorkItemOf(item), writer, cancellationToken).ConfigureAwait(false);
            sent++;
        }

        return sent;
    }

    /// <summary>
    /// Reserves up to a batch of the stream's free slots of one kind, leases at most that many,
    /// and gives back the slots nothing was leased for (all of them when the lease fails).
    /// </summary>
    private static async Task<IReadOnlyList<T>> LeaseReservedAsync<T>(WorkerStream stream, bool orchestration, Func<int, Task<IReadOnlyList<T>>> lease)
    {
        var reserved = stream.Reserve(orchestration, MaxLeaseBatch);
        if (reserved == 0)
        {
            return [];
        }

        IReadOnlyList<T> items;
        try
        {
            items = await lease(reserved).ConfigureAwait(false);
        }
        catch
        {
            stream.Release(orchestration, reserved);
            throw;
        }

        stream.Release(orchestration, reserved - items.Count);
        return items;
    }

    /// <summary>The work item for a leased episode, or null when it needed no worker (committed here).</summary>
    private async Task<(PendingEpisode Pending, P.WorkItem WorkItem)?> EpisodeWorkItemAsync(WorkerStream stream, OrchestrationWorkItem item, CancellationToken cancellationToken)
    {
        if (await TryCommitWithoutCodeAsync(item, cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        var inputs = EpisodeBuilder.Inputs(item, _time.GetUtcNow());
        var request = new P.OrchestratorRequest { InstanceId = item.InstanceId, ExecutionId = item.ExecutionId };
        request.NewEvents.AddRange(inputs.NewEvents);
        IReadOnlyList<P.HistoryEvent> past = [];
        if (item.HistoryLength > 0)
        {
            if (stream.HistoryStreaming && item.HistoryLength > _grpc.InlineHistoryEvents)
            {
                request.RequiresHistoryStreaming = true; // the worker streams it (StreamInstanceHistory)
            }
            else
            {
                past = await _store.GetHistoryAsync(item.InstanceId, cancellationToken).ConfigureAwait(false);
                request.PastEvents.AddRange(past);
            }
        }

        return (new PendingEpisode(NewToken(), stream, item, inputs, past), new P.WorkItem { OrchestratorRequest = request });
    }

    private static P.WorkItem ActivityWorkItemOf(ActivityWorkItem item)
    {
        var task = item.Task;
        return new P.WorkItem
        {
            ActivityRequest = new P.ActivityRequest
            {
                Name = task.Name,
                Version = task.Version,
                Input = task.Input,
                TaskId = task.TaskId,
                OrchestrationInstance = new P.OrchestrationInstance { InstanceId = task.InstanceId, ExecutionId = task.ExecutionId },
            },
        };
    }

    /// <summary>
    /// Hands work leased outside the stream's loop (activities an episode's commit claimed, the
    /// episode an activity result leased) to the stream, whose slots were reserved for it; when
    /// the stream has ended, the item goes back to the queue instead.
    /// </summary>
    private async Task HandOverAsync(Pending pending, P.WorkItem workItem)
    {
        workItem.CompletionToken = pending.Token;
        if (!pending.Stream.TryEnqueue(() => _pending[pending.Token] = pending, (pending, workItem)))
        {
            await AbandonAsync(pending, TimeSpan.Zero).ConfigureAwait(false);
        }
    }

    /// <summary>Sends a work item whose slot is reserved; a write that fails puts it back in the queue.</summary>
    private async Task SendAsync(Pending pending, P.WorkItem workItem, IServerStreamWriter<P.WorkItem> writer, CancellationToken cancellationToken)
    {
        workItem.CompletionToken = pending.Token;
        _pending[pending.Token] = pending;
        try
        {
            await writer.WriteAsync(workItem, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            // Not delivered: back to the queue (the stream's clean-up would do it too).
            if (_pending.TryRemove(pending.Token, out _))
            {
                await AbandonAsync(pending, TimeSpan.Zero).ConfigureAwait(false);
            }

            throw;
        }
    }

    /// <summary>Late messages for a finished instance and terminations need no worker: committed here.</summary>
    private async Task<bool> TryCommitWithoutCodeAsync(OrchestrationWorkItem item, CancellationToken cancellationToken)
    {
        var commit = await _episodes.WithoutCodeAsync(item, _time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
        if (commit is null)
        {
            return false;
        }

        try
        {
            await _store.CommitOrchestrationAsync(item, commit, _time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
            if (_observers is not null)
            {
                await _observers.CommittedAsync(item, commit, CancellationToken.None).ConfigureAwait(false);
            }

            _signal.EpisodeCommitted(item.InstanceId, commit, 0, null, _time);
        }
        catch (LeaseLostException)
        {
            // someone else has it now
        }

        return true;
    }

    /// <summary>CompleteOrchestratorTask: one response, or the chunks of one (isPartial until the last).</summary>
    public async Task CompleteOrchestrationAsync(P.OrchestratorResponse response, CancellationToken cancellationToken)
    {
        var episode = Find<PendingEpisode>(response.CompletionToken, "orchestration");
        if (!string.Equals(response.InstanceId, episode.Item.InstanceId, StringComparison.Ordinal))
        {
            throw Refuse("orchestration", StatusCode.InvalidArgument, $"The completion token belongs to instance '{episode.Item.InstanceId}', not '{response.InstanceId}'.");
        }

#pragma warning disable CS0612 // isPartial/chunkIndex are deprecated in the protocol but still sent by the SDKs for large completions
        lock (episode)
        {
            var index = response.ChunkIndex ?? 0;
            if (index != episode.NextChunk)
            {
                throw Refuse("orchestration", StatusCode.InvalidArgument, $"Chunk {index} of the completion of '{episode.Item.InstanceId}' arrived; chunk {episode.NextChunk} was expected.");
            }

            episode.NextChunk++;
            episode.Actions.AddRange(response.Actions);
            if (response.CustomStatus is not null)
            {
                episode.CustomStatus = response.CustomStatus;
            }

            if (response.IsPartial)
            {
                return; // the work item stays open until the last chunk
            }
        }
#pragma warning restore CS0612

        if (!_pending.TryRemove(episode.Token, out _))
        {
            throw Refuse("orchestration", StatusCode.FailedPrecondition, "The work item was already completed or abandoned.");
        }

        try
        {
            var whole = new P.OrchestratorResponse { InstanceId = response.InstanceId, CustomStatus = episode.CustomStatus, CompletionToken = response.CompletionToken };
            whole.Actions.AddRange(episode.Actions);
            var now = _time.GetUtcNow();
            var (commit, earliestTimer) = await _episodes.PlanAsync(episode.Item, episode.Inputs, episode.Past, whole, now, "grpc", cancellationToken).ConfigureAwait(false);

            // The activities this episode schedules go to the same stream as far as it has room:
            // inserted already leased to it, handed over without a poll and a lease round trip.
            var stream = episode.Stream;
            // (The store claims the first ones, so only as many as lead the list and are the stream's to take.)
            var claimable = commit.NewActivities.TakeWhile(a => stream.Activities?.Matches(a.Name) ?? true).Count();
            var reserved = stream.Reserve(orchestration: false, claimable);
            if (reserved > 0)
            {
                commit = commit.WithActivityClaim(new ActivityClaim(stream.Id, _options.ActivityLease, reserved));
            }

            IReadOnlyList<ActivityWorkItem> claimed;
            try
            {
                claimed = await _store.CommitOrchestrationAsync(episode.Item, commit, now, cancellationToken).ConfigureAwait(false);
            }
            catch (LeaseLostException)
            {
                stream.Release(orchestration: false, reserved);
                throw Refuse("orchestration", StatusCode.FailedPrecondition, $"The lease on '{episode.Item.InstanceId}' expired or was taken over before this completion arrived; nothing was written.");
            }
            catch
            {
                stream.Release(orchestration: false, reserved);
                throw;
            }

            stream.Release(orchestration: false, reserved - claimed.Count);
            if (_observers is not null)
            {
                await _observers.CommittedAsync(episode.Item, commit, CancellationToken.None).ConfigureAwait(false);
            }

            foreach (var activity in claimed)
            {
                await HandOverAsync(new PendingActivity(NewToken(), stream, activity), ActivityWorkItemOf(activity)).ConfigureAwait(false);
            }

            _signal.EpisodeCommitted(episode.Item.InstanceId, commit, claimed.Count, earliestTimer, _time);
        }
        finally
        {
            episode.Stream.Release(orchestration: true);
        }
    }

    /// <summary>CompleteActivityTask.</summary>
    public async Task CompleteActivityAsync(P.ActivityResponse response, CancellationToken cancellationToken)
    {
        var activity = Find<PendingActivity>(response.CompletionToken, "activity");
        var task = activity.Item.Task;
        if (!string.Equals(response.InstanceId, task.InstanceId, StringComparison.Ordinal) || response.TaskId != task.TaskId)
        {
            throw Refuse("activity", StatusCode.InvalidArgument, $"The completion token belongs to task {task.TaskId} of '{task.InstanceId}', not task {response.TaskId} of '{response.InstanceId}'.");
        }

        if (!_pending.TryRemove(activity.Token, out _))
        {
            throw Refuse("activity", StatusCode.FailedPrecondition, "The work item was already completed or abandoned.");
        }

        try
        {
            var now = _time.GetUtcNow();
            var size = DataConverter.ByteCount(response.Result);
            var result = response.FailureDetails is { } failure
                ? Events.TaskFailed(task.TaskId, failure, now)
                : size > _options.MaxPayloadBytes
                    ? Events.TaskFailed(task.TaskId, Events.Failure(new PayloadTooLargeException($"result of activity '{task.Name}'", size, _options.MaxPayloadBytes)), now)
                    : Events.TaskCompleted(task.TaskId, response.Result, now);
            // The instance the result goes to is leased to the same stream in the same transaction,
            // if it has room and takes that orchestrator: its next episode is handed over at once.
            var stream = activity.Stream;
            var reserved = stream.Reserve(orchestration: true, 1);
            ActivityResults results;
            try
            {
                results = await _store.CompleteActivitiesAndLeaseAsync([new ActivityCompletion(activity.Item, result)], stream.Id, _options.OrchestrationLease, reserved, now, stream.Orchestrations, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                stream.Release(orchestration: true, reserved);
                throw;
            }

            stream.Release(orchestration: true, reserved - results.Leased.Count);
            if (!results.Applied[0])
            {
                throw Refuse("activity", StatusCode.FailedPrecondition, $"Task {task.TaskId} of '{task.InstanceId}' is leased to another worker now (its lease expired); this result was discarded.");
            }

            foreach (var leased in results.Leased)
            {
                (PendingEpisode Pending, P.WorkItem WorkItem)? next;
                try
                {
                    next = await EpisodeWorkItemAsync(stream, leased, CancellationToken.None).ConfigureAwait(false);
                }
#pragma warning disable CA1031 // the result is recorded; the episode just goes back to the queue for any worker
                catch (Exception)
#pragma warning restore CA1031
                {
                    await AbandonLeasedAsync(leased).ConfigureAwait(false);
                    next = null;
                }

                if (next is { } episode)
                {
                    await HandOverAsync(episode.Pending, episode.WorkItem).ConfigureAwait(false);
                }
                else
                {
                    stream.Release(orchestration: true, 1); // needed no worker, or went back to the queue
                }
            }

            if (results.Leased.Count == 0)
            {
                _signal.NotifyOrchestrations();
            }

            _signal.InstanceChanged(task.InstanceId);
        }
        finally
        {
            activity.Stream.Release(orchestration: false);
        }
    }

    /// <summary>AbandonTaskOrchestratorWorkItem / AbandonTaskActivityWorkItem: the item goes back to the queue.</summary>
    public async Task AbandonAsync(string completionToken, bool orchestration)
    {
        var kind = orchestration ? "orchestration" : "activity";
        var pending = orchestration ? (Pending)Find<PendingEpisode>(completionToken, kind) : Find<PendingActivity>(completionToken, kind);
        if (!_pending.TryRemove(pending.Token, out _))
        {
            throw Refuse(kind, StatusCode.FailedPrecondition, "The work item was already completed or abandoned.");
        }

        _logger.WorkItemAbandoned(kind, pending.InstanceId);

        // A short delay: a worker that abandons (a version or filter it does not serve) is not handed the same item in a tight loop.
        await AbandonAsync(pending, TimeSpan.FromSeconds(1)).ConfigureAwait(false);
    }

    private async Task<int> ReturnAsync(WorkerStream stream)
    {
        stream.Close(); // from now on, work handed over is abandoned at once instead
        var returned = 0;
        foreach (var (token, pending) in _pending)
        {
            if (pending.Stream == stream && _pending.TryRemove(token, out _))
            {
                await AbandonAsync(pending, TimeSpan.Zero).ConfigureAwait(false);
                returned++;
            }
        }

        return returned;
    }

    private async Task AbandonAsync(Pending pending, TimeSpan retryAfter)
    {
        try
        {
            var now = _time.GetUtcNow();
            switch (pending)
            {
                case PendingEpisode e:
                    await _store.AbandonOrchestrationAsync(e.Item, retryAfter, now, CancellationToken.None).ConfigureAwait(false);
                    _signal.NotifyOrchestrations();
                    break;
                case PendingActivity a:
                    await _store.AbandonActivityAsync(a.Item, now, CancellationToken.None).ConfigureAwait(false);
                    _signal.NotifyActivities();
                    break;
                default:
                    break;
            }
        }
#pragma warning disable CA1031 // if the abandon cannot be written, the lease simply expires
        catch (Exception)
#pragma warning restore CA1031
        {
        }
        finally
        {
            pending.Stream.Release(pending is PendingEpisode);
        }
    }

    private async Task AbandonLeasedAsync(OrchestrationWorkItem item)
    {
        try
        {
            await _store.AbandonOrchestrationAsync(item, TimeSpan.Zero, _time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false);
            _signal.NotifyOrchestrations();
        }
#pragma warning disable CA1031 // if the abandon cannot be written either, the lease simply expires
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    private async Task RenewActivitiesAsync()
    {
        foreach (var pending in _pending.Values.OfType<PendingActivity>())
        {
            try
            {
                await _store.RenewActivityLeaseAsync(pending.Item, _options.ActivityLease, _time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false);
            }
#pragma warning disable CA1031 // a failed renewal is retried at the next tick; the fence protects correctness
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }
    }

    private T Find<T>(string token, string kind)
        where T : Pending
    {
        if (string.IsNullOrEmpty(token) || !_pending.TryGetValue(token, out var pending) || pending is not T found)
        {
            throw Refuse(kind, StatusCode.FailedPrecondition, "The completion token is unknown here: the work item was completed, abandoned or returned when its stream ended, or it was handed out by another host.");
        }

        return found;
    }

    private RpcException Refuse(string kind, StatusCode code, string reason)
    {
        _logger.CompletionRefused(kind, reason);
        return new RpcException(new Status(code, reason));
    }

    private int Limit(int announced) => announced <= 0 || announced > _grpc.MaxWorkItemsPerStream ? _grpc.MaxWorkItemsPerStream : announced;

    private TimeSpan Next(TimeSpan delay)
    {
        var doubled = delay * 2;
        return doubled > _options.MaxPollInterval ? _options.MaxPollInterval : doubled;
    }

    private static string NewToken() => Convert.ToHexString(RandomNumberGenerator.GetBytes(16));

    private static string Describe(NameFilter? filter) =>
        filter is null ? "all" : filter.Exclude ? $"all but [{string.Join(", ", filter.Names)}]" : $"[{string.Join(", ", filter.Names)}]";

    /// <summary>One connected GetWorkItems stream and the room it has left.</summary>
    private sealed class WorkerStream(string id, int maxOrchestrations, int maxActivities, bool historyStreaming, NameFilter? orchestrations, NameFilter? activities)
    {
        private readonly Lock _gate = new();
        private int _orchestrations;
        private int _activities;
        private TaskCompletionSource _freed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Queue<(Pending Pending, P.WorkItem WorkItem)> _ready = new();
        private bool _closed;

        public string Id { get; } = id;

        public int MaxOrchestrations { get; } = maxOrchestrations;

        public int MaxActivities { get; } = maxActivities;

        public bool HistoryStreaming { get; } = historyStreaming;

        public NameFilter? Orchestrations { get; } = orchestrations;

        public NameFilter? Activities { get; } = activities;

        public int FreeOrchestrations
        {
            get
            {
                lock (_gate)
                {
                    return MaxOrchestrations - _orchestrations;
                }
            }
        }

        public int FreeActivities
        {
            get
            {
                lock (_gate)
                {
                    return MaxActivities - _activities;
                }
            }
        }

        public Task NextFreed()
        {
            lock (_gate)
            {
                return _freed.Task;
            }
        }

        /// <summary>Takes up to <paramref name="wanted"/> free slots; returns how many.</summary>
        public int Reserve(bool orchestration, int wanted)
        {
            lock (_gate)
            {
                var free = orchestration ? MaxOrchestrations - _orchestrations : MaxActivities - _activities;
                var taken = Math.Max(0, Math.Min(free, wanted));
                if (orchestration)
                {
                    _orchestrations += taken;
                }
                else
                {
                    _activities += taken;
                }

                return taken;
            }
        }

        /// <summary>Queues reserved work for the loop to send (registering it first); false once the stream has ended.</summary>
        public bool TryEnqueue(Action register, (Pending Pending, P.WorkItem WorkItem) work)
        {
            TaskCompletionSource changed;
            lock (_gate)
            {
                if (_closed)
                {
                    return false;
                }

                register();
                _ready.Enqueue(work);
                changed = _freed;
                _freed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            changed.TrySetResult();
            return true;
        }

        public bool TryDequeue(out (Pending Pending, P.WorkItem WorkItem) work)
        {
            lock (_gate)
            {
                return _ready.TryDequeue(out work);
            }
        }

        /// <summary>The stream ended: nothing more is queued for it.</summary>
        public void Close()
        {
            lock (_gate)
            {
                _closed = true;
                _ready.Clear();
            }
        }

        public void Release(bool orchestration, int count = 1)
        {
            if (count <= 0)
            {
                return;
            }

            TaskCompletionSource freed;
            lock (_gate)
            {
                if (orchestration)
                {
                    _orchestrations -= count;
                }
                else
                {
                    _activities -= count;
                }

                freed = _freed;
                _freed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            freed.TrySetResult();
        }
    }

    private abstract class Pending(string token, WorkerStream stream)
    {
        public string Token { get; } = token;

        public WorkerStream Stream { get; } = stream;

        public abstract string InstanceId { get; }
    }

    private sealed class PendingEpisode(string token, WorkerStream stream, OrchestrationWorkItem item, EpisodeInputs inputs, IReadOnlyList<P.HistoryEvent> past)
        : Pending(token, stream)
    {
        public OrchestrationWorkItem Item { get; } = item;

        public EpisodeInputs Inputs { get; } = inputs;

        public IReadOnlyList<P.HistoryEvent> Past { get; } = past;

        public List<P.OrchestratorAction> Actions { get; } = [];

        public string? CustomStatus { get; set; }

        public int NextChunk { get; set; }

        public override string InstanceId => Item.InstanceId;
    }

    private sealed class PendingActivity(string token, WorkerStream stream, ActivityWorkItem item) : Pending(token, stream)
    {
        public ActivityWorkItem Item { get; } = item;

        public override string InstanceId => Item.Task.InstanceId;
    }
}
