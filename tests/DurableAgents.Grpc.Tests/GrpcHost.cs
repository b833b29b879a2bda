using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.RegularExpressions;
using DurableAgents.Tests.Shared;
using NUnit.Framework;

namespace DurableAgents.Grpc.Tests;

/// <summary>
/// The real host binary (functions/DurableAgents.Functions, built with the solution) with the gRPC
/// endpoint on, on 127.0.0.1 with free ports, over a throw-away SQLite file or PostgreSQL task hub.
/// </summary>
public sealed partial class GrpcHost : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _dir;
    private readonly string? _postgresHub;
    private readonly ConcurrentQueue<string> _output;

    private GrpcHost(Process process, string dir, string? postgresHub, ConcurrentQueue<string> output, Uri http, Uri grpc)
    {
        _process = process;
        _dir = dir;
        _postgresHub = postgresHub;
        _output = output;
        HttpAddress = http;
        GrpcAddress = grpc;
    }

    public Uri HttpAddress { get; }

    public Uri GrpcAddress { get; }

    /// <summary>What the host printed so far.</summary>
    public string Output => string.Join('\n', _output);

    private static readonly SemaphoreSlim Printed = new(0);

    /// <summary>Waits until the host has printed a line that contains <paramref name="text"/> (woken by each line it prints).</summary>
    public async Task WaitForOutputAsync(string text, CancellationToken cancellationToken)
    {
        while (!_output.Any(l => l.Contains(text, StringComparison.Ordinal)))
        {
            await Printed.WaitAsync(TimeSpan.FromMilliseconds(500), cancellationToken);
        }
    }

    /// <summary>A binary of this repository built in the same configuration as the tests.</summary>
    public static string Built(string project, string dll)
    {
        var path = Path.Combine(RepoPaths.Output(project), dll);
        Assert.That(File.Exists(path), Is.True, $"{path} (build the solution first)");
        return path;
    }

    /// <summary>The PostgreSQL the test script started, or null (PostgreSQL tests are then ignored).</summary>
    public static string? Postgres => Environment.GetEnvironmentVariable("DURABLEAGENTS_TEST_POSTGRES");

    public static ProcessStartInfo HostStartInfo(string store, string dir, string? postgresHub, IDictionary<string, string>? environment)
    {
        var dll = Built("functions/DurableAgents.Functions", "DurableAgents.Functions.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Path.GetDirectoryName(dll)! };
        psi.ArgumentList.Add(dll);
        psi.ArgumentList.Add("--urls");
        psi.ArgumentList.Add("http://127.0.0.1:0");
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DurableAgents__Grpc__Enabled"] = "true";
        psi.Environment["DurableAgents__Grpc__Port"] = "0";
        psi.Environment["DurableAgents__MaxPollInterval"] = "00:00:00.100";
        psi.Environment["DurableAgents__WaitPollInterval"] = "00:00:00.500";
        if (store == "postgres")
        {
            psi.Environment["DurableAgents__Store"] = "Postgres";
            psi.Environment["DurableAgents__Postgres__ConnectionString"] = Postgres!;
            psi.Environment["DurableAgents__Postgres__TaskHub"] = postgresHub!;
        }
        else
        {
            psi.Environment["DurableAgents__Sqlite__ConnectionString"] = $"Data Source={Path.Combine(dir, "store.db")}";
        }

        foreach (var (k, v) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[k] = v;
        }

        return psi;
    }

    public static async Task<GrpcHost> StartAsync(string store, IDictionary<string, string>? environment = null)
    {
        if (store == "postgres" && Postgres is null)
        {
            Assert.Ignore("DURABLEAGENTS_TEST_POSTGRES is not set (scripts/test.sh starts PostgreSQL)");
        }

        var dir = Path.Combine(Path.GetTempPath(), "durableagents-grpc", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var hub = store == "postgres" ? "grpc" + Guid.NewGuid().ToString("N")[..10] : null;
        var process = Process.Start(HostStartInfo(store, dir, hub, environment))!;
        var output = new ConcurrentQueue<string>();
        _ = DrainAsync(process.StandardError, output);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        Uri? http = null;
        while (true)
        {
            var line = await process.StandardOutput.ReadLineAsync(cts.Token)
                ?? throw new InvalidOperationException("host exited:\n" + string.Join('\n', output));
            output.Enqueue(line);
            if (http is null && ListeningOn().Match(line) is { Success: true } m)
            {
                http = new Uri(m.Groups[1].Value);
            }

            if (GrpcListening().Match(line) is { Success: true } g)
            {
                _ = DrainAsync(process.StandardOutput, output);
                return new GrpcHost(process, dir, hub, output, http ?? throw new InvalidOperationException("no HTTP address before the gRPC one"), new Uri(g.Groups[1].Value));
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        if (_postgresHub is not null)
        {
            await using var c = new Npgsql.NpgsqlConnection(Postgres);
            await c.OpenAsync();
            await using var drop = new Npgsql.NpgsqlCommand($"DROP SCHEMA IF EXISTS durableagents_{_postgresHub} CASCADE", c);
            await drop.ExecuteNonQueryAsync();
        }

        try
        {
            Directory.Delete(_dir, true);
        }
        catch (IOException)
        {
        }
    }

    private static async Task DrainAsync(StreamReader reader, ConcurrentQueue<string> output)
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            output.Enqueue(line);
            Printed.Release();
            while (output.Count > 2000 && output.TryDequeue(out _))
            {
            }
        }
    }

    [GeneratedRegex(@"Now listening on: (http://127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningOn();

    [GeneratedRegex(@"gRPC endpoint listening on (http://\S+)")]
    private static partial Regex GrpcListening();
}
