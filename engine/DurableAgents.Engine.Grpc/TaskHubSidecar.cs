using DurableAgents.Engine.Client;
using DurableAgents.Engine.Storage;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableAgents.Engine.Grpc;

/// <summary>
/// The Durable Task protocol's <c>TaskHubSidecarService</c> over the DurableAgents store: what the
/// Durable Task Scheduler and the durabletask sidecars serve, so the stock gRPC worker and client
/// of any Durable Task SDK run against our SQLite or PostgreSQL task hub. Client calls go through
/// the same <see cref="DurableAgentsClient"/> rules as in-process calls; work items through
/// <see cref="WorkItemStreams"/>. Durable entities and task-hub management answer Unimplemented
/// with a message that says so.
/// </summary>
internal sealed class TaskHubSidecar : P.TaskHubSidecarService.TaskHubSidecarServiceBase
{
    private static readonly Empty EmptyMessage = new();
    private readonly DurableAgentsClient _client;
    private readonly IOrchestrationStore _store;
    private readonly WorkItemStreams _streams;
    private readonly GrpcEndpointOptions _options;

    private readonly ILogger _logger;

    public TaskHubSidecar(DurableAgentsClient client, IOrchestrationStore store, WorkItemStreams streams, IOptions<GrpcEndpointOptions> options, ILoggerFactory loggerFactory)
    {
        _logger = loggerFactory.CreateLogger("DurableAgents.Engine.Grpc");
        _client = client;
        _store = store;
        _streams = streams;
        _options = options.Value;
    }

    public override Task<Empty> Hello(Empty request, ServerCallContext context) => Task.FromResult(EmptyMessage);

