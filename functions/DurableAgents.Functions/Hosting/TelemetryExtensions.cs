using Azure.Identity;
using Azure.Monitor.OpenTelemetry.Exporter;
using DurableAgents.Engine.Hosting;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace DurableAgents.Functions.Hosting;

/// <summary>
/// OpenTelemetry traces and metrics (engine spans and meters, ASP.NET Core requests), exported by
/// OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set (the standard OTEL_* variables apply) and to
/// Application Insights when APPLICATIONINSIGHTS_CONNECTION_STRING is set, authenticating with the
/// managed identity named by AZURE_CLIENT_ID (local auth is disabled in infra/). Neither set:
/// nothing is collected.
/// </summary>
internal static class TelemetryExtensions
{
    public static void AddTelemetry(this WebApplicationBuilder builder)
    {
        var otlp = builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"];
        var appInsights = builder.Configuration["APPLICATIONINSIGHTS_CONNECTION_STRING"];
        if (string.IsNullOrEmpty(otlp) && string.IsNullOrEmpty(appInsights))
        {
            return;
        }

        var clientId = builder.Configuration["AZURE_CLIENT_ID"];
        void AzureMonitor(AzureMonitorExporterOptions o)
        {
            o.ConnectionString = appInsights;
            if (!string.IsNullOrEmpty(clientId))
            {
                o.Credential = new ManagedIdentityCredential(ManagedIdentityId.FromUserAssignedClientId(clientId));
            }
        }

        builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(builder.Configuration["OTEL_SERVICE_NAME"] ?? "durableagents"))
            .WithTracing(t =>
            {
                t.AddSource(DurableAgentsTelemetry.Name, DurableAgents.Activities.Llm.ModelClients.ActivitySourceName).AddAspNetCoreInstrumentation();
                if (!string.IsNullOrEmpty(otlp))
                {
                    t.AddOtlpExporter();
                }

                if (!string.IsNullOrEmpty(appInsights))
                {
                    t.AddAzureMonitorTraceExporter(AzureMonitor);
                }
            })
            .WithMetrics(m =>
            {
                m.AddMeter(DurableAgentsTelemetry.Name, DurableAgents.Activities.Llm.ModelClients.ActivitySourceName).AddAspNetCoreInstrumentation();
                if (!string.IsNullOrEmpty(otlp))
                {
                    m.AddOtlpExporter();
                }

                if (!string.IsNullOrEmpty(appInsights))
                {
                    m.AddAzureMonitorMetricExporter(AzureMonitor);
                }
            });
    }
}
