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
