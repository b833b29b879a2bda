using System.Text;
using DurableAgents.Activities.Contracts.Agents;
using DurableAgents.Activities.Contracts.Llm;
using Microsoft.DurableTask;

namespace DurableAgents.Orchestrations;

/// <summary>Input of <see cref="SupervisorAgent"/>.</summary>
/// <param name="Goal">What the team should achieve.</param>
/// <param name="Workers">The worker agents the manager may assign (agent profile names); the default is researcher, writer, analyst.</param>
/// <param name="MaxSteps">Plan → dispatch rounds at most.</param>
/// <param name="MaxTasksPerStep">Tasks dispatched per step at most.</param>
/// <param name="MaxTokens">The token budget of the whole team (the manager's calls and, split between them, the workers').</param>
public sealed record SupervisorRequest(string Goal, IReadOnlyList<string>? Workers = null, int MaxSteps = 5, int MaxTasksPerStep = 3, long MaxTokens = 80_000);

/// <summary>A task the manager assigns.</summary>
public sealed record PlannedTask(string Worker, string Instruction);

/// <summary>The manager's structured decision each step.</summary>
/// <param name="GoalMet">True when the goal is met; FinalAnswer then holds the result.</param>
/// <param name="Plan">The plan as it stands (short steps).</param>
/// <param name="Tasks">What to dispatch now.</param>
/// <param name="FinalAnswer">The answer, when the goal is met.</param>
public sealed record SupervisorDecision(bool GoalMet, IReadOnlyList<string> Plan, IReadOnlyList<PlannedTask> Tasks, string? FinalAnswer);

/// <summary>One line of the task ledger.</summary>
public sealed record LedgerEntry(int Step, string TaskId, string Worker, string Instruction, string Status, string Result);

/// <summary>Output of <see cref="SupervisorAgent"/>.</summary>
/// <param name="Outcome">goal-met, budget, or max-steps.</param>
/// <param name="FinalAnswer">The manager's answer when the goal was met.</param>
/// <param name="Plan">The latest plan.</param>
/// <param name="Ledger">Every assignment with its status and result.</param>
/// <param name="Steps">Steps taken.</param>
/// <param name="Usage">Tokens and cost (manager and workers).</param>
public sealed record SupervisorResult(string Outcome, string? FinalAnswer, IReadOnlyList<string> Plan, IReadOnlyList<LedgerEntry> Ledger, int Steps, WorkflowUsage Usage);

/// <summary>Input of <see cref="WorkerTask"/>.</summary>
public sealed record WorkerTaskRequest(string Worker, string Instruction, long MaxTokens);

/// <summary>One worker agent's task, as a sub-orchestration of <see cref="SupervisorAgent"/>: a durable agent run.</summary>
public sealed class WorkerTask : TaskOrchestrator<WorkerTaskRequest, AgentRunResult>
{
    /// <inheritdoc />
    public override Task<AgentRunResult> RunAsync(TaskOrchestrationContext context, WorkerTaskRequest input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return context.RunAgentAsync(new AgentRun { Agent = input.Worker, Input = input.Instruction, Budget = new ModelBudget(MaxTokens: input.MaxTokens) }, Retries.Default);
    }
}

/// <summary>
/// Supervisor/worker hierarchy: a manager agent keeps a task ledger (plan, assignments, progress), dispatches
/// tasks to specialised worker agents as sub-orchestrations (concurrently), re-plans when tasks fail, and stops
/// when the goal is met, the budget is exhausted, or after MaxSteps.
/// </summary>
public sealed class SupervisorAgent : TaskOrchestrator<SupervisorRequest, SupervisorResult>
{
    /// <summary>The default workers.</summary>
    public static IReadOnlyList<string> DefaultWorkers { get; } = [AgentNames.Researcher, AgentNames.Writer, AgentNames.Analyst];

