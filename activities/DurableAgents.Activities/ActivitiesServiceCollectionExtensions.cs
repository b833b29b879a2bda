using DurableAgents.Activities.Approvals;
using DurableAgents.Activities.Email;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Services the agent activities need.</summary>
public static class ActivitiesServiceCollectionExtensions
{
    /// <summary>
    /// Approval tokens (DurableAgents:Approvals) and email: SMTP when DurableAgents:Smtp:Host is set,
    /// otherwise the development outbox; the model services (DurableAgents:Llm); and agents, tools and memory (DurableAgents:Agents, :Tools, :Memory).
    /// </summary>
    public static IServiceCollection AddAgentActivityServices(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<ApprovalOptions>().BindConfiguration(ApprovalOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<SmtpOptions>().BindConfiguration(SmtpOptions.SectionName);
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<ApprovalTokens>();
        services.AddSingleton<DevelopmentOutbox>();
        services.AddModelServices(configuration);
        services.AddAgentServices(configuration);
        if (string.IsNullOrWhiteSpace(configuration[$"{SmtpOptions.SectionName}:Host"]))
        {
            services.AddSingleton<IEmailSender>(sp => sp.GetRequiredService<DevelopmentOutbox>());
        }
        else
        {
            services.AddSingleton<IEmailSender, SmtpEmailSender>();
        }

        return services;
    }
}

/// <summary>Registration of the agent activities in the Durable Task SDK's registry.</summary>
public static class AgentActivitiesBuilderExtensions
{
    /// <summary>
    /// The activities the agent workflows call: approvals (SendApprovalRequest), model calls (CallModel,
    /// Embed), the agent loop (AgentTurn, CallTool), memory (RecallMemory, RememberFacts) and the web and
    /// publishing steps (ReadSitemap, FetchPage, PublishPost).
    /// </summary>
    public static Microsoft.DurableTask.DurableTaskRegistry AddAgentActivities(this Microsoft.DurableTask.DurableTaskRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        return registry.AddActivity<SendApprovalRequest>()
            .AddActivity<DurableAgents.Activities.Llm.CallModel>()
            .AddActivity<DurableAgents.Activities.Llm.Embed>()
            .AddActivity<DurableAgents.Activities.Agents.AgentTurn>()
            .AddActivity<DurableAgents.Activities.Agents.CallTool>()
            .AddActivity<DurableAgents.Activities.Agents.RecallMemory>()
            .AddActivity<DurableAgents.Activities.Agents.RememberFacts>()
            .AddActivity<DurableAgents.Activities.Agents.ReadSitemap>()
            .AddActivity<DurableAgents.Activities.Agents.FetchPage>()
            .AddActivity<DurableAgents.Activities.Agents.PublishPost>();
    }
}

/// <summary>What every host of the product workflows registers: one list, so the hosts cannot drift apart.</summary>
public static class ProductActivitiesExtensions
{
    /// <summary>
    /// Every activity the product workflows call: the agent activities (<see cref="AgentActivitiesBuilderExtensions.AddAgentActivities"/>),
    /// SayHello, DraftText and StartScheduledRun.
    /// </summary>
    public static Microsoft.DurableTask.DurableTaskRegistry AddProductActivities(this Microsoft.DurableTask.DurableTaskRegistry registry) =>
        registry.AddAgentActivities()
            .AddActivity<DurableAgents.Activities.SayHello>()
            .AddActivity<DurableAgents.Activities.DraftText>()
            .AddActivity<DurableAgents.Activities.Schedules.StartScheduledRun>();

    /// <summary>
    /// The services those activities need (<see cref="ActivitiesServiceCollectionExtensions.AddAgentActivityServices"/>),
    /// the workflows' agent profiles and the founder's <c>assistant</c> agent.
    /// </summary>
    public static IServiceCollection AddProductActivityServices(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddAgentActivityServices(configuration);
        services.AddWorkflowAgents();
        services.AddAgent("assistant", a =>
        {
            a.Instructions = "You are the founder's assistant. Use your tools when they help; ask the founder when you need a decision. Answer briefly.";
            a.Tools.AddRange(["scratchpad_read", "scratchpad_write", "memory_search", "memory_save", "web_fetch", "sitemap_read", "request_human_input"]);
        });
        return services;
    }
}
