using System.Collections.Concurrent;

namespace DurableAgents.Engine.Runtime;

/// <summary>
/// The single-threaded scheduler an orchestrator runs on. Continuations of awaited context tasks
/// are queued here and drained by the episode that completed them, so orchestrator code is never
/// concurrent with itself and always runs in the same order on replay.
/// </summary>
internal sealed class OrchestrationSynchronizationContext : SynchronizationContext
{
    private readonly ConcurrentQueue<(SendOrPostCallback Callback, object? State)> _queue = new();

    /// <summary>True while an episode is draining this context.</summary>
    public bool IsPumping { get; private set; }

    /// <summary>
    /// Continuations posted while no episode was running: something other than a context task
    /// (Task.Delay, I/O) completed an await. The session is no longer deterministic.
    /// </summary>
    public int ForeignPosts { get; private set; }

    public override void Post(SendOrPostCallback d, object? state)
    {
        if (!IsPumping)
        {
            ForeignPosts++;
        }

        _queue.Enqueue((d, state));
    }

    public override void Send(SendOrPostCallback d, object? state) =>
        throw new NotSupportedException("Synchronous Send is not supported on the orchestration scheduler.");

    public override SynchronizationContext CreateCopy() => this;

    /// <summary>Runs <paramref name="action"/> and then every continuation it releases, on this thread.</summary>
    public void Run(Action action)
    {
        var previous = Current;
        SetSynchronizationContext(this);
        IsPumping = true;
        try
        {
            action();
            while (_queue.TryDequeue(out var item))
            {
                item.Callback(item.State);
            }
        }
        finally
        {
            IsPumping = false;
            SetSynchronizationContext(previous);
        }
    }
}
