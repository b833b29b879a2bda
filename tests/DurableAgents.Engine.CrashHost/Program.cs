using DurableAgents;
using DurableAgents.Engine.Client;
using DurableAgents.Engine.Hosting;
using DurableAgents.Engine.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

// A host the crash tests run in a separate OS process and SIGKILL mid-workflow.
// Usage: CrashHost <db-file> <side-file> <start|resume> <instance-id> <steps>
if (args.Length != 5)
{
    Console.Error.WriteLine("usage: CrashHost <db-file> <side-file> <start|resume> <instance-id> <steps>");
    return 2;
}

var (db, sideFile, mode, instanceId, steps) = (args[0], args[1], args[2], args[3], int.Parse(args[4], System.Globalization.CultureInfo.InvariantCulture));
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
builder.Logging.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning);
builder.Services.AddSingleton(new SideFile(sideFile));
builder.Services.AddDurableAgents(b => b
    .UseSqlite($"Data Source={db}")
    .AddOrchestratorFunc<int, int>("TwentySteps", async (ctx, n) =>
    {
        var sum = 0;
        for (var i = 0; i < n; i++)
        {
            sum += await ctx.CallActivityAsync<int>(nameof(RecordStep), i);
        }

        return sum;
    })
    .AddActivity<RecordStep>());
builder.Services.Configure<DurableAgentsOptions>(o =>
{
    // Short leases so the next process takes over quickly after the kill.
    o.OrchestrationLease = TimeSpan.FromSeconds(2);
    o.ActivityLease = TimeSpan.FromSeconds(2);
    o.MaxPollInterval = TimeSpan.FromMilliseconds(100);
});
using var host = builder.Build();
await host.StartAsync();
var client = host.Services.GetRequiredService<DurableTaskClient>();
if (mode == "start")
{
    await client.ScheduleNewOrchestrationInstanceAsync("TwentySteps", steps, new StartOrchestrationOptions { InstanceId = instanceId });
}

using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
var done = await client.WaitForInstanceCompletionAsync(instanceId, true, cts.Token);
Console.WriteLine($"{done.RuntimeStatus} {done.SerializedOutput}");
await host.StopAsync();
return done.RuntimeStatus == OrchestrationRuntimeStatus.Completed ? 0 : 1;

internal sealed record SideFile(string Path);

internal sealed class RecordStep(SideFile side) : TaskActivity<int, int>
{
    public override async Task<int> RunAsync(TaskActivityContext context, int input, CancellationToken cancellationToken)
    {
        // Some work, so that a kill lands mid-activity now and then.
        await Task.Delay(120, cancellationToken).ConfigureAwait(false);
        var stream = new FileStream(side.Path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite, 4096, FileOptions.WriteThrough);
        await using (stream.ConfigureAwait(false))
        {
            var line = System.Text.Encoding.UTF8.GetBytes($"{input}\n");
            await stream.WriteAsync(line, cancellationToken).ConfigureAwait(false);
        }

        return input + 1;
    }
}
