namespace DurableAgents.Engine.Runtime;

/// <summary>
/// Bounded LRU of suspended orchestration sessions. A session is taken out while an episode uses
/// it and put back after a successful commit, so no two episodes ever share one; a failed commit
/// simply never puts it back (the next episode replays from the store).
/// </summary>
internal sealed class SessionCache
{
    private readonly int _capacity;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, LinkedListNode<OrchestrationSession>> _map = new(StringComparer.Ordinal);
    private readonly LinkedList<OrchestrationSession> _lru = new();

    public SessionCache(int capacity) => _capacity = capacity;

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _map.Count;
            }
        }
    }

    /// <summary>Removes and returns the session if it matches the stored execution and history length exactly.</summary>
    public OrchestrationSession? Take(string instanceId, string executionId, int historyLength)
    {
        lock (_gate)
        {
            if (!_map.Remove(instanceId, out var node))
            {
                return null;
            }

            _lru.Remove(node);
            var s = node.Value;
            return s.ExecutionId == executionId && s.HistoryLength == historyLength && s.IsReusable ? s : null;
        }
    }

    public void Put(OrchestrationSession session)
    {
        if (_capacity == 0 || !session.IsReusable)
        {
            return;
        }

        lock (_gate)
        {
            if (_map.Remove(session.InstanceId, out var existing))
            {
                _lru.Remove(existing);
            }

            _map[session.InstanceId] = _lru.AddFirst(session);
            while (_map.Count > _capacity)
            {
                var last = _lru.Last!;
                _lru.RemoveLast();
                _map.Remove(last.Value.InstanceId);
            }
        }
    }
}
