using System.Collections.Concurrent;
using System.ComponentModel;
using DurableAgents.Activities.Agents;

namespace DurableAgents.Activities.Tests.Agents;

public sealed record EchoArgs([property: Description("What to echo.")] string Text, [property: Description("How many times.")] int Times);

/// <summary>Echoes its text; counts executions.</summary>
public sealed class EchoTool : AgentTool<EchoArgs>
{
    public ConcurrentQueue<EchoArgs> Calls { get; } = new();

    public override string Name => "echo";

    public override string Description => "Echoes a text a number of times.";

    protected override Task<object?> ExecuteAsync(EchoArgs arguments, ToolContext context, CancellationToken cancellationToken)
    {
        Calls.Enqueue(arguments);
        return Task.FromResult<object?>(string.Concat(Enumerable.Repeat(arguments.Text, arguments.Times)));
    }
}

public sealed record PaymentArgs(string To, decimal Amount);

/// <summary>A side-effecting tool: records each execution's idempotency key.</summary>
public sealed class PaymentTool : AgentTool<PaymentArgs>
{
    public ConcurrentQueue<string> Keys { get; } = new();

    public override string Name => "send_payment";

    public override string Description => "Sends money.";

    public override bool HasSideEffects => true;

    protected override Task<object?> ExecuteAsync(PaymentArgs arguments, ToolContext context, CancellationToken cancellationToken)
    {
        Keys.Enqueue(context.IdempotencyKey);
        return Task.FromResult<object?>(new { sent = arguments.Amount, to = arguments.To });
    }
}

public sealed record NoArgs;

/// <summary>Never finishes in time.</summary>
public sealed class SlowTool : AgentTool<NoArgs>
{
    private int _started;

    public int Started => _started;

    public override string Name => "slow";

    public override string Description => "Takes forever.";

    public override TimeSpan? Timeout => TimeSpan.FromMilliseconds(200);

    protected override async Task<object?> ExecuteAsync(NoArgs arguments, ToolContext context, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _started);
        await Task.Delay(TimeSpan.FromSeconds(30), cancellationToken);
        return "late";
    }
}

/// <summary>Returns far more than the model should get.</summary>
public sealed class BigTool : AgentTool<NoArgs>
{
    public override string Name => "big";

    public override string Description => "Returns a lot.";

    protected override Task<object?> ExecuteAsync(NoArgs arguments, ToolContext context, CancellationToken cancellationToken) =>
        Task.FromResult<object?>(new string('x', 100_000));
}
