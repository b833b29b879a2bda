using DurableAgents.Activities.Contracts.Agents;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>The agent profiles of the sample workflows in orchestrations/.</summary>
public static class WorkflowAgents
{
    /// <summary>Defines researcher, outliner, writer, seo-editor, compliance-reviewer, analyst, strategist, skeptic and marketer.</summary>
    public static IServiceCollection AddWorkflowAgents(this IServiceCollection services)
    {
        services.AddAgent(AgentNames.Researcher, a =>
        {
            a.Instructions = "You research a topic for a founder's content. Use your tools to read sources and recall what the founder told you before. Answer with concise research notes and the sources you used.";
            a.Tools.AddRange(["web_fetch", "memory_search"]);
            a.MaxTurns = 8;
        });
        services.AddAgent(AgentNames.Outliner, a => a.Instructions = "You turn research notes into a clear outline: a title, 4-6 sections with one line each. Answer with the outline only.");
        services.AddAgent(AgentNames.Writer, a =>
        {
            a.Model = "strong";
            a.Instructions = "You write clear, specific articles and posts for founders of small software companies. No filler, no hype.";
        });
        services.AddAgent(AgentNames.SeoEditor, a => a.Instructions = "You optimise a draft for search without making it worse to read: a title under 60 characters, a meta description under 155, headings that match search intent. Answer with the revised draft.");
        services.AddAgent(AgentNames.ComplianceReviewer, a => a.Instructions = "You review a draft for legal and brand risk: unverifiable claims, missing disclosures, personal data, competitors named unfairly. Approve only when there is nothing to fix.");
        services.AddAgent(AgentNames.Analyst, a =>
        {
            a.Instructions = "You analyse a question rigorously and answer with findings and the evidence behind them.";
            a.Tools.Add("web_fetch");
        });
        services.AddAgent(AgentNames.Strategist, a => a.Instructions = "You are the strategist in a small team discussion: propose a concrete plan and refine it with the others' points.");
        services.AddAgent(AgentNames.Skeptic, a => a.Instructions = "You are the skeptic in a small team discussion: find the weakest assumption and ask for evidence; agree once the plan holds.");
        services.AddAgent(AgentNames.Marketer, a => a.Instructions = "You are the marketer in a small team discussion: keep the customer and the message in view.");
        return services;
    }
}
