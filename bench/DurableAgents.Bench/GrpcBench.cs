using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using DurableAgents.Engine.Postgres;
using DurableAgents.Engine.Sqlite;
using DurableAgents.Engine.Storage;
using DurableAgents.Engine.Testing;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace DurableAgents.Bench;

/// <summary>
/// The Durable Task gRPC endpoint with Microsoft's stock worker in separate processes
/// (tests/DurableAgents.Grpc.Worker) against the real host process (functions/): HelloCities5
/// (five sequential activities) with one and with two worker processes, next to the in-process
/// worker on the same store in the same run; and one long sequential orchestration of 1,000 vs
/// 5,000 steps through gRPC (the stock worker replays the whole history on every episode).
/// </summary>
internal static partial class GrpcBench
{
    private static readonly string[] Cities = ["Tokyo", "Seattle", "London", "Cairo", "Lima"];

    /// <param name="postgres">A PostgreSQL connection string, or null for SQLite files.</param>
    public static async Task<int> RunAsync(string? postgres, int orchestrations, int shortSteps, int longSteps)
    {
        var figures = new Dictionary<string, object> { ["store"] = postgres is null ? "sqlite" : "postgres", ["orchestrations"] = orchestrations };

        var inProcess = await InProcessAsync(postgres, orchestrations);
        figures["inProcessActivitiesPerSecond"] = Math.Round(inProcess, 1);
        foreach (var workers in new[] { 1, 2 })
        {
            await using var host = await HostProcess.StartAsync(postgres);
            var rate = await ThroughGrpcAsync(host, workers, orchestrations);
            figures[$"grpc{workers}WorkerActivitiesPerSecond"] = Math.Round(rate, 1);
            figures[$"grpc{workers}WorkerToInProcess"] = Math.Round(rate / inProcess, 3);
        }

        await using (var host = await HostProcess.StartAsync(postgres))
        {
            using var worker = await StartWorkerAsync(host.GrpcAddress);
            using var client = Client(host.GrpcAddress);
            var dtc = client.Services.GetRequiredService<DurableTaskClient>();
            var shortMs = await SequentialAsync(dtc, shortSteps);
            var longMs = await SequentialAsync(dtc, longSteps);
            figures[$"sequential{shortSteps}Ms"] = Math.Round(shortMs);
            figures[$"sequential{longSteps}Ms"] = Math.Round(longMs);
            figures["sequentialRatio"] = Math.Round(longMs / shortMs, 2);
            figures["sequentialRatioIfLinear"] = Math.Round((double)longSteps / shortSteps, 2);
            figures["sequentialRatioIfQuadratic"] = Math.Round(Math.Pow((double)longSteps / shortSteps, 2), 2);
        }

        Report.Print("grpc", figures);

        return 0;
    }

