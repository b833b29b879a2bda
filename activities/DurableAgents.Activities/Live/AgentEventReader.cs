using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;

namespace DurableAgents.Activities.Live;

/// <summary>An event for a reader: stored ones carry their id; notices (missed events) carry none.</summary>
public sealed record AgentStreamItem(long? Id, string Json, string? Type)
{
    /// <summary>The <see cref="Type"/> of a keep-alive: nothing to show, written as an SSE comment.</summary>
    public const string KeepAliveType = "keep-alive";

    /// <summary>A keep-alive item (see <see cref="LiveStreamOptions.KeepAlive"/>).</summary>
    public static readonly AgentStreamItem KeepAlive = new(null, string.Empty, KeepAliveType);

    /// <summary>True for <see cref="KeepAlive"/>.</summary>
    public bool IsKeepAlive => Type == KeepAliveType && Id is null;
}

/// <summary>Reads an instance's live stream after a cursor: what is stored, then what arrives, until the run ends.</summary>
public static class AgentEventReader
{
    private const int Page = 500;

    /// <summary>How often a quiet reader looks again without a wake-up (and checks whether the instance finished).</summary>
    private static readonly TimeSpan Poll = TimeSpan.FromSeconds(2);

    private static readonly TimeSpan MinWait = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// Events after <paramref name="after"/>, oldest first, each once. When the log no longer holds the events right
    /// after the cursor (trimmed by <see cref="LiveStreamOptions"/>, or the log was lost, e.g. the in-process log of a
    /// restarted host), a <c>CUSTOM</c> <see cref="AgUi.MissedEvents"/> notice comes first. Ends after
    /// <c>RUN_FINISHED</c>/<c>RUN_ERROR</c>, or when <paramref name="finished"/> says the instance is done and
    /// nothing more is stored. With <paramref name="keepAlive"/>, a quiet stream yields <see cref="AgentStreamItem.KeepAlive"/>
    /// that often (checked every 2 s). With <paramref name="window"/>, the read also ends once it is caught up and that
    /// long has passed since it began (for a proxy that buffers whole responses: the client reads again after the last id).
    /// </summary>
    public static async IAsyncEnumerable<AgentStreamItem> ReadAsync(
        IAgentEventLog log, string instanceId, long after, Func<CancellationToken, Task<bool>> finished, TimeProvider time,
        [EnumeratorCancellation] CancellationToken cancellationToken, TimeSpan keepAlive = default, TimeSpan window = default)
    {
        ArgumentNullException.ThrowIfNull(log);
        ArgumentNullException.ThrowIfNull(finished);
        ArgumentNullException.ThrowIfNull(time);
        var wakeup = await log.SubscribeAsync(instanceId, cancellationToken).ConfigureAwait(false);
        await using var _ = wakeup.ConfigureAwait(false);
        var cursor = after;
        var first = true;
        var idleSince = time.GetTimestamp();
        var caughtUp = false;
        var lastSent = time.GetTimestamp();
        var began = time.GetTimestamp();
        while (true)
        {
            var page = await log.ReadAsync(instanceId, cursor, Page, cancellationToken).ConfigureAwait(false);
            if (first)
            {
                first = false;
                if (cursor > page.Last)
                {
                    // A cursor from a log that is gone: say so, and give what this log holds from its start.
                    yield return Notice(cursor, page.First, null, time);
                    cursor = 0;
                    page = await log.ReadAsync(instanceId, cursor, Page, cancellationToken).ConfigureAwait(false);
                }
                else if (cursor < page.Last && (page.First == 0 ? page.Last : page.First - 1) > cursor)
                {
                    var oldest = page.First == 0 ? page.Last + 1 : page.First;
                    yield return Notice(cursor, oldest, oldest - cursor - 1, time);
                }
            }

            foreach (var entry in page.Entries)
            {
                cursor = entry.Id;
                lastSent = time.GetTimestamp();
                var type = AgUi.TypeOf(entry.Json);
                yield return new AgentStreamItem(entry.Id, entry.Json, type);
                if (AgUi.IsTerminal(type))
                {
                    yield break;
                }
            }

            if (page.Entries.Count == Page)
            {
                continue;
            }

            if (page.Entries.Count > 0)
            {
                idleSince = time.GetTimestamp();
            }
            else if (!caughtUp || time.GetElapsedTime(idleSince) >= Poll)
            {
                // Caught up with what is stored (asked once), or quiet for a while:
                caughtUp = true;
                // Quiet for a while: a finished instance whose end was not streamed (or was trimmed) ends here.
                if (await finished(cancellationToken).ConfigureAwait(false))
                {
                    var last = await log.ReadAsync(instanceId, cursor, Page, cancellationToken).ConfigureAwait(false);
                    foreach (var entry in last.Entries)
                    {
                        yield return new AgentStreamItem(entry.Id, entry.Json, AgUi.TypeOf(entry.Json));
                    }

                    yield break;
                }

                idleSince = time.GetTimestamp();
            }

            if (page.Entries.Count == 0)
            {
                if (window > TimeSpan.Zero && time.GetElapsedTime(began) >= window)
                {
                    yield break; // caught up, and the window is over
                }

                if (keepAlive > TimeSpan.Zero && time.GetElapsedTime(lastSent) >= keepAlive)
                {
                    lastSent = time.GetTimestamp();
                    yield return AgentStreamItem.KeepAlive;
                }
            }

            // Woken by an append on any host; the timeout is the fallback if a wake-up was lost (or the window's end).
            var wait = window > TimeSpan.Zero
                ? TimeSpan.FromTicks(Math.Clamp((window - time.GetElapsedTime(began)).Ticks, MinWait.Ticks, Poll.Ticks))
                : Poll;
            await wakeup.WaitAsync(wait, cancellationToken).ConfigureAwait(false);
        }
    }

    private static AgentStreamItem Notice(long after, long firstAvailable, long? missed, TimeProvider time) =>
        new(null, AgUi.Custom(AgUi.MissedEvents, new JsonObject
        {
            ["after"] = after,
            ["firstAvailable"] = firstAvailable,
            ["missed"] = missed,
            ["reason"] = missed is null
                ? "The stream no longer has the events this cursor refers to (the log was cleared or the host restarted without Redis); what it holds follows."
                : $"{missed} event(s) after {after} were trimmed (the stream keeps the newest DurableAgents:Live:MaxEvents events for DurableAgents:Live:MaxAge).",
        }, time.GetUtcNow()).ToJsonString(), "CUSTOM");
}
