using System.Diagnostics;
using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using System.Text;
using NUnit.Framework;

namespace DurableAgents.Functions.Tests;

/// <summary>The Azure Functions custom-handler contract and the deployable package.</summary>
[NonParallelizable]
public sealed class CustomHandlerTests
{
    private static int FreePort()
    {
        using var socket = new TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        return ((IPEndPoint)socket.LocalEndpoint).Port;
    }

    [Test]
    public async Task CustomHandlerPort_AppListensOnLoopbackThere_AndServesForwardedRequests()
    {
        var port = FreePort();
        var dll = HostProcess.HostDll;
        var data = Directory.CreateTempSubdirectory("da-ch").FullName;
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Path.GetDirectoryName(dll)! };
        psi.ArgumentList.Add(dll);
        psi.Environment["FUNCTIONS_CUSTOMHANDLER_PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        psi.Environment["DurableAgents__Sqlite__ConnectionString"] = $"Data Source={Path.Combine(data, "store.db")}";
        using var process = Process.Start(psi)!;
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            string? line;
            do
            {
                line = await process.StandardOutput.ReadLineAsync(cts.Token)
                    ?? throw new InvalidOperationException("host exited: " + await process.StandardError.ReadToEndAsync(cts.Token));
            }
            while (!line.Contains("Now listening on:", StringComparison.Ordinal));

            Assert.That(line, Does.Contain($"http://127.0.0.1:{port}"), "bound to loopback on the port the Functions host chose");
            _ = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
            _ = process.StandardError.ReadToEndAsync(CancellationToken.None);
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };

            // enableForwardingHttpRequest: the Functions host forwards the request as it came in.
            using var start = await http.PostAsync("/api/orchestrators/HelloCities/ch-1", new StringContent("[\"Bern\"]", Encoding.UTF8, "application/json"));
            Assert.That(start.StatusCode, Is.EqualTo(HttpStatusCode.Accepted), "behind the Functions host the function keys guard the API");
            Assert.That((await http.GetAsync("/healthz")).StatusCode, Is.EqualTo(HttpStatusCode.OK));

            // The Functions host buffers a handler's whole response: here a live stream ends in windows (Live:ResponseWindow's default).
            using (var gate = await http.PostAsync("/api/orchestrators/ApprovalGate/ch-gate", new StringContent("""{"subject":"Ship","summary":"Ship it?","approvers":["founder@example.com"]}""", Encoding.UTF8, "application/json")))
            {
                Assert.That(gate.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));
            }

            var stream = await http.GetStringAsync("/api/instances/ch-gate/stream", cts.Token); // returns: the response ended while the gate waits
            Assert.That(stream, Does.StartWith("retry: 500\n"));
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            Directory.Delete(data, true);
        }
    }

    [Test]
    public async Task PackageScript_BuildsZip_WithExecutableHostJsonAndEveryFunctionFolder()
    {
        var root = HostProcess.RepoRoot;
        var zip = Path.Combine(Directory.CreateTempSubdirectory("da-pkg").FullName, "durableagents.zip");
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = root };
        psi.ArgumentList.Add("scripts/package.sh");
        psi.ArgumentList.Add(zip);
        using var p = Process.Start(psi)!;
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        var output = p.StandardOutput.ReadToEndAsync(cts.Token);
        var errors = p.StandardError.ReadToEndAsync(cts.Token);
        await p.WaitForExitAsync(cts.Token);
        Assert.That(p.ExitCode, Is.Zero, await output + await errors);

        using var archive = ZipFile.OpenRead(zip);
        var names = archive.Entries.Select(e => e.FullName).ToHashSet();
        Assert.That(names, Does.Contain("host.json"));
        var executable = archive.GetEntry("DurableAgents.Functions")!;
        Assert.That((executable.ExternalAttributes >> 16) & 0b001_001_001, Is.Not.Zero, "the executable bit is kept");
        foreach (var folder in Directory.GetDirectories(Path.Combine(root, "functions", "DurableAgents.Functions", "Triggers")))
        {
            Assert.That(names, Does.Contain($"{Path.GetFileName(folder)}/function.json"));
        }

        File.Delete(zip);
    }
}
