using DurableAgents.Functions.Isolated;
using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

// The isolated worker: the same activities' services as the custom-handler host (model profiles,
// ledger and memory in the activity database, Redis cache, SMTP), from DurableAgents:* settings.
var builder = FunctionsApplication.CreateBuilder(args);
builder.ConfigureFunctionsWebApplication();
builder.Services.AddProductActivityServices(builder.Configuration);
builder.Services.AddSingleton<DurableClientHolder>();
builder.Services.AddSingleton<DurableTaskClient>(sp => sp.GetRequiredService<DurableClientHolder>().Client);
builder.Build().Run();
