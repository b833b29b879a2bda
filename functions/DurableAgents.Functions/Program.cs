using DurableAgents.Functions.Apis;
using DurableAgents.Functions.Hosting;

var builder = WebApplication.CreateBuilder(args);

builder.AddListeningAddress();
builder.AddDurableAgentsEngine();
builder.AddApiErrorHandling();

var app = builder.Build();

app.UseApiErrorHandling();
app.MapHealthApi();
app.MapManagementApi();

app.Run();

/// <summary>The host entry point (public for integration tests).</summary>
public partial class Program;
