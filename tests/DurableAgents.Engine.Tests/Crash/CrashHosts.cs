using System.Diagnostics;
using NUnit.Framework;

namespace DurableAgents.Engine.Tests.Crash;

/// <summary>Launches tests/DurableAgents.Engine.CrashHost as a separate OS process.</summary>
internal static class CrashHosts
{
    public static Process Start(params string[] args) => Start(new Dictionary<string, string>(), args);

    /// <summary>Starts a crash host with extra environment (CRASHHOST_WORKER_ID, CRASHHOST_LEASE_SECONDS).</summary>
    public static Process Start(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var testDir = TestContext.CurrentContext.TestDirectory;
        var configuration = new DirectoryInfo(testDir).Parent!.Name; // bin/<Configuration>/net10.0
        var dll = Path.GetFullPath(Path.Combine(testDir, "../../../../DurableAgents.Engine.CrashHost/bin", configuration, "net10.0/DurableAgents.Engine.CrashHost.dll"));
        Assert.That(File.Exists(dll), Is.True, $"crash host not built at {dll}");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var (k, v) in environment)
        {
            psi.Environment[k] = v;
        }

        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        return Process.Start(psi)!;
    }

    /// <summary>Reads the host's output up to its "ready" line (log lines may come first); false if it ended without one.</summary>
    public static async Task<bool> WaitReadyAsync(Process host, ICollection<string> earlierLines, CancellationToken cancellationToken)
    {
        while (await host.StandardOutput.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line == "ready")
            {
                return true;
            }

            earlierLines.Add(line);
        }

        return false;
    }
}
