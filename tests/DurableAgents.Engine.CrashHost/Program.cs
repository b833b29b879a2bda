using DurableAgents;
using DurableAgents.Engine;
using DurableAgents.Engine.Client;
using DurableAgents.Engine.Hosting;
using DurableAgents.Engine.Postgres;
using DurableAgents.Engine.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

// Hosts that the crash and multi-host tests run as separate OS processes and SIGKILL mid-run.
//   CrashHost sqlite <db-file> <side-file> <start|resume> <instance-id> <steps>
//       runs (and with 'start' first schedules) one sequential workflow; exits when it completes.
//   CrashHost pg-worker <connection-string> <task-hub> <side-file>
//       runs a worker on PostgreSQL until killed; prints "ready" once started.
// Environment: CRASHHOST_WORKER_ID sets DurableAgents:WorkerId; CRASHHOST_LEASE_SECONDS the
// orchestration and activity leases (default 2 s, so survivors take over quickly even without
// heartbeats; the heartbeat tests set minutes, so only the heartbeat can move the work).
if (args.Length < 1)
{
    return Usage();
}

var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
builder.Logging.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning).AddFilter("DurableAgents.Engine.Hosting.HostLiveness", LogLevel.Information);
var lease = TimeSpan.FromSeconds(int.Parse(Environment.GetEnvironmentVariable("CRASHHOST_LEASE_SECONDS") ?? "2", System.Globalization.CultureInfo.InvariantCulture));
builder.Services.Configure<DurableAgentsOptions>(o =>
{
    o.WorkerId = Environment.GetEnvironmentVariable("CRASHHOST_WORKER_ID");
    o.OrchestrationLease = lease;
    o.ActivityLease = lease;
    o.MaxPollInterval = TimeSpan.FromMilliseconds(100);
    o.MaxConcurrentActivities = 8;
});

switch (args[0])
{
    case "sqlite" when args.Length == 6:
        return await RunSqliteAsync(builder, args[1], args[2], args[3], args[4], int.Parse(args[5], System.Globalization.CultureInfo.InvariantCulture));
    case "pg-worker" when args.Length == 4:
        return await RunPostgresWorkerAsync(builder, args[1], args[2], args[3]);
    default:
        return Usage();
}

static int Usage()
{
    Console.Error.WriteLine("usage: CrashHost sqlite <db-file> <side-file> <start|resume> <instance-id> <steps> | CrashHost pg-worker <connection-string> <task-hub> <side-file>");
    return 2;
}

static void Register(DurableTaskRegistry b) => b
    .AddOrchestratorFunc<int, int>("Sequential", async (ctx, n) =>
    {
        var sum = 0;
        for (var i = 0; i < n; i++)
        {
            sum += await ctx.CallActivityAsync<int>(nameof(RecordStep), i);
        }

        return sum;
    })
    .AddActivity<RecordStep>();

static async Task<int> RunSqliteAsync(HostApplicationBuilder builder, string db, string sideFile, string mode, string instanceId, int steps)
{
    builder.Services.AddSingleton(new SideFile(sideFile, Delay: TimeSpan.FromMilliseconds(120)));
    builder.Services.AddDurableAgents(b => b.UseSqlite($"Data Source={db}").AddTasks(Register));
    using var host = builder.Build();
    await host.StartAsync();
    var client = host.Services.GetRequiredService<DurableTaskClient>();
    if (mode == "start")
    {
        await client.ScheduleNewOrchestrationInstanceAsync("Sequential", steps, new StartOrchestrationOptions { InstanceId = instanceId });
    }

    using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
    var done = await client.WaitForInstanceCompletionAsync(instanceId, true, cts.Token);
    Console.WriteLine($"{done.RuntimeStatus} {done.SerializedOutput}");
    await host.StopAsync();
    return done.RuntimeStatus == OrchestrationRuntimeStatus.Completed ? 0 : 1;
}

static async Task<int> RunPostgresWorkerAsync(HostApplicationBuilder builder, string connectionString, string hub, string sideFile)
{
    builder.Services.AddSingleton(new SideFile(sideFile, Delay: TimeSpan.FromMilliseconds(5)));
    builder.Services.AddDurableAgents(b => b.UsePostgres(connectionString, hub).AddTasks(Register));
    using var host = builder.Build();
    await host.StartAsync();
    Console.WriteLine("ready");
    await host.WaitForShutdownAsync();
    return 0;
}

internal sealed record SideFile(string Path, TimeSpan Delay);

/// <summary>
/// Records "pid instance:step" in this process's own side file (<c>{side}.{pid}</c>): .NET's
/// FileMode.Append seeks rather than opening with O_APPEND, so processes must not share a file.
/// </summary>
internal sealed class RecordStep(SideFile side) : TaskActivity<int, int>
{
    // Unbuffered append writes at the offset seen when the file was opened: concurrent activities
    // in this process must take turns or they overwrite each other's lines.
    private static readonly SemaphoreSlim WriteGate = new(1, 1);

    public override async Task<int> RunAsync(TaskActivityContext context, int input)
    {
        var cancellationToken = context.GetCancellationToken();
        await Task.Delay(side.Delay, cancellationToken).ConfigureAwait(false);
        await WriteGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await AppendAsync(context, input, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            WriteGate.Release();
        }

        return input + 1;
    }

    private async Task AppendAsync(TaskActivityContext context, int input, CancellationToken cancellationToken)
    {
        var stream = new FileStream($"{side.Path}.{Environment.ProcessId}", FileMode.Append, FileAccess.Write, FileShare.ReadWrite, 1, FileOptions.WriteThrough);
        await using (stream.ConfigureAwait(false))
        {
            var line = System.Text.Encoding.UTF8.GetBytes($"{Environment.ProcessId} {context.InstanceId}:{input}\n");
            await stream.WriteAsync(line, cancellationToken).ConfigureAwait(false);
        }
    }
}
