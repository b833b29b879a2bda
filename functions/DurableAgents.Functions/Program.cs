using DurableAgents.Functions.Apis;
using DurableAgents.Functions.Hosting;

var builder = WebApplication.CreateBuilder(args);

builder.AddListeningAddress();
builder.AddDurableAgentsEngine();
builder.AddApiErrorHandling();
builder.AddApiKeyAuthentication();
builder.Services.AddOpenApi();

var app = builder.Build();

app.UseApiErrorHandling();
app.MapOpenApi("/openapi/{documentName}.json");
app.MapHealthApi();
app.MapManagementApi();
app.MapApprovalApi();

app.Run();

/// <summary>The host entry point (public for integration tests).</summary>
public partial class Program;
