using System.Text.Json;
using System.Text.Json.Serialization;
using DurableAgents.Activities.Contracts.Llm;
using Microsoft.DurableTask;

namespace DurableAgents.Orchestrations;

/// <summary>Input of <see cref="MultiPerspectiveAnalysis"/>.</summary>
/// <param name="Subject">What to analyse (a company, a launch, a market).</param>
/// <param name="Perspectives">The analysts; the default is fundamental, technical, sentiment and risk.</param>
/// <param name="AllowPartial">When true (the default), an analyst failing is reported and the others are aggregated; when false, it fails the workflow.</param>
/// <param name="MaxTokens">The instance's token budget.</param>
public sealed record AnalysisRequest(string Subject, IReadOnlyList<string>? Perspectives = null, bool AllowPartial = true, long MaxTokens = 40_000);

/// <summary>A stance.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<Stance>))]
public enum Stance
{
    /// <summary>For.</summary>
    Positive,

    /// <summary>Neither.</summary>
    Neutral,

    /// <summary>Against.</summary>
    Negative,
}

/// <summary>An analyst's structured view.</summary>
public sealed record AnalystView(string Summary, Stance Stance, int Confidence, IReadOnlyList<string> KeyPoints);

/// <summary>A view with its perspective.</summary>
public sealed record PerspectiveView(string Perspective, AnalystView View);

/// <summary>An analyst that failed.</summary>
public sealed record AnalysisFailure(string Perspective, string ErrorType, string Error);

/// <summary>The aggregator's merged view.</summary>
public sealed record AggregateView(string Summary, Stance Stance, IReadOnlyList<string> Agreements, IReadOnlyList<string> Disagreements);

/// <summary>Output of <see cref="MultiPerspectiveAnalysis"/>.</summary>
public sealed record AnalysisResult(string Subject, IReadOnlyList<PerspectiveView> Views, IReadOnlyList<AnalysisFailure> Failures, AggregateView? Aggregate, WorkflowUsage Usage);

/// <summary>
/// Fan-out/fan-in: N analysts (one structured model call each) run concurrently; an aggregator merges their
/// views. With AllowPartial, an analyst that fails is reported in the output and the rest are aggregated.
/// </summary>
public sealed class MultiPerspectiveAnalysis : TaskOrchestrator<AnalysisRequest, AnalysisResult>
{
    /// <summary>The default analysts.</summary>
    public static IReadOnlyList<string> DefaultPerspectives { get; } = ["fundamental", "technical", "sentiment", "risk"];

    /// <inheritdoc />
    public override async Task<AnalysisResult> RunAsync(TaskOrchestrationContext context, AnalysisRequest input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var perspectives = input.Perspectives is { Count: > 0 } p ? p : DefaultPerspectives;
        var budget = new ModelBudget(MaxTokens: input.MaxTokens);
        context.SetCustomStatus(new { stage = "analysts", count = perspectives.Count });

        async Task<(string Perspective, AnalystView? View, ModelResponse? Response, AnalysisFailure? Failure)> Analyse(string perspective)
        {
            try
            {
                var (view, response) = await context.CallModelAsync<AnalystView>(
                    new ModelRequest
                    {
                        Messages =
                        [
                            ModelMessage.System($"You are the {perspective} analyst. Judge only from the {perspective} perspective. Confidence is 0-100."),
                            ModelMessage.User($"Analyse: {input.Subject}"),
                        ],
                        Budget = budget,
                    },
                    Retries.Default);
                return (perspective, view, response, null);
            }
            catch (TaskFailedException ex)
            {
                return (perspective, null, null, new AnalysisFailure(perspective, ex.FailureDetails.ErrorType, ex.FailureDetails.ErrorMessage));
            }
        }

        var results = await Task.WhenAll(perspectives.Select(Analyse));
        var usage = results.Where(r => r.Response is not null).Aggregate(new WorkflowUsage(), (u, r) => u.Add(r.Response!));
        var views = results.Where(r => r.View is not null).Select(r => new PerspectiveView(r.Perspective, r.View!)).ToList();
        var failures = results.Where(r => r.Failure is not null).Select(r => r.Failure!).ToList();
        if (failures.Count > 0 && !input.AllowPartial)
        {
            throw new InvalidOperationException($"{failures.Count} of {perspectives.Count} analysts failed and partial results are not allowed: {string.Join("; ", failures.Select(f => $"{f.Perspective}: {f.ErrorType}"))}");
        }

        if (views.Count == 0)
        {
            return new AnalysisResult(input.Subject, views, failures, null, usage);
        }

        context.SetCustomStatus(new { stage = "aggregate", views = views.Count, failed = failures.Count });
        var (aggregate, merged) = await context.CallModelAsync<AggregateView>(
            new ModelRequest
            {
                Profile = "strong",
                Messages =
                [
                    ModelMessage.System("You merge analysts' views into one: say where they agree and disagree, and give an overall stance."),
                    ModelMessage.User($"Subject: {input.Subject}\nViews:\n{JsonSerializer.Serialize(views, LlmJson.Options)}" + (failures.Count > 0 ? $"\nMissing perspectives (failed): {string.Join(", ", failures.Select(f => f.Perspective))}" : string.Empty)),
                ],
                Budget = budget,
            },
            Retries.Default);
        return new AnalysisResult(input.Subject, views, failures, aggregate, usage.Add(merged));
    }
}
