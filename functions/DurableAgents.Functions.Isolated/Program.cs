using Azure.Core.Serialization;
using DurableAgents.Activities;
using DurableAgents.Activities.Approvals;
using DurableAgents.Activities.Llm;
using DurableAgents.Engine;
using DurableAgents.Functions.Isolated;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

// The isolated worker: the same activities' services as the custom-handler host (model profiles,
// ledger and memory in the activity database, Redis cache, SMTP), from DurableAgents:* settings.
var builder = FunctionsApplication.CreateBuilder(args);
builder.ConfigureFunctionsWebApplication();

// Payloads (inputs, outputs, events) in the same JSON as the custom-handler host: camelCase web defaults.
builder.Services.Configure<WorkerOptions>(o => o.Serializer = new JsonObjectSerializer(DataConverter.Options));
// The Durable extension hands its client to function invocations only: activities get the one
// their trigger was given (StartScheduledRun takes it; the model service looks workflow names up with it).
builder.Services.AddSingleton<DurableClientHolder>();
builder.Services.AddSingleton<IWorkflowNames>(sp => sp.GetRequiredService<DurableClientHolder>());
builder.Services.AddScoped<DurableTaskClient>(sp => sp.GetRequiredService<DurableClientHolder>().Client);
builder.Services.AddProductActivityServices(builder.Configuration);
builder.Services.AddSingleton<IUsedTokens>(sp => new ActivityDatabaseUsedTokens(sp.GetRequiredService<ActivityDatabase>()));
builder.Build().Run();
