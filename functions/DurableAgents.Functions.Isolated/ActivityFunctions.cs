// The product activities as Durable Functions activities: one thin wrapper per class.
// WorkflowWrapperTests fails when an activity registered by AddProductActivities() has none here.
using Microsoft.Azure.Functions.Worker;
using DurableAgents.Activities.Contracts;
using DurableAgents.Activities.Contracts.Agents;
using DurableAgents.Activities.Contracts.Llm;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Functions.Isolated;

/// <summary>The activity functions.</summary>
public static class ActivityFunctions
{
    /// <summary>Runs <see cref="DurableAgents.Activities.Llm.CallModel"/>.</summary>
    [Function("CallModel")]
    public static Task<ModelResponse> CallModel([ActivityTrigger] ModelRequest input, string instanceId, [DurableClient] DurableTaskClient client, FunctionContext context) =>
        TaskWrappers.RunActivityAsync<DurableAgents.Activities.Llm.CallModel, ModelRequest, ModelResponse>("CallModel", input, instanceId, client, context);

    /// <summary>Runs <see cref="DurableAgents.Activities.Llm.Embed"/>.</summary>
    [Function("Embed")]
    public static Task<EmbeddingResponse> Embed([ActivityTrigger] EmbeddingRequest input, string instanceId, [DurableClient] DurableTaskClient client, FunctionContext context) =>
        TaskWrappers.RunActivityAsync<DurableAgents.Activities.Llm.Embed, EmbeddingRequest, EmbeddingResponse>("Embed", input, instanceId, client, context);

    /// <summary>Runs <see cref="DurableAgents.Activities.Approvals.SendApprovalRequest"/>.</summary>
    [Function("SendApprovalRequest")]
    public static Task<int> SendApprovalRequest([ActivityTrigger] ApprovalRequest input, string instanceId, [DurableClient] DurableTaskClient client, FunctionContext context) =>
        TaskWrappers.RunActivityAsync<DurableAgents.Activities.Approvals.SendApprovalRequest, ApprovalRequest, int>("SendApprovalRequest", input, instanceId, client, context);

    /// <summary>Runs <see cref="DurableAgents.Activities.Schedules.StartScheduledRun"/>.</summary>
    [Function("StartScheduledRun")]
    public static Task<string> StartScheduledRun([ActivityTrigger] ScheduledRun input, string instanceId, [DurableClient] DurableTaskClient client, FunctionContext context) =>
        TaskWrappers.RunActivityAsync<DurableAgents.Activities.Schedules.StartScheduledRun, ScheduledRun, string>("StartScheduledRun", input, instanceId, client, context);

    /// <summary>Runs <see cref="DurableAgents.Activities.SayHello"/>.</summary>
    [Function("SayHello")]
    public static Task<string> SayHello([ActivityTrigger] string input, string instanceId, [DurableClient] DurableTaskClient client, FunctionContext context) =>
        TaskWrappers.RunActivityAsync<DurableAgents.Activities.SayHello, string, string>("SayHello", input, instanceId, client, context);

    /// <summary>Runs <see cref="DurableAgents.Activities.DraftText"/>.</summary>
    [Function("DraftText")]
    public static Task<Draft> DraftText([ActivityTrigger] DraftRequest input, string instanceId, [DurableClient] DurableTaskClient client, FunctionContext context) =>
        TaskWrappers.RunActivityAsync<DurableAgents.Activities.DraftText, DraftRequest, Draft>("DraftText", input, instanceId, client, context);

    /// <summary>Runs <see cref="DurableAgents.Activities.Agents.ReadSitemap"/>.</summary>
    [Function("ReadSitemap")]
    public static Task<SitemapPages> ReadSitemap([ActivityTrigger] SitemapRequest input, string instanceId, [DurableClient] DurableTaskClient client, FunctionContext context) =>
        TaskWrappers.RunActivityAsync<DurableAgents.Activities.Agents.ReadSitemap, SitemapRequest, SitemapPages>("ReadSitemap", input, instanceId, client, context);

    /// <summary>Runs <see cref="DurableAgents.Activities.Agents.FetchPage"/>.</summary>
    [Function("FetchPage")]
    public static Task<PageText> FetchPage([ActivityTrigger] FetchPageRequest input, string instanceId, [DurableClient] DurableTaskClient client, FunctionContext context) =>
        TaskWrappers.RunActivityAsync<DurableAgents.Activities.Agents.FetchPage, FetchPageRequest, PageText>("FetchPage", input, instanceId, client, context);

    /// <summary>Runs <see cref="DurableAgents.Activities.Agents.PublishPost"/>.</summary>
    [Function("PublishPost")]
    public static Task<PublishReceipt> PublishPost([ActivityTrigger] PublishRequest input, string instanceId, [DurableClient] DurableTaskClient client, FunctionContext context) =>
        TaskWrappers.RunActivityAsync<DurableAgents.Activities.Agents.PublishPost, PublishRequest, PublishReceipt>("PublishPost", input, instanceId, client, context);

    /// <summary>Runs <see cref="DurableAgents.Activities.Agents.AgentTurn"/>.</summary>
    [Function("AgentTurn")]
    public static Task<AgentTurnResult> AgentTurn([ActivityTrigger] AgentTurnRequest input, string instanceId, [DurableClient] DurableTaskClient client, FunctionContext context) =>
        TaskWrappers.RunActivityAsync<DurableAgents.Activities.Agents.AgentTurn, AgentTurnRequest, AgentTurnResult>("AgentTurn", input, instanceId, client, context);

    /// <summary>Runs <see cref="DurableAgents.Activities.Agents.CallTool"/>.</summary>
    [Function("CallTool")]
    public static Task<ToolOutcome> CallTool([ActivityTrigger] ToolInvocation input, string instanceId, [DurableClient] DurableTaskClient client, FunctionContext context) =>
        TaskWrappers.RunActivityAsync<DurableAgents.Activities.Agents.CallTool, ToolInvocation, ToolOutcome>("CallTool", input, instanceId, client, context);

    /// <summary>Runs <see cref="DurableAgents.Activities.Agents.RecallMemory"/>.</summary>
    [Function("RecallMemory")]
    public static Task<RecallResult> RecallMemory([ActivityTrigger] RecallRequest input, string instanceId, [DurableClient] DurableTaskClient client, FunctionContext context) =>
        TaskWrappers.RunActivityAsync<DurableAgents.Activities.Agents.RecallMemory, RecallRequest, RecallResult>("RecallMemory", input, instanceId, client, context);

    /// <summary>Runs <see cref="DurableAgents.Activities.Agents.RememberFacts"/>.</summary>
    [Function("RememberFacts")]
    public static Task<RememberResult> RememberFacts([ActivityTrigger] RememberRequest input, string instanceId, [DurableClient] DurableTaskClient client, FunctionContext context) =>
        TaskWrappers.RunActivityAsync<DurableAgents.Activities.Agents.RememberFacts, RememberRequest, RememberResult>("RememberFacts", input, instanceId, client, context);
}