    /// <inheritdoc />
    public override async Task<SupervisorResult> RunAsync(TaskOrchestrationContext context, SupervisorRequest input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var workers = input.Workers is { Count: > 0 } w ? w : DefaultWorkers;
        var ledger = new List<LedgerEntry>();
        IReadOnlyList<string> plan = [];
        var usage = new WorkflowUsage();
        var taskNumber = 0;
        for (var step = 1; step <= input.MaxSteps; step++)
        {
            context.SetCustomStatus(new { step, stage = "planning", done = ledger.Count(e => e.Status == "done"), failed = ledger.Count(e => e.Status != "done") });
            SupervisorDecision decision;
            try
            {
                var (d, response) = await context.CallModelAsync<SupervisorDecision>(
                    new ModelRequest
                    {
                        Profile = "strong",
                        Messages = [ModelMessage.System(ManagerPrompt(workers, input.MaxTasksPerStep)), ModelMessage.User(Briefing(input.Goal, plan, ledger))],
                        Budget = new ModelBudget(MaxTokens: input.MaxTokens),
                        ResponseSchema = DecisionSchema(workers),
                        ResponseSchemaName = nameof(SupervisorDecision),
                    },
                    Retries.Default);
                decision = d;
                usage = usage.Add(response);
            }
            catch (TaskFailedException ex) when (ex.IsBudgetExceeded())
            {
                return new SupervisorResult("budget", null, plan, ledger, step - 1, usage);
            }

            plan = decision.Plan;

            // The goal counts as met when the manager says so with nothing left to assign, or after some work is done.
            if (decision.GoalMet && (decision.Tasks.Count == 0 || ledger.Any(e => e.Status == "done")))
            {
                context.SetCustomStatus(new { step, stage = "goal met" });
                return new SupervisorResult("goal-met", decision.FinalAnswer, plan, ledger, step, usage);
            }

            var tasks = decision.Tasks.Take(Math.Max(1, input.MaxTasksPerStep)).ToList();
            var share = usage.Remaining(input.MaxTokens) / Math.Max(1, tasks.Count + 1); // keep a share for the manager
            context.SetCustomStatus(new { step, stage = "dispatching", tasks = tasks.Count });
            async Task<(LedgerEntry Entry, AgentRunResult? Run)> Dispatch(PlannedTask task, string id)
            {
                if (!workers.Contains(task.Worker, StringComparer.Ordinal))
                {
                    return (new LedgerEntry(step, id, task.Worker, task.Instruction, "rejected", $"no worker '{task.Worker}'; workers: {string.Join(", ", workers)}"), null);
                }

                try
                {
                    var run = await context.CallSubOrchestratorAsync<AgentRunResult>(
                        nameof(WorkerTask),
                        new WorkerTaskRequest(task.Worker, task.Instruction, share),
                        new SubOrchestrationOptions { InstanceId = $"{context.InstanceId}-{id}" });
                    var status = run.StopReason == AgentStopReasons.Answered ? "done" : run.StopReason;
                    return (new LedgerEntry(step, id, task.Worker, task.Instruction, status, run.Text), run);
                }
                catch (TaskFailedException ex)
                {
                    return (new LedgerEntry(step, id, task.Worker, task.Instruction, "failed", ex.FailureDetails.ErrorMessage), null);
                }
            }

            var results = await Task.WhenAll(tasks.Select(t => Dispatch(t, $"t{++taskNumber}")));
            foreach (var (entry, run) in results)
            {
                ledger.Add(entry);
                if (run is not null)
                {
                    usage = usage.Add(run);
                }
            }
        }

        return new SupervisorResult("max-steps", null, plan, ledger, input.MaxSteps, usage);
    }

    /// <summary>SupervisorDecision's schema, with the worker names as the only allowed values of a task's worker.</summary>
    private static System.Text.Json.JsonElement DecisionSchema(IReadOnlyList<string> workers)
    {
        var schema = System.Text.Json.Nodes.JsonNode.Parse(ModelOrchestrationExtensions.SchemaOf<SupervisorDecision>().GetRawText())!;
        var worker = schema["properties"]!["tasks"]!["items"]!["properties"]!["worker"]!.AsObject();
        worker["enum"] = new System.Text.Json.Nodes.JsonArray(workers.Select(w => (System.Text.Json.Nodes.JsonNode)w).ToArray());
        return System.Text.Json.JsonSerializer.SerializeToElement(schema);
    }

    private static string ManagerPrompt(IReadOnlyList<string> workers, int maxTasks) =>
        $"""
        You are the manager of a small team of agents: {string.Join(", ", workers)}.
        Keep a short plan. Each step, either declare the goal met (with the final answer, built from the results in the ledger),
        or assign up to {maxTasks} tasks to workers by name. When a task failed, re-plan: retry it differently or route around it.
        """;

    private static string Briefing(string goal, IReadOnlyList<string> plan, List<LedgerEntry> ledger)
    {
        var text = new StringBuilder().Append("Goal: ").Append(goal).Append('\n');
        if (plan.Count > 0)
        {
            text.Append("Current plan:\n").AppendJoin('\n', plan.Select(p => "- " + p)).Append('\n');
        }

        text.Append(ledger.Count == 0 ? "Ledger: nothing assigned yet.\n" : "Ledger:\n");
        foreach (var e in ledger)
        {
            var result = e.Result.Length <= 600 ? e.Result : e.Result[..600] + "…";
            text.Append(System.Globalization.CultureInfo.InvariantCulture, $"- [{e.TaskId}, step {e.Step}] {e.Worker}: {e.Instruction} → {e.Status}: {result}\n");
        }

        return text.ToString();
    }
}
