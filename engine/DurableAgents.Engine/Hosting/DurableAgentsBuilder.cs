using System.Diagnostics.CodeAnalysis;
using DurableAgents.Engine.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace DurableAgents.Engine;

/// <summary>Registers orchestrators, activities and a store. Returned by <c>services.AddDurableAgents(...)</c>.</summary>
public sealed class DurableAgentsBuilder
{
    internal DurableAgentsBuilder(IServiceCollection services, TaskRegistry registry)
    {
        Services = services;
        Registry = registry;
    }

    /// <summary>The service collection, for store extensions.</summary>
    public IServiceCollection Services { get; }

    internal TaskRegistry Registry { get; }

    /// <summary>Registers an orchestrator class under its type name (or <paramref name="name"/>).</summary>
    public DurableAgentsBuilder AddOrchestrator<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] T>(string? name = null)
        where T : class, ITaskOrchestrator, new()
    {
        // Orchestrators get no dependency injection: replayed code must not reach services.
        Registry.AddOrchestrator(name ?? typeof(T).Name, static () => new T());
        return this;
    }

    /// <summary>Registers an orchestrator written as a function.</summary>
    public DurableAgentsBuilder AddOrchestratorFunc<TInput, TOutput>(string name, Func<TaskOrchestrationContext, TInput, Task<TOutput>> implementation)
    {
        ArgumentNullException.ThrowIfNull(implementation);
        Registry.AddOrchestrator(name, () => new FuncOrchestrator<TInput, TOutput>(implementation));
        return this;
    }

    /// <summary>Registers an activity class under its type name (or <paramref name="name"/>); it is created per invocation with constructor injection in a fresh scope.</summary>
    public DurableAgentsBuilder AddActivity<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] T>(string? name = null)
        where T : class, ITaskActivity
    {
        Registry.AddActivity(name ?? typeof(T).Name, static sp => TaskRegistry.Activate(typeof(T), sp));
        return this;
    }

    /// <summary>Registers an activity written as a function.</summary>
    public DurableAgentsBuilder AddActivityFunc<TInput, TOutput>(string name, Func<TaskActivityContext, TInput, CancellationToken, Task<TOutput>> implementation)
    {
        ArgumentNullException.ThrowIfNull(implementation);
        Registry.AddActivity(name, _ => new FuncActivity<TInput, TOutput>(implementation));
        return this;
    }

    /// <summary>Registers an activity written as a synchronous function.</summary>
    public DurableAgentsBuilder AddActivityFunc<TInput, TOutput>(string name, Func<TaskActivityContext, TInput, TOutput> implementation)
    {
        ArgumentNullException.ThrowIfNull(implementation);
        return AddActivityFunc<TInput, TOutput>(name, (ctx, input, _) => Task.FromResult(implementation(ctx, input)));
    }

    private sealed class FuncOrchestrator<TInput, TOutput>(Func<TaskOrchestrationContext, TInput, Task<TOutput>> f) : TaskOrchestrator<TInput, TOutput>
    {
        public override Task<TOutput> RunAsync(TaskOrchestrationContext context, TInput input) => f(context, input);
    }

    private sealed class FuncActivity<TInput, TOutput>(Func<TaskActivityContext, TInput, CancellationToken, Task<TOutput>> f) : TaskActivity<TInput, TOutput>
    {
        public override Task<TOutput> RunAsync(TaskActivityContext context, TInput input, CancellationToken cancellationToken) => f(context, input, cancellationToken);
    }
}
