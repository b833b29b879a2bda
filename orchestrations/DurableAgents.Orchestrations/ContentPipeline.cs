using System.Text.Json;
using DurableAgents.Activities.Contracts.Agents;
using DurableAgents.Activities.Contracts.Llm;
using Microsoft.DurableTask;

namespace DurableAgents.Orchestrations;

/// <summary>Input of <see cref="ContentPipeline"/>.</summary>
/// <param name="Topic">What to write about.</param>
/// <param name="Audience">Who it is for.</param>
/// <param name="MaxTokens">The instance's token budget across all stages.</param>
/// <param name="MemoryScope">Whose long-term memory the researcher may search (e.g. "user:founder").</param>
public sealed record ContentRequest(string Topic, string Audience = "founders of small software companies", long MaxTokens = 60_000, string? MemoryScope = null);

/// <summary>The compliance reviewer's structured verdict.</summary>
/// <param name="Approved">True when there is nothing to fix.</param>
/// <param name="Issues">What to fix.</param>
public sealed record ComplianceVerdict(bool Approved, IReadOnlyList<string> Issues);

/// <summary>Output of <see cref="ContentPipeline"/>.</summary>
/// <param name="Topic">The topic.</param>
/// <param name="Stages">Each completed stage's output, in order (research, outline, draft, seo).</param>
/// <param name="Article">The final (SEO-optimised) article, empty when the run stopped early.</param>
/// <param name="Compliance">The compliance verdict, when the run got that far.</param>
/// <param name="Outcome">completed, or "budget exhausted at {stage}".</param>
/// <param name="Usage">Tokens and cost.</param>
public sealed record ContentResult(string Topic, IReadOnlyList<StageOutput> Stages, string Article, ComplianceVerdict? Compliance, string Outcome, WorkflowUsage Usage);

/// <summary>A stage's output.</summary>
public sealed record StageOutput(string Stage, string Agent, string Text, int Turns);

/// <summary>
/// Sequential pipeline: research → outline → draft → SEO optimisation → compliance review. Each stage is a
/// specialised agent (its own model profile, prompt and tool allow-list) run by the durable agent loop, under
/// one budget; the custom status names the current stage. A stage the budget cannot pay for stops the run with
/// the stages done so far.
/// </summary>
public sealed class ContentPipeline : TaskOrchestrator<ContentRequest, ContentResult>
{
    /// <inheritdoc />
    public override async Task<ContentResult> RunAsync(TaskOrchestrationContext context, ContentRequest input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var budget = new ModelBudget(MaxTokens: input.MaxTokens);
        var usage = new WorkflowUsage();
        var stages = new List<StageOutput>();
        (string Name, string Agent, Func<string> Prompt)[] steps =
        [
            ("research", AgentNames.Researcher, () => $"Research '{input.Topic}' for {input.Audience}: the key facts, numbers and open questions."),
            ("outline", AgentNames.Outliner, () => $"Outline an article on '{input.Topic}' for {input.Audience} from these notes:\n{stages[^1].Text}"),
            ("draft", AgentNames.Writer, () => $"Write the article on '{input.Topic}' for {input.Audience} from this outline:\n{stages[^1].Text}"),
            ("seo", AgentNames.SeoEditor, () => $"Optimise this draft for search on '{input.Topic}':\n{stages[^1].Text}"),
        ];
        for (var i = 0; i < steps.Length; i++)
        {
            var (name, agent, prompt) = steps[i];
            context.SetCustomStatus(new { stage = name, step = i + 1, of = steps.Length + 1 });
            var run = await context.RunAgentAsync(new AgentRun { Agent = agent, Input = prompt(), Budget = budget, MemoryScope = agent == AgentNames.Researcher ? input.MemoryScope : null }, Retries.Default);
            usage = usage.Add(run);
            if (run.StopReason == AgentStopReasons.Budget)
            {
                return new ContentResult(input.Topic, stages, string.Empty, null, $"budget exhausted at {name}", usage);
            }

            stages.Add(new StageOutput(name, agent, run.Text, run.Turns));
        }

        context.SetCustomStatus(new { stage = "compliance", step = steps.Length + 1, of = steps.Length + 1 });
        var review = await context.RunAgentAsync(
            new AgentRun
            {
                Agent = AgentNames.ComplianceReviewer,
                Input = $"Review this article for compliance:\n{stages[^1].Text}",
                Budget = budget,
                ResponseSchema = ModelOrchestrationExtensions.SchemaOf<ComplianceVerdict>(),
            },
            Retries.Default);
        usage = usage.Add(review);
        if (review.StopReason == AgentStopReasons.Budget)
        {
            return new ContentResult(input.Topic, stages, stages[^1].Text, null, "budget exhausted at compliance", usage);
        }

        var verdict = review.Json is { } json ? json.Deserialize<ComplianceVerdict>(LlmJson.Options) : null;
        context.SetCustomStatus(new { stage = "done", step = steps.Length + 1, of = steps.Length + 1 });
        return new ContentResult(input.Topic, stages, stages[^1].Text, verdict, "completed", usage);
    }
}
