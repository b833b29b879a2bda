using System.Diagnostics;
using System.Text.Json;
using NUnit.Framework;

namespace DurableAgents.Tests.Shared;

/// <summary>
/// A cross-language test's Node script (js/ beside the test assembly) run against npm packages that scripts/services.sh
/// installs and names in an environment variable; the test is ignored (and counted as skipped) when it is not set.
/// </summary>
internal static class NodeScript
{
    /// <summary>The node_modules directory named by <paramref name="variable"/>, or the test is ignored.</summary>
    public static string Modules(string variable, string package)
    {
        var modules = Environment.GetEnvironmentVariable(variable);
        if (string.IsNullOrEmpty(modules))
        {
            Assert.Ignore($"{variable} is not set (scripts/test.sh installs {package} from npm)");
        }

        return modules!;
    }

    /// <summary>Runs the script to its end; it must exit 0. Its last line of output, as JSON.</summary>
    public static async Task<JsonDocument> RunAsync(string script, string modules, TimeSpan timeout, params string[] arguments)
    {
        var psi = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(TestContext.CurrentContext.TestDirectory, "js", script));
        foreach (var argument in arguments)
        {
            psi.ArgumentList.Add(argument);
        }

        psi.Environment["NODE_PATH"] = modules;
        using var node = Process.Start(psi)!;
        using var cts = new CancellationTokenSource(timeout);
        var stdout = node.StandardOutput.ReadToEndAsync(cts.Token);
        var stderr = node.StandardError.ReadToEndAsync(cts.Token);
        await node.WaitForExitAsync(cts.Token);
        var output = await stdout;
        Assert.That(node.ExitCode, Is.Zero, output + await stderr);
        return JsonDocument.Parse(output.Trim().Split('\n')[^1]);
    }
}
