using System.Diagnostics;
using System.Reflection;
using NUnit.Framework;

namespace DurableAgents.Infra.Tests;

/// <summary>The Bicep CLI from the Azure.Bicep.CommandLine.linux-x64 NuGet package.</summary>
internal static class Bicep
{
    public static string RepoRoot { get; } = FindRepoRoot();

    public static string InfraDir => Path.Combine(RepoRoot, "infra");

    private static string Executable
    {
        get
        {
            var package = typeof(Bicep).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "BicepPackagePath").Value!;
            var path = Path.Combine(package, "tools", "bicep");
            Assert.That(File.Exists(path), Is.True, $"bicep CLI not restored at {path}");
            return path;
        }
    }

    public static async Task<(int ExitCode, string StdOut, string StdErr)> RunAsync(params string[] args)
    {
        var psi = new ProcessStartInfo(Executable) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        // Offline: no registry restore, no telemetry.
        psi.Environment["BICEP_TELEMETRY_ENABLED"] = "false";
        using var p = Process.Start(psi)!;
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var stdout = p.StandardOutput.ReadToEndAsync(cts.Token);
        var stderr = p.StandardError.ReadToEndAsync(cts.Token);
        await p.WaitForExitAsync(cts.Token);
        return (p.ExitCode, await stdout, await stderr);
    }

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "DurableAgents.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("DurableAgents.sln not found above the test directory");
    }
}
