using DurableAgents.Engine.Grpc;
using DurableAgents.Functions.Apis;
using DurableAgents.Functions.Dashboard;
using DurableAgents.Functions.Hosting;

var builder = WebApplication.CreateBuilder(args);

builder.AddListeningAddress();
builder.AddDurableAgentsEngine();
builder.AddDurableAgentsGrpc(); // DurableAgents:Grpc:Enabled (off by default): stock Durable Task workers and clients
builder.AddApiConventions();
builder.AddApiKeyAuthentication();
builder.AddTelemetry();
builder.Services.AddAntiforgery(o => o.Cookie.Name = "da_antiforgery");
builder.Services.AddSingleton<DashboardAuthFilter>();
builder.Services.AddLiveApi(); // Live:ResponseWindow's default behind the Functions host
builder.Services.AddRazorComponents(); // the dashboard's pages, rendered on the server (RazorComponentResult)

var app = builder.Build();

app.UseApiConventions();
app.UseDashboardAssets();
app.MapDurableAgentsGrpc();
app.MapHealthApi();
app.MapManagementApi();
app.MapScheduleApi();
app.MapApprovalApi();
app.MapModelUsageApi();
app.MapLiveApi();
app.MapDashboard();
app.MapFunctionsInvocations();

app.Run();

/// <summary>The host entry point (public for integration tests).</summary>
public partial class Program;
