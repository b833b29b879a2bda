using System.Diagnostics;
using NUnit.Framework;

namespace DurableAgents.Engine.Tests.Runtime;

/// <summary>
/// Determinism mistakes in orchestration code fail the build: Microsoft.DurableTask.Analyzers
/// (DURABLE0001-0011 as errors, orchestrations/DurableTask.globalconfig) and, for what it does not
/// cover, orchestrations/BannedSymbols.txt (RS0030).
/// </summary>
public sealed class BannedSymbolsTests
{
    [Test]
    public async Task Build_NonDeterministicOrchestrator_FailsWithDurableAnalyzerAndBannedSymbolErrors()
    {
        var testDir = TestContext.CurrentContext.TestDirectory;
        var project = Path.GetFullPath(Path.Combine(testDir, "../../../AnalyzerFixture/BadOrchestration.csproj"));
        Assert.That(File.Exists(project), Is.True, project);
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "build", project, "-nologo", "-clp:NoSummary", "-p:UseSharedCompilation=false" })
        {
            psi.ArgumentList.Add(a);
        }

        using var process = Process.Start(psi)!;
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        var stdout = process.StandardOutput.ReadToEndAsync(cts.Token);
        var stderr = process.StandardError.ReadToEndAsync(cts.Token);
        await process.WaitForExitAsync(cts.Token);
        var output = await stdout + await stderr;

        Assert.That(process.ExitCode, Is.Not.Zero, "the build must fail");

        // Microsoft's analyzer: DateTime.UtcNow, Guid.NewGuid, Task.Delay, Task.Run.
        foreach (var id in new[] { "DURABLE0001", "DURABLE0002", "DURABLE0003", "DURABLE0004" })
        {
            Assert.That(output, Does.Contain($"error {id}:"), $"expected {id}\n{output}");
        }

        // What it does not cover, banned by BannedSymbols.txt.
        foreach (var symbol in new[] { "Random", "ConfigureAwait" })
        {
            Assert.That(output, Does.Match($"error RS0030: The symbol '[^']*{System.Text.RegularExpressions.Regex.Escape(symbol)}"), $"expected RS0030 for {symbol}\n{output}");
        }
    }
}
