using DurableAgents.Tests.Support;
using System.Diagnostics;
using System.Text.RegularExpressions;
using DurableAgents.Tests.Shared;
using NUnit.Framework;

namespace DurableAgents.Functions.Tests;

/// <summary>The real host binary on 127.0.0.1 with a throw-away SQLite store.</summary>
public sealed partial class HostProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _dir;

    private HostProcess(Process process, string dir, Uri baseAddress)
    {
        _process = process;
        _dir = dir;
        BaseAddress = baseAddress;
    }

    public Uri BaseAddress { get; }

    /// <summary>The SQLite file of a host started without its own connection string.</summary>
    public string StorePath => Path.Combine(_dir, "store.db");

    /// <summary>The repository root (where DurableAgents.sln is).</summary>
    /// <summary>The repository root (where DurableAgents.sln is).</summary>
    public static string RepoRoot => RepoPaths.Root;

    /// <summary>The host binary built in the same configuration as the tests.</summary>
    public static string HostDll
    {
        get
        {
            var dll = Path.Combine(RepoPaths.Output("functions/DurableAgents.Functions"), "DurableAgents.Functions.dll");
            Assert.That(File.Exists(dll), Is.True, dll);
            return dll;
        }
    }

    public static async Task<HostProcess> StartAsync(IDictionary<string, string>? environment = null)
    {
        var dll = HostDll;
        var dir = Path.Combine(Path.GetTempPath(), "durableagents-host", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Path.GetDirectoryName(dll)! };
        psi.ArgumentList.Add(dll);
        psi.ArgumentList.Add("--urls");
        psi.ArgumentList.Add("http://127.0.0.1:0");
        psi.Environment["DurableAgents__Sqlite__ConnectionString"] = $"Data Source={Path.Combine(dir, "store.db")}";
        psi.Environment["DurableAgents__MaxPollInterval"] = "00:00:00.050";
        foreach (var (k, v) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[k] = v;
        }

        var process = Process.Start(psi)!;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (true)
        {
            var line = await process.StandardOutput.ReadLineAsync(cts.Token) ?? throw new InvalidOperationException("host exited: " + await process.StandardError.ReadToEndAsync(cts.Token));
            var match = ListeningOn().Match(line);
            if (match.Success)
            {
                var host = new HostProcess(process, dir, new Uri(match.Groups[1].Value));
                _ = host.DrainAsync(process.StandardOutput);
                _ = host.DrainAsync(process.StandardError);
                return host;
            }
        }
    }

    /// <summary>Runs the host expecting it to refuse to start; returns its exit code and everything it printed.</summary>
    public static async Task<(int ExitCode, string Output)> RunToExitAsync(IDictionary<string, string> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        var dll = HostDll;
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Path.GetDirectoryName(dll)! };
        psi.ArgumentList.Add(dll);
        psi.ArgumentList.Add("--urls");
        psi.ArgumentList.Add("http://127.0.0.1:0");
        psi.Environment["DurableAgents__Sqlite__ConnectionString"] = $"Data Source={Path.Combine(Path.GetTempPath(), "durableagents-host-" + Guid.NewGuid().ToString("N") + ".db")}";
        foreach (var (k, v) in environment)
        {
            psi.Environment[k] = v;
        }

        using var process = Process.Start(psi)!;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var stdout = process.StandardOutput.ReadToEndAsync(cts.Token);
        var stderr = process.StandardError.ReadToEndAsync(cts.Token);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }

        return (process.ExitCode, await stdout + await stderr);
    }

    /// <summary>Polls the management API until the instance is neither pending nor running; returns its status.</summary>
    public static async Task<System.Text.Json.JsonElement> WaitUntilFinishedAsync(HttpClient client, string instanceId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        System.Text.Json.JsonElement status;
        do
        {
            await Task.Delay(50, cancellationToken);
            status = await System.Net.Http.Json.HttpClientJsonExtensions.GetFromJsonAsync<System.Text.Json.JsonElement>(client, $"/api/instances/{Uri.EscapeDataString(instanceId)}", cancellationToken);
        }
        while (status.GetProperty("runtimeStatus").GetString() is "Running" or "Pending");
        return status;
    }

    /// <summary>Settings that put both model profiles (fast, strong) on the local OpenAI-compatible server.</summary>
    public static Dictionary<string, string> LocalModel(FakeOpenAiServer model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var env = new Dictionary<string, string>();
        foreach (var profile in new[] { "fast", "strong" })
        {
            var at = $"DurableAgents__Llm__Profiles__{profile}__Providers__0__";
            env[at + "Name"] = "local-" + profile;
            env[at + "Kind"] = "OpenAICompatible";
            env[at + "Endpoint"] = model.OpenAiEndpoint.ToString();
            env[at + "Model"] = "gpt-test";
            env[at + "ApiKey"] = "sk-test";
        }

        return env;
    }

    /// <summary>Kills the host at once (SIGKILL, no shutdown), as a crash or a lost machine would.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
    }

    public HttpClient CreateClient() => new() { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        try
        {
            Directory.Delete(_dir, true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>What the host printed after it started listening (stdout and stderr, logs included).</summary>
    public string Output => string.Join("\n", _output);

    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _output = new();

    private async Task DrainAsync(StreamReader reader)
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            _output.Enqueue(line);
        }
    }

    [GeneratedRegex(@"Now listening on: (http://127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningOn();
}
