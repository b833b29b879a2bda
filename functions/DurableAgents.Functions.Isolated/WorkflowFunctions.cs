// The product workflows as Durable Functions orchestrators: one thin wrapper per class.
// WorkflowWrapperTests fails when a workflow registered by AddWorkflows() has none here.
using Microsoft.Azure.Functions.Worker;
using DurableAgents.Activities.Contracts;
using DurableAgents.Activities.Contracts.Agents;
using DurableAgents.Activities.Contracts.Llm;
using DurableAgents.Orchestrations;
using Microsoft.DurableTask;

namespace DurableAgents.Functions.Isolated;

/// <summary>The orchestrator functions.</summary>
public static class WorkflowFunctions
{
    /// <summary>Runs <see cref="DurableAgents.Orchestrations.ScheduleRunner"/>.</summary>
    [Function(nameof(DurableAgents.Orchestrations.ScheduleRunner))]
    public static Task<string> ScheduleRunner([OrchestrationTrigger] TaskOrchestrationContext context) =>
        TaskWrappers.RunOrchestratorAsync<DurableAgents.Orchestrations.ScheduleRunner, ScheduleState, string>(context);

    /// <summary>Runs <see cref="DurableAgents.Orchestrations.GroupChat"/>.</summary>
    [Function(nameof(DurableAgents.Orchestrations.GroupChat))]
    public static Task<GroupChatResult> GroupChat([OrchestrationTrigger] TaskOrchestrationContext context) =>
        TaskWrappers.RunOrchestratorAsync<DurableAgents.Orchestrations.GroupChat, GroupChatRequest, GroupChatResult>(context);

    /// <summary>Runs <see cref="DurableAgents.Orchestrations.HelloCities"/>.</summary>
    [Function(nameof(DurableAgents.Orchestrations.HelloCities))]
    public static Task<List<string>> HelloCities([OrchestrationTrigger] TaskOrchestrationContext context) =>
        TaskWrappers.RunOrchestratorAsync<DurableAgents.Orchestrations.HelloCities, string[]?, List<string>>(context);

    /// <summary>Runs <see cref="DurableAgents.Orchestrations.MultiPerspectiveAnalysis"/>.</summary>
    [Function(nameof(DurableAgents.Orchestrations.MultiPerspectiveAnalysis))]
    public static Task<AnalysisResult> MultiPerspectiveAnalysis([OrchestrationTrigger] TaskOrchestrationContext context) =>
        TaskWrappers.RunOrchestratorAsync<DurableAgents.Orchestrations.MultiPerspectiveAnalysis, AnalysisRequest, AnalysisResult>(context);

    /// <summary>Runs <see cref="DurableAgents.Orchestrations.DraftAndApprove"/>.</summary>
    [Function(nameof(DurableAgents.Orchestrations.DraftAndApprove))]
    public static Task<DraftAndApproveOutput> DraftAndApprove([OrchestrationTrigger] TaskOrchestrationContext context) =>
        TaskWrappers.RunOrchestratorAsync<DurableAgents.Orchestrations.DraftAndApprove, DraftAndApproveInput, DraftAndApproveOutput>(context);

    /// <summary>Runs <see cref="DurableAgents.Orchestrations.ApprovalGate"/>.</summary>
    [Function(nameof(DurableAgents.Orchestrations.ApprovalGate))]
    public static Task<ApprovalGateResult> ApprovalGate([OrchestrationTrigger] TaskOrchestrationContext context) =>
        TaskWrappers.RunOrchestratorAsync<DurableAgents.Orchestrations.ApprovalGate, ApprovalGateRequest, ApprovalGateResult>(context);

    /// <summary>Runs <see cref="DurableAgents.Orchestrations.ContentPipeline"/>.</summary>
    [Function(nameof(DurableAgents.Orchestrations.ContentPipeline))]
    public static Task<ContentResult> ContentPipeline([OrchestrationTrigger] TaskOrchestrationContext context) =>
        TaskWrappers.RunOrchestratorAsync<DurableAgents.Orchestrations.ContentPipeline, ContentRequest, ContentResult>(context);

    /// <summary>Runs <see cref="DurableAgents.Orchestrations.WorkerTask"/>.</summary>
    [Function(nameof(DurableAgents.Orchestrations.WorkerTask))]
    public static Task<AgentRunResult> WorkerTask([OrchestrationTrigger] TaskOrchestrationContext context) =>
        TaskWrappers.RunOrchestratorAsync<DurableAgents.Orchestrations.WorkerTask, WorkerTaskRequest, AgentRunResult>(context);

    /// <summary>Runs <see cref="DurableAgents.Orchestrations.SupervisorAgent"/>.</summary>
    [Function(nameof(DurableAgents.Orchestrations.SupervisorAgent))]
    public static Task<SupervisorResult> SupervisorAgent([OrchestrationTrigger] TaskOrchestrationContext context) =>
        TaskWrappers.RunOrchestratorAsync<DurableAgents.Orchestrations.SupervisorAgent, SupervisorRequest, SupervisorResult>(context);

    /// <summary>Runs <see cref="DurableAgents.Orchestrations.SeoAudit"/>.</summary>
    [Function(nameof(DurableAgents.Orchestrations.SeoAudit))]
    public static Task<SeoReport> SeoAudit([OrchestrationTrigger] TaskOrchestrationContext context) =>
        TaskWrappers.RunOrchestratorAsync<DurableAgents.Orchestrations.SeoAudit, SeoAuditRequest, SeoReport>(context);

    /// <summary>Runs <see cref="DurableAgents.Orchestrations.DraftReviewLoop"/>.</summary>
    [Function(nameof(DurableAgents.Orchestrations.DraftReviewLoop))]
    public static Task<ReviewResult> DraftReviewLoop([OrchestrationTrigger] TaskOrchestrationContext context) =>
        TaskWrappers.RunOrchestratorAsync<DurableAgents.Orchestrations.DraftReviewLoop, ReviewRequest, ReviewResult>(context);

    /// <summary>Runs <see cref="DurableAgents.Orchestrations.WeeklyContent"/>.</summary>
    [Function(nameof(DurableAgents.Orchestrations.WeeklyContent))]
    public static Task<WeeklyContentResult> WeeklyContent([OrchestrationTrigger] TaskOrchestrationContext context) =>
        TaskWrappers.RunOrchestratorAsync<DurableAgents.Orchestrations.WeeklyContent, WeeklyContentRequest, WeeklyContentResult>(context);

    /// <summary>Runs <see cref="DurableAgents.Orchestrations.ResearchBrief"/>.</summary>
    [Function(nameof(DurableAgents.Orchestrations.ResearchBrief))]
    public static Task<ResearchBriefOutput> ResearchBrief([OrchestrationTrigger] TaskOrchestrationContext context) =>
        TaskWrappers.RunOrchestratorAsync<DurableAgents.Orchestrations.ResearchBrief, ResearchBriefInput, ResearchBriefOutput>(context);

    /// <summary>Runs <see cref="DurableAgents.Orchestrations.AgentChat"/>.</summary>
    [Function(nameof(DurableAgents.Orchestrations.AgentChat))]
    public static Task<AgentRunResult> AgentChat([OrchestrationTrigger] TaskOrchestrationContext context) =>
        TaskWrappers.RunOrchestratorAsync<DurableAgents.Orchestrations.AgentChat, AgentChatInput, AgentRunResult>(context);
}
