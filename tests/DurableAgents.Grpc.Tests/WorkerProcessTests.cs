using System.Diagnostics;
using DurableAgents.Grpc.Worker;
using DurableAgents.Tests.Shared;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NUnit.Framework;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableAgents.Grpc.Tests;

/// <summary>Worker processes sharing one host, completion tokens as leases, and the API key.</summary>
[TestFixture("sqlite")]
[TestFixture("postgres")]
[NonParallelizable]
public sealed class WorkerProcessTests
{
    private readonly string _store;

    public WorkerProcessTests(string store) => _store = store;

    private static CancellationToken Timeout(int seconds = 90) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;

    [Test]
    public async Task TwoWorkerProcesses_OneKilledMidRun_NothingLost_OnlyItsInFlightItemsRunAgain()
    {
        await using var host = await GrpcHost.StartAsync(_store);
        var executions = Directory.CreateTempSubdirectory("durableagents-grpc-exec").FullName;
        using var a = await StartWorkerAsync(host.GrpcAddress, executions, activities: 4);
        using var b = await StartWorkerAsync(host.GrpcAddress, executions, activities: 4);
        using var clientHost = ClientHost(host.GrpcAddress);
        var client = clientHost.Services.GetRequiredService<DurableTaskClient>();

        const int Instances = 16, Steps = 5;
        var ids = new List<string>();
        for (var i = 0; i < Instances; i++)
        {
            ids.Add(await client.ScheduleNewOrchestrationInstanceAsync("SlowSequence", new SlowRun(Steps, 150)));
        }

        // Kill A once it has run a good part of its share (each execution leaves a file behind).
        await WaitForFilesAsync(executions, $"*.{a.Id}.*", 8, Timeout());
        a.Kill(entireProcessTree: true);
        await a.WaitForExitAsync();
        var byKilled = Directory.GetFiles(executions, $"*.{a.Id}.*").Length;

        foreach (var id in ids)
        {
            var done = await client.WaitForInstanceCompletionAsync(id, true, Timeout());
            Assert.That(done.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Completed), done.FailureDetails?.ToString());
            Assert.That(done.ReadOutputAs<int>(), Is.EqualTo(Enumerable.Range(0, Steps).Sum()));
        }