    public override Task<P.CreateInstanceResponse> StartInstance(P.CreateInstanceRequest request, ServerCallContext context) => Call(async ct =>
    {
        if (string.IsNullOrWhiteSpace(request.Name))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "name is required: the orchestrator to start."));
        }

        IReadOnlyCollection<OrchestrationRuntimeStatus>? dedupe = request.OrchestrationIdReusePolicy is { } policy
            ? System.Enum.GetValues<P.OrchestrationStatus>().Except(policy.ReplaceableStatus).Select(s => (OrchestrationRuntimeStatus)s).ToArray()
            : null;
        var options = new StartOrchestrationOptions(
            InstanceId: string.IsNullOrEmpty(request.InstanceId) ? null : request.InstanceId,
            StartAt: request.ScheduledStartTimestamp?.ToDateTimeOffset())
        {
            Version = request.Version is { Length: > 0 } v ? new TaskVersion(v) : null,
            Tags = request.Tags.ToDictionary(),
        };
        var id = await _client.StartSerializedAsync(request.Name, request.Input, options, dedupe, ct).ConfigureAwait(false);
        return new P.CreateInstanceResponse { InstanceId = id };
    }, context);

    public override Task<P.GetInstanceResponse> GetInstance(P.GetInstanceRequest request, ServerCallContext context) => Call(async ct =>
    {
        Require(request.InstanceId, "instanceId");
        var record = await _store.GetInstanceAsync(request.InstanceId, request.GetInputsAndOutputs, ct).ConfigureAwait(false);
        return record is null ? new P.GetInstanceResponse { Exists = false } : new P.GetInstanceResponse { Exists = true, OrchestrationState = ToState(record) };
    }, context);

    public override Task<P.GetInstanceResponse> WaitForInstanceStart(P.GetInstanceRequest request, ServerCallContext context) =>
        WaitAsync(request, context, (id, io, ct) => _client.WaitForInstanceStartAsync(id, io, ct));

    public override Task<P.GetInstanceResponse> WaitForInstanceCompletion(P.GetInstanceRequest request, ServerCallContext context) =>
        WaitAsync(request, context, (id, io, ct) => _client.WaitForInstanceCompletionAsync(id, io, ct));

    public override Task<P.RaiseEventResponse> RaiseEvent(P.RaiseEventRequest request, ServerCallContext context) => Call(async ct =>
    {
        Require(request.InstanceId, "instanceId");
        Require(request.Name, "name");
        await _client.RaiseSerializedEventAsync(request.InstanceId, request.Name, request.Input, ct).ConfigureAwait(false);
        return new P.RaiseEventResponse();
    }, context);

    public override Task<P.TerminateResponse> TerminateInstance(P.TerminateRequest request, ServerCallContext context) => Call(async ct =>
    {
        Require(request.InstanceId, "instanceId");
        await _client.TerminateSerializedAsync(request.InstanceId, request.Output, request.Recursive, ct).ConfigureAwait(false);
        return new P.TerminateResponse();
    }, context);

    public override Task<P.SuspendResponse> SuspendInstance(P.SuspendRequest request, ServerCallContext context) => Call(async ct =>
    {
        Require(request.InstanceId, "instanceId");
        await _client.SuspendInstanceAsync(request.InstanceId, request.Reason, ct).ConfigureAwait(false);
        return new P.SuspendResponse();
    }, context);

    public override Task<P.ResumeResponse> ResumeInstance(P.ResumeRequest request, ServerCallContext context) => Call(async ct =>
    {
        Require(request.InstanceId, "instanceId");
        await _client.ResumeInstanceAsync(request.InstanceId, request.Reason, ct).ConfigureAwait(false);
        return new P.ResumeResponse();
    }, context);

    public override Task<P.RestartInstanceResponse> RestartInstance(P.RestartInstanceRequest request, ServerCallContext context) => Call(async ct =>
    {
        Require(request.InstanceId, "instanceId");
        var id = await _client.RestartAsync(request.InstanceId, request.RestartWithNewInstanceId, ct).ConfigureAwait(false);
        return new P.RestartInstanceResponse { InstanceId = id };
    }, context);

    public override Task<P.RewindInstanceResponse> RewindInstance(P.RewindInstanceRequest request, ServerCallContext context) => Call(async ct =>
    {
        Require(request.InstanceId, "instanceId");
        await _client.RewindInstanceAsync(request.InstanceId, request.Reason ?? string.Empty, ct).ConfigureAwait(false);
        return new P.RewindInstanceResponse();
    }, context);

    public override Task<P.QueryInstancesResponse> QueryInstances(P.QueryInstancesRequest request, ServerCallContext context) => Call(async ct =>
    {
        var q = request.Query ?? new P.InstanceQuery();
        var page = await _client.QueryInstancesAsync(
            new InstanceQuery
            {
                Statuses = q.RuntimeStatus.Count > 0 ? q.RuntimeStatus.Select(s => (OrchestrationRuntimeStatus)s).ToArray() : null,
                CreatedFrom = q.CreatedTimeFrom?.ToDateTimeOffset(),
                CreatedTo = q.CreatedTimeTo?.ToDateTimeOffset(),
                InstanceIdPrefix = q.InstanceIdPrefix,
                PageSize = PageSize(q.MaxInstanceCount),
                ContinuationToken = q.ContinuationToken,
                FetchInputsAndOutputs = q.FetchInputsAndOutputs,
            },
            ct).ConfigureAwait(false);
        var response = new P.QueryInstancesResponse { ContinuationToken = page.ContinuationToken };
        response.OrchestrationState.AddRange(page.Instances.Select(ToState));
        return response;
    }, context);

    public override Task<P.ListInstanceIdsResponse> ListInstanceIds(P.ListInstanceIdsRequest request, ServerCallContext context) => Call(async ct =>
    {
        // Pages follow the store's order (newest first); the completed-time filter applies within a
        // page, so a page may hold fewer ids than asked while more pages follow.
        var from = request.CompletedTimeFrom?.ToDateTimeOffset();
        var to = request.CompletedTimeTo?.ToDateTimeOffset();
        var page = await _client.QueryInstancesAsync(
            new InstanceQuery
            {
                Statuses = request.RuntimeStatus.Count > 0 ? request.RuntimeStatus.Select(s => (OrchestrationRuntimeStatus)s).ToArray() : null,
                PageSize = PageSize(request.PageSize),
                ContinuationToken = request.LastInstanceKey,
            },
            ct).ConfigureAwait(false);
        var response = new P.ListInstanceIdsResponse { LastInstanceKey = page.ContinuationToken };
        response.InstanceIds.AddRange(page.Instances
            .Where(i => (from is null && to is null) || (i.CompletedAt is { } c && (from is null || c >= from) && (to is null || c < to)))
            .Select(i => i.InstanceId));
        return response;
    }, context);

    public override Task<P.PurgeInstancesResponse> PurgeInstances(P.PurgeInstancesRequest request, ServerCallContext context) => Call(async ct =>
    {
        int deleted;
        switch (request.RequestCase)
        {
            case P.PurgeInstancesRequest.RequestOneofCase.InstanceId:
                Require(request.InstanceId, "instanceId");
                deleted = await _store.PurgeInstanceAsync(request.InstanceId, request.Recursive, ct).ConfigureAwait(false);
                break;
            case P.PurgeInstancesRequest.RequestOneofCase.InstanceBatch:
                deleted = 0;
                foreach (var id in request.InstanceBatch.InstanceIds)
                {
                    deleted += await _store.PurgeInstanceAsync(id, request.Recursive, ct).ConfigureAwait(false);
                }

                break;
            case P.PurgeInstancesRequest.RequestOneofCase.PurgeInstanceFilter:
                var f = request.PurgeInstanceFilter;
                deleted = await _store.PurgeInstancesAsync(
                    new PurgeFilter(f.CreatedTimeFrom?.ToDateTimeOffset(), f.CreatedTimeTo?.ToDateTimeOffset(), f.RuntimeStatus.Count > 0 ? f.RuntimeStatus.Select(s => (OrchestrationRuntimeStatus)s).ToArray() : null),
                    ct).ConfigureAwait(false);
                break;
            default:
                throw new RpcException(new Status(StatusCode.InvalidArgument, "Say what to purge: instanceId, instanceBatch or purgeInstanceFilter."));
        }

        return new P.PurgeInstancesResponse { DeletedInstanceCount = deleted, IsComplete = true };
    }, context);

    public override async Task StreamInstanceHistory(P.StreamInstanceHistoryRequest request, IServerStreamWriter<P.HistoryChunk> responseStream, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(responseStream);
        ArgumentNullException.ThrowIfNull(context);
        var history = await Call(
            async ct =>
            {
                Require(request.InstanceId, "instanceId");
                var record = await _store.GetInstanceAsync(request.InstanceId, false, ct).ConfigureAwait(false)
                    ?? throw new OrchestrationNotFoundException(request.InstanceId);
                if (request.ExecutionId is { Length: > 0 } execution && execution != record.ExecutionId)
                {
                    throw new RpcException(new Status(StatusCode.NotFound, $"Execution '{execution}' of '{request.InstanceId}' is not its current one; only the current execution's history is kept."));
                }

                return await _store.GetHistoryAsync(request.InstanceId, ct).ConfigureAwait(false);
            },
            context).ConfigureAwait(false);
        var chunks = 0;
        for (var i = 0; i < history.Count; i += _options.HistoryChunkEvents)
        {
            var chunk = new P.HistoryChunk();
            chunk.Events.AddRange(history.Skip(i).Take(_options.HistoryChunkEvents));
            await responseStream.WriteAsync(chunk, context.CancellationToken).ConfigureAwait(false);
            chunks++;
        }

        _logger.HistoryStreamed(request.InstanceId, history.Count, chunks, request.ForWorkItemProcessing);
    }

    public override Task GetWorkItems(P.GetWorkItemsRequest request, IServerStreamWriter<P.WorkItem> responseStream, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        if (request.MaxConcurrentEntityWorkItems > 0 && request.WorkItemFilters is { Entities.Count: > 0 })
        {
            throw Unsupported("Durable entities");
        }

        return _streams.RunStreamAsync(request, responseStream, context.CancellationToken);
    }

    public override async Task<P.CompleteTaskResponse> CompleteOrchestratorTask(P.OrchestratorResponse request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        await _streams.CompleteOrchestrationAsync(request, context.CancellationToken).ConfigureAwait(false);
        return new P.CompleteTaskResponse();
    }

    public override async Task<P.CompleteTaskResponse> CompleteActivityTask(P.ActivityResponse request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        await _streams.CompleteActivityAsync(request, context.CancellationToken).ConfigureAwait(false);
        return new P.CompleteTaskResponse();
    }

    public override async Task<P.AbandonOrchestrationTaskResponse> AbandonTaskOrchestratorWorkItem(P.AbandonOrchestrationTaskRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        await _streams.AbandonAsync(request.CompletionToken, orchestration: true).ConfigureAwait(false);
        return new P.AbandonOrchestrationTaskResponse();
    }

    public override async Task<P.AbandonActivityTaskResponse> AbandonTaskActivityWorkItem(P.AbandonActivityTaskRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        await _streams.AbandonAsync(request.CompletionToken, orchestration: false).ConfigureAwait(false);
        return new P.AbandonActivityTaskResponse();
    }

    public override Task<P.CompleteTaskResponse> CompleteEntityTask(P.EntityBatchResult request, ServerCallContext context) => throw Unsupported("Durable entities");

    public override Task<P.AbandonEntityTaskResponse> AbandonTaskEntityWorkItem(P.AbandonEntityTaskRequest request, ServerCallContext context) => throw Unsupported("Durable entities");

    public override Task<P.SignalEntityResponse> SignalEntity(P.SignalEntityRequest request, ServerCallContext context) => throw Unsupported("Durable entities");

    public override Task<P.GetEntityResponse> GetEntity(P.GetEntityRequest request, ServerCallContext context) => throw Unsupported("Durable entities");

    public override Task<P.QueryEntitiesResponse> QueryEntities(P.QueryEntitiesRequest request, ServerCallContext context) => throw Unsupported("Durable entities");

    public override Task<P.CleanEntityStorageResponse> CleanEntityStorage(P.CleanEntityStorageRequest request, ServerCallContext context) => throw Unsupported("Durable entities");

    public override Task<P.CreateTaskHubResponse> CreateTaskHub(P.CreateTaskHubRequest request, ServerCallContext context) =>
        throw new RpcException(new Status(StatusCode.Unimplemented, "CreateTaskHub is not served: the host creates (and upgrades) its task hub's schema at start-up."));

    public override Task<P.DeleteTaskHubResponse> DeleteTaskHub(P.DeleteTaskHubRequest request, ServerCallContext context) =>
        throw new RpcException(new Status(StatusCode.Unimplemented, "DeleteTaskHub is not served: purge instances instead, or drop the task hub's schema with the database's own tools."));

    public override Task<P.SkipGracefulOrchestrationTerminationsResponse> SkipGracefulOrchestrationTerminations(P.SkipGracefulOrchestrationTerminationsRequest request, ServerCallContext context) =>
        throw Unsupported("SkipGracefulOrchestrationTerminations");

    private static RpcException Unsupported(string what) =>
        new(new Status(StatusCode.Unimplemented, $"{what} are not supported by the DurableAgents backend (yet). Use orchestrations with events, or activities over your own storage."));

    private async Task<P.GetInstanceResponse> WaitAsync(P.GetInstanceRequest request, ServerCallContext context, Func<string, bool, CancellationToken, Task<OrchestrationMetadata>> wait) =>
        await Call(
            async ct =>
            {
                Require(request.InstanceId, "instanceId");
                try
                {
                    await wait(request.InstanceId, request.GetInputsAndOutputs, ct).ConfigureAwait(false);
                }
                catch (OrchestrationNotFoundException)
                {
                    return new P.GetInstanceResponse { Exists = false };
                }

                var record = await _store.GetInstanceAsync(request.InstanceId, request.GetInputsAndOutputs, ct).ConfigureAwait(false);
                return record is null ? new P.GetInstanceResponse { Exists = false } : new P.GetInstanceResponse { Exists = true, OrchestrationState = ToState(record) };
            },
            context).ConfigureAwait(false);

    private static int PageSize(int asked) => asked <= 0 ? 100 : Math.Min(asked, 1000);

    private static void Require(string? value, string field)
    {
        if (string.IsNullOrEmpty(value))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"{field} is required."));
        }
    }

    private static P.OrchestrationState ToState(InstanceRecord r)
    {
        var state = new P.OrchestrationState
        {
            InstanceId = r.InstanceId,
            ExecutionId = r.ExecutionId,
            Name = r.Name,
            Version = r.Version,
            OrchestrationStatus = (P.OrchestrationStatus)r.Status,
            CreatedTimestamp = Timestamp.FromDateTimeOffset(r.CreatedAt),
            LastUpdatedTimestamp = Timestamp.FromDateTimeOffset(r.LastUpdatedAt),
            CompletedTimestamp = r.CompletedAt is { } c ? Timestamp.FromDateTimeOffset(c) : null,
            Input = r.Input,
            Output = r.Output,
            CustomStatus = r.CustomStatus,
            FailureDetails = r.Failure,
            ParentInstanceId = r.ParentInstanceId,
        };
        foreach (var (key, value) in r.Tags ?? new Dictionary<string, string>())
        {
            state.Tags[key] = value;
        }

        return state;
    }

    /// <summary>Runs a call, mapping the backend's typed errors to gRPC statuses with their message.</summary>
    private static async Task<T> Call<T>(Func<CancellationToken, Task<T>> call, ServerCallContext context)
    {
        try
        {
            return await call(context.CancellationToken).ConfigureAwait(false);
        }
        catch (OrchestrationNotFoundException ex)
        {
            throw new RpcException(new Status(StatusCode.NotFound, ex.Message));
        }
        catch (OrchestrationAlreadyExistsException ex)
        {
            throw new RpcException(new Status(StatusCode.AlreadyExists, ex.Message));
        }
        catch (OrchestrationStateException ex)
        {
            throw new RpcException(new Status(StatusCode.FailedPrecondition, ex.Message));
        }
        catch (Exception ex) when (ex is InvalidInstanceIdException or PayloadTooLargeException or TaskNotRegisteredException or ArgumentException or FormatException)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, ex.Message));
        }
    }
}
