using Microsoft.DurableTask;

namespace DurableAgents.Orchestrations;

/// <summary>The product's workflows in the Durable Task SDK's registry: one list for every host.</summary>
public static class Workflows
{
    /// <summary>
    /// Registers every orchestrator of this project (the samples, the eight agent workflows with
    /// their helpers, and the schedule runner). Works with any Durable Task worker.
    /// </summary>
    public static DurableTaskRegistry AddWorkflows(this DurableTaskRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        return registry
            .AddOrchestrator<HelloCities>()
            .AddOrchestrator<DraftAndApprove>()
            .AddOrchestrator<ResearchBrief>()
            .AddOrchestrator<AgentChat>()
            .AddOrchestrator<ContentPipeline>()
            .AddOrchestrator<MultiPerspectiveAnalysis>()
            .AddOrchestrator<DraftReviewLoop>()
            .AddOrchestrator<ApprovalGate>()
            .AddOrchestrator<SeoAudit>()
            .AddOrchestrator<WeeklyContent>()
            .AddOrchestrator<SupervisorAgent>()
            .AddOrchestrator<WorkerTask>()
            .AddOrchestrator<GroupChat>()
            .AddOrchestrator<ScheduleRunner>();
    }
}
