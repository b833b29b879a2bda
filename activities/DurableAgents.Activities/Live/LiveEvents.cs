using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;

namespace DurableAgents.Activities.Live;

/// <summary>
/// Writes AG-UI events to instances' live streams for the activities. Best-effort: the durable result is the
/// activity's output, never the stream, so a failed append is logged (once until appends work again) and the work goes on.
/// </summary>
public sealed partial class LiveEvents(IAgentEventLog log, TimeProvider time, ILogger<LiveEvents> logger)
{
    private int _warned;

    /// <summary>The log the events go to.</summary>
    public IAgentEventLog Log => log;

    /// <summary>Now, for event timestamps.</summary>
    public DateTimeOffset Now => time.GetUtcNow();

    /// <summary>Appends an event (never throws except for cancellation).</summary>
    public async Task EmitAsync(string instanceId, JsonObject agUiEvent, CancellationToken cancellationToken)
    {
        try
        {
            if (await log.AppendAsync(instanceId, agUiEvent, cancellationToken).ConfigureAwait(false) > 0)
            {
                Interlocked.Exchange(ref _warned, 0);
                return;
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            if (Interlocked.Exchange(ref _warned, 1) == 0)
            {
                LogAppendFailed(logger, instanceId, ex.GetType().Name);
            }

            return;
        }

        if (Interlocked.Exchange(ref _warned, 1) == 0)
        {
            LogAppendFailed(logger, instanceId, "not stored");
        }
    }

    /// <summary>A text message streamed in pieces: START at the first piece, END when done (or cut off).</summary>
    public TextMessageWriter Text(string instanceId, string messageId, string role = "assistant") => new(this, instanceId, messageId, role, reasoning: false);

    /// <summary>A reasoning message streamed in pieces.</summary>
    public TextMessageWriter Reasoning(string instanceId, string messageId) => new(this, instanceId, messageId, "reasoning", reasoning: true);

    [LoggerMessage(EventId = 1340, Level = LogLevel.Warning, Message = "Live event for instance {InstanceId} could not be stored ({Error}); the work goes on, readers miss it.")]
    private static partial void LogAppendFailed(ILogger logger, string instanceId, string error);
}

/// <summary>One text or reasoning message on the live stream.</summary>
public sealed class TextMessageWriter
{
    private readonly LiveEvents _events;
    private readonly string _instanceId;
    private readonly string _role;
    private readonly bool _reasoning;
    private bool _started;
    private bool _ended;

    internal TextMessageWriter(LiveEvents events, string instanceId, string messageId, string role, bool reasoning)
    {
        _events = events;
        _instanceId = instanceId;
        MessageId = messageId;
        _role = role;
        _reasoning = reasoning;
    }

    /// <summary>The AG-UI message id.</summary>
    public string MessageId { get; }

    /// <summary>True once a piece was written.</summary>
    public bool Started => _started;

    /// <summary>Writes a piece (empty pieces are skipped: AG-UI requires non-empty deltas).</summary>
    public async Task WriteAsync(string? delta, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(delta) || _ended)
        {
            return;
        }

        var now = _events.Now;
        if (!_started)
        {
            _started = true;
            if (_reasoning)
            {
                await _events.EmitAsync(_instanceId, AgUi.ReasoningStart(MessageId, now), cancellationToken).ConfigureAwait(false);
                await _events.EmitAsync(_instanceId, AgUi.ReasoningMessageStart(MessageId, now), cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await _events.EmitAsync(_instanceId, AgUi.TextStart(MessageId, _role, now), cancellationToken).ConfigureAwait(false);
            }
        }

        await _events.EmitAsync(_instanceId, _reasoning ? AgUi.ReasoningContent(MessageId, delta, now) : AgUi.TextContent(MessageId, delta, now), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Ends the message if it started (not cancellable: a started message always gets its end).</summary>
    public async Task EndAsync()
    {
        if (!_started || _ended)
        {
            return;
        }

        _ended = true;
        var now = _events.Now;
        if (_reasoning)
        {
            await _events.EmitAsync(_instanceId, AgUi.ReasoningMessageEnd(MessageId, now), CancellationToken.None).ConfigureAwait(false);
            await _events.EmitAsync(_instanceId, AgUi.ReasoningEnd(MessageId, now), CancellationToken.None).ConfigureAwait(false);
        }
        else
        {
            await _events.EmitAsync(_instanceId, AgUi.TextEnd(MessageId, now), CancellationToken.None).ConfigureAwait(false);
        }
    }
}