        // Every step ran; a step ran twice only if A was running it when it died (at most A's 4 slots).
        var runs = Directory.GetFiles(executions).Select(Path.GetFileName).Select(f => f!.Split('.')).GroupBy(p => $"{p[0]}.{p[1]}").ToList();
        Assert.That(runs, Has.Count.EqualTo(Instances * Steps));
        var twice = runs.Where(g => g.Count() > 1).ToList();
        TestContext.Out.WriteLine($"A ran {byKilled} steps before it was killed; {twice.Count} steps ran again");
        foreach (var g in twice)
        {
            TestContext.Out.WriteLine($"  {g.Key}: " + string.Join(", ", g.Select(p => $"pid {p[2]} at {File.GetLastWriteTimeUtc(Path.Combine(executions, string.Join('.', p))):HH:mm:ss.fff}")));
        }
        Assert.That(twice, Has.Count.LessThanOrEqualTo(4), "only the steps in flight on the killed worker run again");
        Assert.That(twice.Select(g => g.Count()), Has.All.EqualTo(2));
        Assert.That(twice.Select(g => g.Select(p => p[2])), Has.All.Contains(a.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)), "a repeated step was first run by the killed worker");
        Directory.Delete(executions, true);
    }

    [Test]
    public async Task CompletionToken_IsTheLease_StaleOrForeignTokensChangeNothing()
    {
        await using var host = await GrpcHost.StartAsync(_store);
        using var channel = GrpcChannel.ForAddress(host.GrpcAddress);
        var sidecar = new P.TaskHubSidecarService.TaskHubSidecarServiceClient(channel);
        var id = (await sidecar.StartInstanceAsync(new P.CreateInstanceRequest { Name = "Sequence", Input = "[\"Rome\"]" })).InstanceId;

        // A raw stream takes the first episode, then goes away: the item is back in the queue at once.
        P.WorkItem first;
        using (var streamCts = new CancellationTokenSource())
        using (var stream = sidecar.GetWorkItems(new P.GetWorkItemsRequest { MaxConcurrentOrchestrationWorkItems = 1, MaxConcurrentActivityWorkItems = 1 }, cancellationToken: streamCts.Token))
        {
            Assert.That(await stream.ResponseStream.MoveNext(Timeout()), Is.True);
            first = stream.ResponseStream.Current;
            Assert.That(first.OrchestratorRequest.InstanceId, Is.EqualTo(id));
            await streamCts.CancelAsync();
        }

        // A second stream gets the same episode with a new token: the first stream's item went back to the queue.
        using var streamCts2 = new CancellationTokenSource();
        using var stream2 = sidecar.GetWorkItems(new P.GetWorkItemsRequest { MaxConcurrentOrchestrationWorkItems = 1 }, cancellationToken: streamCts2.Token);
        Assert.That(await stream2.ResponseStream.MoveNext(Timeout()), Is.True);
        var again = stream2.ResponseStream.Current;
        Assert.That(again.OrchestratorRequest.InstanceId, Is.EqualTo(id));
        Assert.That(again.CompletionToken, Is.Not.EqualTo(first.CompletionToken));
        // The first token died with its stream: its completion is refused and writes nothing.
        var stale = new P.OrchestratorResponse { InstanceId = id, CompletionToken = first.CompletionToken };
        stale.Actions.Add(new P.OrchestratorAction { Id = 0, CompleteOrchestration = new P.CompleteOrchestrationAction { OrchestrationStatus = P.OrchestrationStatus.Completed, Result = "\"forged\"" } });
        var refused = await RefusedAsync(() => sidecar.CompleteOrchestratorTaskAsync(stale).ResponseAsync);
        Assert.That(refused.StatusCode, Is.EqualTo(StatusCode.FailedPrecondition));
        Assert.That(refused.Status.Detail, Does.Contain("completion token"));
        var madeUp = await RefusedAsync(() => sidecar.CompleteActivityTaskAsync(new P.ActivityResponse { InstanceId = id, TaskId = 0, CompletionToken = "0123456789ABCDEF" }).ResponseAsync);
        Assert.That(madeUp.StatusCode, Is.EqualTo(StatusCode.FailedPrecondition));

        var state = await sidecar.GetInstanceAsync(new P.GetInstanceRequest { InstanceId = id, GetInputsAndOutputs = true });
        Assert.That(state.OrchestrationState.OrchestrationStatus, Is.EqualTo(P.OrchestrationStatus.Pending), "nothing was written");
        var history = sidecar.StreamInstanceHistory(new P.StreamInstanceHistoryRequest { InstanceId = id });
        Assert.That(await history.ResponseStream.MoveNext(Timeout()), Is.False, "no history yet");

        var wrong = await RefusedAsync(() => sidecar.CompleteOrchestratorTaskAsync(new P.OrchestratorResponse { InstanceId = "other", CompletionToken = again.CompletionToken }).ResponseAsync);
        Assert.That(wrong.StatusCode, Is.EqualTo(StatusCode.InvalidArgument));

        // The right token completes it, once.
        var right = new P.OrchestratorResponse { InstanceId = id, CompletionToken = again.CompletionToken };
        right.Actions.Add(new P.OrchestratorAction { Id = 0, CompleteOrchestration = new P.CompleteOrchestrationAction { OrchestrationStatus = P.OrchestrationStatus.Completed, Result = "\"done by hand\"" } });
        await sidecar.CompleteOrchestratorTaskAsync(right);
        var twice = await RefusedAsync(() => sidecar.CompleteOrchestratorTaskAsync(right).ResponseAsync);
        Assert.That(twice.StatusCode, Is.EqualTo(StatusCode.FailedPrecondition));
        await streamCts2.CancelAsync();

        state = await sidecar.WaitForInstanceCompletionAsync(new P.GetInstanceRequest { InstanceId = id, GetInputsAndOutputs = true }, cancellationToken: Timeout());
        Assert.That(state.OrchestrationState.OrchestrationStatus, Is.EqualTo(P.OrchestrationStatus.Completed));
        Assert.That(state.OrchestrationState.Output, Is.EqualTo("\"done by hand\""));
    }

    [Test]
    public async Task AnnouncedConcurrency_IsRespected_AndIdleStreamsGetHealthPings()
    {
        await using var host = await GrpcHost.StartAsync(_store, new Dictionary<string, string> { ["DurableAgents__Grpc__HealthPingInterval"] = "00:00:00.200" });
        using var channel = GrpcChannel.ForAddress(host.GrpcAddress);
        var sidecar = new P.TaskHubSidecarService.TaskHubSidecarServiceClient(channel);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var stream = sidecar.GetWorkItems(new P.GetWorkItemsRequest { MaxConcurrentOrchestrationWorkItems = 2, MaxConcurrentActivityWorkItems = 1 }, cancellationToken: cts.Token);

        // Idle: the first thing on the stream is a health ping.
        Assert.That(await stream.ResponseStream.MoveNext(cts.Token), Is.True);
        Assert.That(stream.ResponseStream.Current.RequestCase, Is.EqualTo(P.WorkItem.RequestOneofCase.HealthPing));

        for (var i = 0; i < 3; i++)
        {
            await sidecar.StartInstanceAsync(new P.CreateInstanceRequest { Name = "Sequence", InstanceId = $"c{i}", Input = "[]" });
        }

        // Two episodes arrive; the third waits for a free slot (pings keep coming meanwhile).
        var held = new List<P.WorkItem>();
        var pingsWhileFull = 0;
        while (pingsWhileFull < 3)
        {
            Assert.That(await stream.ResponseStream.MoveNext(cts.Token), Is.True);
            var item = stream.ResponseStream.Current;
            if (item.RequestCase == P.WorkItem.RequestOneofCase.OrchestratorRequest)
            {
                held.Add(item);
            }
            else if (held.Count == 2)
            {
                pingsWhileFull++;
            }
        }

        Assert.That(held, Has.Count.EqualTo(2), "no more than the announced 2 orchestration work items at once");
        await sidecar.AbandonTaskOrchestratorWorkItemAsync(new P.AbandonOrchestrationTaskRequest { CompletionToken = held[0].CompletionToken });
        P.WorkItem next;
        do
        {
            Assert.That(await stream.ResponseStream.MoveNext(cts.Token), Is.True);
            next = stream.ResponseStream.Current;
        }
        while (next.RequestCase == P.WorkItem.RequestOneofCase.HealthPing);
        Assert.That(next.OrchestratorRequest.InstanceId, Is.Not.EqualTo(held[1].OrchestratorRequest.InstanceId), "a freed slot takes the next item");
        await cts.CancelAsync();
    }

    internal static async Task<RpcException> RefusedAsync(Func<Task> call)
    {
        try
        {
            await call();
        }
        catch (RpcException ex)
        {
            return ex;
        }

        Assert.Fail("the call was not refused");
        throw new InvalidOperationException();
    }

    private static IHost ClientHost(Uri address)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddDurableTaskClient(b => b.UseGrpc(address.ToString()));
        return builder.Build();
    }

    /// <summary>A stock worker process (DurableAgents.Grpc.Worker) connected to the endpoint.</summary>
    private static async Task<Process> StartWorkerAsync(Uri address, string executions, int activities)
    {
        var dll = GrpcHost.Built("tests/DurableAgents.Grpc.Worker", "DurableAgents.Grpc.Worker.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        foreach (var arg in new[] { dll, "--address", address.ToString(), "--executions", executions, "--activities", activities.ToString(System.Globalization.CultureInfo.InvariantCulture) })
        {
            psi.ArgumentList.Add(arg);
        }

        var process = Process.Start(psi)!;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (await process.StandardOutput.ReadLineAsync(cts.Token) is { } line)
        {
            if (line.StartsWith("worker ready", StringComparison.Ordinal))
            {
                _ = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
                _ = process.StandardError.ReadToEndAsync(CancellationToken.None);
                return process;
            }
        }

        throw new InvalidOperationException("worker exited: " + await process.StandardError.ReadToEndAsync(cts.Token));
    }

    internal static async Task<(int ExitCode, string Output)> RunToExitAsync(string store, IDictionary<string, string> environment)
    {
        var dir = Directory.CreateTempSubdirectory("durableagents-grpc-refused").FullName;
        using var process = Process.Start(GrpcHost.HostStartInfo(store, dir, null, environment))!;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var stdout = process.StandardOutput.ReadToEndAsync(cts.Token);
        var stderr = process.StandardError.ReadToEndAsync(cts.Token);
        await process.WaitForExitAsync(cts.Token);
        Directory.Delete(dir, true);
        return (process.ExitCode, await stdout + await stderr);
    }

    /// <summary>Waits (on file-system events, with a re-count on each) until the pattern matches <paramref name="count"/> files.</summary>
    private static async Task WaitForFilesAsync(string dir, string pattern, int count, CancellationToken cancellationToken)
    {
        using var watcher = new FileSystemWatcher(dir) { EnableRaisingEvents = true };
        while (Directory.GetFiles(dir, pattern).Length < count)
        {
            var created = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            void OnCreated(object? s, FileSystemEventArgs e) => created.TrySetResult();
            watcher.Created += OnCreated;
            if (Directory.GetFiles(dir, pattern).Length >= count)
            {
                watcher.Created -= OnCreated;
                break;
            }

            await created.Task.WaitAsync(cancellationToken);
            watcher.Created -= OnCreated;
        }
    }
}

