using Microsoft.Extensions.DependencyInjection;

namespace DurableAgents.Engine.Hosting;

/// <summary>Orchestrators and activities known to this host, by name (case-insensitive).</summary>
public sealed class TaskRegistry
{
    private readonly Dictionary<string, Func<ITaskOrchestrator>> _orchestrators = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, Func<IServiceProvider, ITaskActivity>> _activities = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Registered orchestrator names.</summary>
    public IEnumerable<string> OrchestratorNames => _orchestrators.Keys;

    /// <summary>Registered activity names.</summary>
    public IEnumerable<string> ActivityNames => _activities.Keys;

    internal void AddOrchestrator(string name, Func<ITaskOrchestrator> factory)
    {
        if (!_orchestrators.TryAdd(name, factory))
        {
            throw new InvalidOperationException($"An orchestrator named '{name}' is already registered.");
        }
    }

    internal void AddActivity(string name, Func<IServiceProvider, ITaskActivity> factory)
    {
        if (!_activities.TryAdd(name, factory))
        {
            throw new InvalidOperationException($"An activity named '{name}' is already registered.");
        }
    }

    /// <summary>True when an orchestrator with the name is registered.</summary>
    public bool HasOrchestrator(string name) => _orchestrators.ContainsKey(name);

    /// <summary>Creates an orchestrator.</summary>
    /// <exception cref="TaskNotRegisteredException">Unknown name.</exception>
    public ITaskOrchestrator CreateOrchestrator(string name) =>
        _orchestrators.TryGetValue(name, out var f) ? f() : throw new TaskNotRegisteredException("orchestrator", name, OrchestratorNames);

    /// <summary>Creates an activity in a DI scope.</summary>
    /// <exception cref="TaskNotRegisteredException">Unknown name.</exception>
    public ITaskActivity CreateActivity(string name, IServiceProvider scope) =>
        _activities.TryGetValue(name, out var f) ? f(scope) : throw new TaskNotRegisteredException("activity", name, ActivityNames);

    internal static ITaskActivity Activate(Type type, IServiceProvider services) =>
        (ITaskActivity)ActivatorUtilities.CreateInstance(services, type);
}
