using System.Diagnostics;
using System.Text.RegularExpressions;

namespace DurableAgents.Bench;

/// <summary>Starts the Release host binary (custom handler) on a free loopback port, for the benchmarks that run it as a process.</summary>
internal static class HostBinary
{
    /// <summary>
    /// Starts it with <paramref name="environment"/> and waits for a line of its output matching
    /// <paramref name="ready"/>; the rest of its output goes to <paramref name="output"/> (or is drained).
    /// </summary>
    public static async Task<(Process Process, Match Ready)> StartAsync(IReadOnlyDictionary<string, string> environment, Regex ready, Func<StreamReader, Task>? output = null)
    {
        var dll = GrpcBench.Built("functions/DurableAgents.Functions", "DurableAgents.Functions.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Path.GetDirectoryName(dll)! };
        foreach (var arg in new[] { dll, "--urls", "http://127.0.0.1:0" })
        {
            psi.ArgumentList.Add(arg);
        }

        foreach (var (k, v) in environment)
        {
            psi.Environment[k] = v;
        }

        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        var process = Process.Start(psi)!;
        _ = process.StandardError.ReadToEndAsync();
        while (await process.StandardOutput.ReadLineAsync() is { } line)
        {
            if (ready.Match(line) is { Success: true } m)
            {
                _ = output is null ? process.StandardOutput.ReadToEndAsync() : output(process.StandardOutput);
                return (process, m);
            }
        }

        throw new InvalidOperationException($"the host exited before its output matched {ready}");
    }
}