/// <summary>The endpoint's API key (store-independent: SQLite).</summary>
public sealed class GrpcApiKeyTests
{
    [Test]
    public async Task BeyondLoopback_AnApiKeyIsRequired()
    {
        // Without a key the host refuses to listen beyond loopback.
        var refused = await WorkerProcessTests.RunToExitAsync("sqlite", new Dictionary<string, string> { ["DurableAgents__Grpc__Address"] = "0.0.0.0" });
        Assert.That(refused.ExitCode, Is.Not.Zero);
        Assert.That(refused.Output, Does.Contain("DurableAgents:Grpc:ApiKey"));

        // With one, calls without it (or with a wrong one) are refused; the stock client with it works.
        const string Key = "test-key-1c0ffee";
        await using var host = await GrpcHost.StartAsync("sqlite", new Dictionary<string, string> { ["DurableAgents__Grpc__Address"] = "0.0.0.0", ["DurableAgents__Grpc__ApiKey"] = Key });
        var loopback = new Uri($"http://127.0.0.1:{host.GrpcAddress.Port}"); // this test talks to loopback only
        using var bare = GrpcChannel.ForAddress(loopback);
        var anonymous = await WorkerProcessTests.RefusedAsync(() => new P.TaskHubSidecarService.TaskHubSidecarServiceClient(bare).HelloAsync(new Empty()).ResponseAsync);
        Assert.That(anonymous.StatusCode, Is.EqualTo(StatusCode.Unauthenticated));
        Assert.That(anonymous.Status.Detail, Does.Not.Contain(Key));
        using var wrongChannel = ChannelFactory.Create(loopback.ToString(), "wrong-key");
        var wrong = await WorkerProcessTests.RefusedAsync(() => new P.TaskHubSidecarService.TaskHubSidecarServiceClient(wrongChannel).StartInstanceAsync(new P.CreateInstanceRequest { Name = "Sequence" }).ResponseAsync);
        Assert.That(wrong.StatusCode, Is.EqualTo(StatusCode.Unauthenticated));
        Assert.That(host.Output, Does.Not.Contain(Key), "the key is never logged");

        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddDurableTaskClient(b => b.UseGrpc(ChannelFactory.Create(loopback.ToString(), Key)));
        using var clientHost = builder.Build();
        var client = clientHost.Services.GetRequiredService<DurableTaskClient>();
        var id = await client.ScheduleNewOrchestrationInstanceAsync("Sequence", Array.Empty<string>());
        Assert.That((await client.GetInstanceAsync(id))!.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Pending));
    }
}

/// <summary>A workflow written with another language's SDK: JavaScript (@microsoft/durabletask-js, installed by scripts/services.sh).</summary>
public sealed class JavaScriptSdkTests
{
    [Test]
    public async Task JavaScriptWorkerAndClient_RunAWorkflow_ThatCallsAHostActivity()
    {
        var modules = NodeScript.Modules("DURABLEAGENTS_TEST_DURABLETASK_JS", "@microsoft/durabletask-js");
        await using var host = await GrpcHost.StartAsync("sqlite");
        using var result = await NodeScript.RunAsync("hello.js", modules, TimeSpan.FromSeconds(90), $"127.0.0.1:{host.GrpcAddress.Port}");
        Assert.That(result.RootElement.GetProperty("status").GetString(), Is.EqualTo("COMPLETED"));
        Assert.That(result.RootElement.GetProperty("output").GetString(), Is.EqualTo("[\"Hola, Lima!\",\"Hola, Oslo!\",\"Hello from JavaScript!\"]"));
    }
}
