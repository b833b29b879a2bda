using DurableAgents.Grpc.Worker;
using Microsoft.DurableTask.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

// Usage: DurableAgents.Grpc.Worker --address http://127.0.0.1:4001 [--api-key KEY]
//        [--executions DIR] [--activities N] [--orchestrations N]
var settings = new Dictionary<string, string>(StringComparer.Ordinal);
for (var i = 0; i + 1 < args.Length; i += 2)
{
    settings[args[i].TrimStart('-')] = args[i + 1];
}

var address = settings.GetValueOrDefault("address") ?? throw new ArgumentException("--address is required");
Conformance.ExecutionsDirectory = settings.GetValueOrDefault("executions");
var builder = Host.CreateApplicationBuilder();
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.Services.AddDurableTaskWorker(b =>
{
    b.AddTasks(r => r.AddConformance());
    b.UseGrpc(ChannelFactory.Create(address, settings.GetValueOrDefault("api-key")));
    b.Configure(o =>
    {
        o.Concurrency.MaximumConcurrentActivityWorkItems = int.Parse(settings.GetValueOrDefault("activities") ?? "8", System.Globalization.CultureInfo.InvariantCulture);
        o.Concurrency.MaximumConcurrentOrchestrationWorkItems = int.Parse(settings.GetValueOrDefault("orchestrations") ?? "8", System.Globalization.CultureInfo.InvariantCulture);
    });
});
using var host = builder.Build();
await host.StartAsync();
Console.WriteLine($"worker ready: pid {Environment.ProcessId}");
await host.WaitForShutdownAsync();