    private static async Task<double> InProcessAsync(string? postgres, int n)
    {
        var file = Path.Combine(Path.GetTempPath(), $"durableagents-bench-{Guid.NewGuid():N}.db");
        var hub = "bench_" + Guid.NewGuid().ToString("N")[..8];
        await using var host = await DurableAgentsTestHost.StartAsync(
            b => b
                .AddOrchestratorFunc<string[], string>("Sequence", async (ctx, cities) =>
                {
                    var greetings = new List<string>();
                    foreach (var city in cities)
                    {
                        greetings.Add(await ctx.CallActivityAsync<string>("Hello", city));
                    }

                    return string.Join(" ", greetings);
                })
                .AddActivityFunc<string, string>("Hello", (_, city) => $"Hello, {city}!"),
            o =>
            {
                o.MaxConcurrentOrchestrations = 16;
                o.MaxConcurrentActivities = 64;
            },
            storeFactory: _ => postgres is null ? new SqliteOrchestrationStore($"Data Source={file}") : new PostgresOrchestrationStore(postgres, hub));
        var rate = await DriveAsync(host.Client, n);
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"in-process: {rate:F0} activities/s"));
        return rate;
    }

    private static async Task<double> ThroughGrpcAsync(HostProcess host, int workers, int n)
    {
        var processes = new List<Process>();
        try
        {
            for (var i = 0; i < workers; i++)
            {
                processes.Add(await StartWorkerAsync(host.GrpcAddress));
            }

            using var client = Client(host.GrpcAddress);
            var rate = await DriveAsync(client.Services.GetRequiredService<DurableTaskClient>(), n);
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"gRPC, {workers} worker process(es): {rate:F0} activities/s"));
            return rate;
        }
        finally
        {
            foreach (var p in processes)
            {
                p.Kill(entireProcessTree: true);
                p.Dispose();
            }
        }
    }

    /// <summary>Starts n HelloCities5 runs from 8 concurrent clients, waits for all; activities per second.</summary>
    private static async Task<double> DriveAsync(DurableTaskClient client, int n)
    {
        var ids = new string[n];
        var sw = Stopwatch.StartNew();
        await Parallel.ForAsync(0, n, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, ct) =>
            ids[i] = await client.ScheduleNewOrchestrationInstanceAsync("Sequence", Cities, cancellation: ct));
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(20));
        await Parallel.ForEachAsync(ids, new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (id, _) =>
        {
            var done = await client.WaitForInstanceCompletionAsync(id, timeout.Token);
            if (done.RuntimeStatus != OrchestrationRuntimeStatus.Completed)
            {
                throw new InvalidOperationException($"{id} ended {done.RuntimeStatus}");
            }
        });
        return n * Cities.Length / sw.Elapsed.TotalSeconds;
    }

    private static async Task<double> SequentialAsync(DurableTaskClient client, int steps)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(30));
        var sw = Stopwatch.StartNew();
        var id = await client.ScheduleNewOrchestrationInstanceAsync("Long", steps);
        var done = await client.WaitForInstanceCompletionAsync(id, timeout.Token);
        if (done.RuntimeStatus != OrchestrationRuntimeStatus.Completed)
        {
            throw new InvalidOperationException($"Long({steps}) ended {done.RuntimeStatus}");
        }

        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"gRPC sequential {steps} steps: {sw.Elapsed.TotalSeconds:F1} s"));
        return sw.Elapsed.TotalMilliseconds;
    }

    private static IHost Client(Uri address)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddDurableTaskClient(b => b.UseGrpc(address.ToString()));
        return builder.Build();
    }

    internal static string Built(string project, string dll)
    {
        var path = Path.Combine(RepoRoot, project, "bin/Release/net10.0", dll);
        return File.Exists(path) ? path : throw new FileNotFoundException($"{path}: build the solution in Release first (bench/run.sh does)");
    }

    private static string RepoRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "DurableAgents.sln")))
            {
                dir = dir.Parent;
            }

            return dir?.FullName ?? throw new InvalidOperationException("DurableAgents.sln not found");
        }
    }

    private static async Task<Process> StartWorkerAsync(Uri address)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { Built("tests/DurableAgents.Grpc.Worker", "DurableAgents.Grpc.Worker.dll"), "--address", address.ToString(), "--activities", "64", "--orchestrations", "16" })
        {
            psi.ArgumentList.Add(arg);
        }

        var process = Process.Start(psi)!;
        while (await process.StandardOutput.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("worker ready", StringComparison.Ordinal))
            {
                _ = process.StandardOutput.ReadToEndAsync();
                _ = process.StandardError.ReadToEndAsync();
                return process;
            }
        }

        throw new InvalidOperationException("worker exited: " + await process.StandardError.ReadToEndAsync());
    }

    /// <summary>The host binary with the gRPC endpoint on a free loopback port.</summary>
    private sealed partial class HostProcess : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly string? _file;

        private HostProcess(Process process, string? file, Uri grpc)
        {
            _process = process;
            _file = file;
            GrpcAddress = grpc;
        }

        public Uri GrpcAddress { get; }

        public static async Task<HostProcess> StartAsync(string? postgres)
        {
            string? file = null;
            var env = new Dictionary<string, string> { ["DurableAgents__Grpc__Enabled"] = "true", ["DurableAgents__Grpc__Port"] = "0" };
            if (postgres is null)
            {
                file = Path.Combine(Path.GetTempPath(), $"durableagents-bench-{Guid.NewGuid():N}.db");
                env["DurableAgents__Sqlite__ConnectionString"] = $"Data Source={file}";
            }
            else
            {
                env["DurableAgents__Store"] = "Postgres";
                env["DurableAgents__Postgres__ConnectionString"] = postgres;
                env["DurableAgents__Postgres__TaskHub"] = "grpcbench" + Guid.NewGuid().ToString("N")[..8];
            }

            var (process, ready) = await HostBinary.StartAsync(env, GrpcListening());
            return new HostProcess(process, file, new Uri(ready.Groups[1].Value));
        }

        public async ValueTask DisposeAsync()
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
            _process.Dispose();
            if (_file is not null)
            {
                File.Delete(_file);
            }
        }

        [GeneratedRegex(@"gRPC endpoint listening on (http://\S+)")]
        private static partial Regex GrpcListening();
    }
}
