using DurableAgents.Activities.Contracts.Llm;
using Microsoft.DurableTask;

namespace DurableAgents.Activities.Contracts.Agents;

/// <summary>
/// The durable agent loop, for orchestrations: LLM turn → tool calls → LLM turn …, where every LLM turn is
/// one <see cref="ActivityNames.AgentTurn"/> activity and every tool call one <see cref="ActivityNames.CallTool"/>
/// activity. A crash at turn 7 resumes at turn 7: turns and tool calls that completed are read from history,
/// never made again.
/// </summary>
public static class AgentOrchestrationExtensions
{
    /// <summary>Retries for turns and tool calls: transient failures only (typed failures are not retried).</summary>
    public static TaskOptions DefaultRetry { get; } = RetryPolicies.Options(3, TimeSpan.FromSeconds(2), backoffCoefficient: 2);

    /// <summary>
    /// Runs <paramref name="run"/>'s agent until it answers without asking for a tool, reaches its maximum
    /// turns, or the next call would exceed the budget. Tool calls the model asks for in one turn run in
    /// parallel. A "request human input" call waits (durably) for the <see cref="AgentEvents.HumanInput"/> event.
    /// A person can steer the run between turns (<see cref="AgentEvents.Steer"/>: a user message added before the
    /// next model call, also after what would have been the last turn) and interrupt it
    /// (<see cref="AgentEvents.Interrupt"/>: the model call in flight is cut off, and the run stops with what it
    /// has, or goes on with the interrupt's message). Both are durable events: one that arrives while a host
    /// is down is taken when the run continues.
    /// </summary>
    public static async Task<AgentRunResult> RunAgentAsync(this TaskOrchestrationContext context, AgentRun run, TaskOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(run);
        options ??= DefaultRetry;
#pragma warning disable CA2007 // orchestration code: continuations must stay on the orchestration's scheduler
        var head = run.Conversation;
        var append = new List<ModelMessage> { ModelMessage.User(run.Input) };
        var calls = new List<AgentToolCallSummary>();
        var session = run.SessionId ?? context.InstanceId;
        long input = 0, output = 0;
        var cost = 0m;

        // Waiters for a person's messages: completed (in history order) when they arrive, read at turn boundaries.
        var steer = context.WaitForExternalEvent<SteerMessage>(AgentEvents.Steer);
        var interrupt = context.WaitForExternalEvent<InterruptRequest>(AgentEvents.Interrupt);
        for (var turn = 1; ; turn++)
        {
            // The turn boundary: what the person said meanwhile goes in before the model is asked.
            while (steer.IsCompleted)
            {
                append.Add(ModelMessage.User(steer.Result.Message));
                steer = context.WaitForExternalEvent<SteerMessage>(AgentEvents.Steer);
            }

            AgentTurnResult result;
            try
            {
                result = await context.CallActivityAsync<AgentTurnResult>(
                    ActivityNames.AgentTurn,
                    new AgentTurnRequest(run.Agent, head, append, turn, run.Budget, run.ResponseSchema) { MaxTurns = run.MaxTurns },
                    options);
            }
            catch (TaskFailedException ex) when (ex.IsBudgetExceeded())
            {
                return Result(string.Empty, null, AgentStopReasons.Budget, turn - 1);
            }

            if (result.Response.RetryAfter is { } wait)
            {
                // Every provider at its rate limit: nothing was said. Wait durably (or until interrupted), then the
                // same turn again (the conversation is content-addressed, so appending the same messages again is a no-op).
                var until = context.CurrentUtcDateTime + wait;
                context.SetCustomStatus(new { agent = run.Agent, turn, waitingForModelCapacity = new { provider = result.Response.Provider, until } });
                using (var stopWaiting = new CancellationTokenSource())
                {
                    var timer = context.CreateTimer(until, stopWaiting.Token);
                    if (await Task.WhenAny(timer, interrupt) != timer)
                    {
                        // Synchronously: CancelAsync would resume this code on the thread pool, outside the orchestration's
                        // scheduler, and the episode would end with the run neither waiting nor finished.
                        stopWaiting.Cancel();

                    }
                }

                if (interrupt.IsCompleted)
                {
                    var asked = TakeInterrupt();
                    if (asked.Message is null)
                    {
                        return Result(string.Empty, null, AgentStopReasons.Interrupted, turn - 1);
                    }

                    append.Add(ModelMessage.User(asked.Message));
                }

                turn--;
                continue;
            }

            head = result.Conversation;
            var response = result.Response;
            input += response.Usage.InputTokens;
            output += response.Usage.OutputTokens;
            cost += response.Cost;
            append = [];

            if (interrupt.IsCompleted)
            {
                // Interrupted during the turn (its model call was cut off, or had just finished): no tool runs.
                var asked = TakeInterrupt();
                foreach (var call in response.ToolCalls)
                {
                    calls.Add(new AgentToolCallSummary(turn, call.Name, call.ArgumentsJson, AgentStopReasons.Interrupted));
                    append.Add(ModelMessage.ToolResult(call.Id, "Not run: the user interrupted the agent."));
                }

                if (asked.Message is null)
                {
                    await RecordAsync(turn);
                    return Result(response.Text ?? string.Empty, null, AgentStopReasons.Interrupted, turn);
                }

                append.Add(ModelMessage.User(asked.Message));
                if (turn >= result.MaxTurns)
                {
                    await RecordAsync(turn);
                    return Result(response.Text ?? string.Empty, null, AgentStopReasons.MaxTurns, turn);
                }

                continue;
            }

            if (response.ToolCalls.Count == 0)
            {
                // A steer that arrived during the last turn gets its answer: one more turn.
                if (steer.IsCompleted && turn < result.MaxTurns)
                {
                    continue;
                }

                return Result(response.Text ?? string.Empty, response.Json, AgentStopReasons.Answered, turn);
            }

            if (turn >= result.MaxTurns)
            {
                return Result(response.Text ?? string.Empty, null, AgentStopReasons.MaxTurns, turn);
            }

            var outcomes = await Task.WhenAll(response.ToolCalls.Select(call =>
                context.CallActivityAsync<ToolOutcome>(ActivityNames.CallTool, new ToolInvocation(run.Agent, call, session, run.MemoryScope), options)));
            for (var i = 0; i < outcomes.Length; i++)
            {
                var outcome = outcomes[i];
                var content = outcome.Content;
                if (outcome.Status == ToolStatuses.AwaitingHuman)
                {
                    if (interrupt.IsCompleted)
                    {
                        // Interrupted already: the question is not asked; the interrupt is handled after the tools.
                        calls.Add(new AgentToolCallSummary(turn, outcome.Name, response.ToolCalls[i].ArgumentsJson, AgentStopReasons.Interrupted));
                        append.Add(ModelMessage.ToolResult(outcome.CallId, "Not answered: the user interrupted the agent."));
                        continue;
                    }

                    context.SetCustomStatus(new { agent = run.Agent, turn, awaiting = AgentEvents.HumanInput, question = outcome.Content });
                    using (var stopWaiting = new CancellationTokenSource())
                    {
                        // The same durable timer as WaitForExternalEvent(name, timeout); an interrupt also ends the wait.
                        var answer = context.WaitForExternalEvent<string>(AgentEvents.HumanInput, run.HumanInputTimeout, stopWaiting.Token);
                        if (await Task.WhenAny(answer, interrupt) != answer)
                        {
                            stopWaiting.Cancel(); // synchronously: see the capacity wait above
                            context.SetCustomStatus(new { agent = run.Agent, turn, awaiting = (string?)null });
                            calls.Add(new AgentToolCallSummary(turn, outcome.Name, response.ToolCalls[i].ArgumentsJson, AgentStopReasons.Interrupted));
                            append.Add(ModelMessage.ToolResult(outcome.CallId, "Not answered: the user interrupted the agent."));
                            continue;
                        }

                        try
                        {
                            content = await answer;
                        }
                        catch (TaskCanceledException)
                        {
                            calls.Add(new AgentToolCallSummary(turn, outcome.Name, response.ToolCalls[i].ArgumentsJson, AgentStopReasons.HumanInputTimeout));
                            return Result(string.Empty, null, AgentStopReasons.HumanInputTimeout, turn);
                        }
                    }

                    context.SetCustomStatus(new { agent = run.Agent, turn, awaiting = (string?)null });
                }

                calls.Add(new AgentToolCallSummary(turn, outcome.Name, response.ToolCalls[i].ArgumentsJson, outcome.Status));
                append.Add(ModelMessage.ToolResult(outcome.CallId, content));
            }

            if (interrupt.IsCompleted)
            {
                // Interrupted while the tools ran: their results are kept in the conversation, the run stops (or goes on with the message).
                var asked = TakeInterrupt();
                if (asked.Message is null)
                {
                    await RecordAsync(turn);
                    return Result(response.Text ?? string.Empty, null, AgentStopReasons.Interrupted, turn);
                }

                append.Add(ModelMessage.User(asked.Message));
            }
        }

        // The interrupt that arrived, and a new waiter for the next one (waiters add nothing to the history).
        InterruptRequest TakeInterrupt()
        {
            var asked = interrupt.Result;
            interrupt = context.WaitForExternalEvent<InterruptRequest>(AgentEvents.Interrupt);
            return asked;
        }

        // A stopped run keeps its conversation whole (tool results after the call that asked for them), so it can be continued.
        async Task RecordAsync(int turn)
        {
            if (append.Count > 0)
            {
                var recorded = await context.CallActivityAsync<AgentTurnResult>(
                    ActivityNames.AgentTurn,
                    new AgentTurnRequest(run.Agent, head, append, turn, run.Budget) { MaxTurns = run.MaxTurns, RecordOnly = true },
                    options);
                head = recorded.Conversation;
            }
        }

        AgentRunResult Result(string text, System.Text.Json.JsonElement? json, string reason, int turns) =>
            new(text, json, reason, turns, calls, new ModelUsage(input, output), cost, head);
#pragma warning restore CA2007
    }
}
