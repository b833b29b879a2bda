using System.Diagnostics;
using NUnit.Framework;

namespace DurableAgents.Infra.Tests;

/// <summary>scripts/deploy.sh refuses clearly, before doing anything, when it cannot work.</summary>
public sealed class DeployScriptTests
{
    private static async Task<(int Code, string Output)> RunAsync(string path, params string[] args)
    {
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Bicep.RepoRoot };
        psi.ArgumentList.Add(Path.Combine(Bicep.RepoRoot, "scripts", "deploy.sh"));
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["PATH"] = path;
        using var p = Process.Start(psi)!;
        var output = await p.StandardOutput.ReadToEndAsync() + await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, output);
    }

    [Test]
    public async Task Deploy_WithoutResourceGroup_PrintsUsage()
    {
        var (code, output) = await RunAsync("/usr/bin:/bin");

        Assert.That(code, Is.EqualTo(2));
        Assert.That(output, Does.Contain("usage: bash scripts/deploy.sh <resource-group>"));
    }

    [Test]
    public async Task Deploy_WithAnUnknownHostingMode_RefusesNamingThem_AndWritesNothing()
    {
        var (code, output) = await RunAsync("/usr/bin:/bin", "rg-never-created", "westeurope", "kubernetes");

        Assert.That(code, Is.EqualTo(2));
        Assert.That(output, Does.Contain("'kubernetes'").And.Contain("customHandler or isolated"));
        Assert.That(File.Exists(Path.Combine(Bicep.RepoRoot, ".azure", "rg-never-created.env")), Is.False);
    }

    [Test]
    public async Task Deploy_WithoutAzureCli_RefusesNamingIt_AndWritesNothing()
    {
        var empty = Directory.CreateTempSubdirectory("no-az").FullName;
        try
        {
            // bash itself must still be found: give it a PATH with only coreutils and no az.
            var (code, output) = await RunAsync($"{empty}:/bin", "rg-never-created");

            Assert.That(code, Is.EqualTo(1));
            Assert.That(output, Does.Contain("the Azure CLI (az) is not installed"));
            Assert.That(File.Exists(Path.Combine(Bicep.RepoRoot, ".azure", "rg-never-created.env")), Is.False, "nothing is generated before the checks pass");
        }
        finally
        {
            Directory.Delete(empty);
        }
    }

    [Test]
    public async Task Deploy_WithAzureCliNotLoggedIn_RefusesWithLoginHint()
    {
        var bin = Directory.CreateTempSubdirectory("fake-az").FullName;
        try
        {
            // A stand-in az that answers like a logged-out CLI.
            var az = Path.Combine(bin, "az");
            await File.WriteAllTextAsync(az, "#!/bin/sh\necho 'Please run az login to setup account.' >&2\nexit 1\n");
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(az, UnixFileMode.UserRead | UnixFileMode.UserExecute);
            }

            var (code, output) = await RunAsync($"{bin}:/usr/bin:/bin", "rg-never-created");

            Assert.That(code, Is.EqualTo(1));
            Assert.That(output, Does.Contain("run 'az login'"));
        }
        finally
        {
            Directory.Delete(bin, true);
        }
    }
}
