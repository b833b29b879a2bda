using NUnit.Framework;

namespace DurableAgents.Infra.Tests;

/// <summary>Every template compiles and passes the linter (rules raised to errors in infra/bicepconfig.json) with no warning at all.</summary>
public sealed class BicepBuildTests
{
    public static IEnumerable<string> BicepFiles() =>
        Directory.GetFiles(Bicep.InfraDir, "*.bicep", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(Bicep.InfraDir, f)).Order(StringComparer.Ordinal);

    public static IEnumerable<string> ParamFiles() =>
        Directory.GetFiles(Bicep.InfraDir, "*.bicepparam", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(Bicep.InfraDir, f)).Order(StringComparer.Ordinal);

    [TestCaseSource(nameof(BicepFiles))]
    public async Task Build_EachBicepFile_CompilesWithoutErrorsOrWarnings(string file)
    {
        var (code, stdout, stderr) = await Bicep.RunAsync("build", Path.Combine(Bicep.InfraDir, file), "--stdout");

        Assert.That(code, Is.Zero, stderr);
        Assert.That(stderr.Trim(), Is.Empty, "warnings fail the build");
        Assert.That(stdout, Does.Contain("\"$schema\""));
    }

    [TestCaseSource(nameof(BicepFiles))]
    public async Task Lint_EachBicepFile_HasNoFindings(string file)
    {
        var (code, _, stderr) = await Bicep.RunAsync("lint", Path.Combine(Bicep.InfraDir, file));

        Assert.That(code, Is.Zero, stderr);
        Assert.That(stderr.Trim(), Is.Empty);
    }

    [TestCaseSource(nameof(ParamFiles))]
    public async Task BuildParams_EachParamFile_Compiles(string file)
    {
        var (code, stdout, stderr) = await Bicep.RunAsync("build-params", Path.Combine(Bicep.InfraDir, file), "--stdout");

        Assert.That(code, Is.Zero, stderr);
        Assert.That(stderr.Trim(), Is.Empty);
        Assert.That(stdout, Does.Contain("parametersJson"));
    }

    [Test]
    public void Templates_UseLocalModulesOnly()
    {
        foreach (var file in BicepFiles())
        {
            var text = File.ReadAllText(Path.Combine(Bicep.InfraDir, file));
            Assert.That(text, Does.Not.Contain("'br:").And.Not.Contain("'br/").And.Not.Contain("'ts:"), $"{file} uses a registry module, which cannot be restored offline");
        }
    }

    [Test]
    public void BicepConfig_RaisesLinterRulesToErrors_WithoutTheClockDependentRule()
    {
        var config = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(Bicep.InfraDir, "bicepconfig.json")));
        var rules = config.RootElement.GetProperty("analyzers").GetProperty("core").GetProperty("rules");

        Assert.That(rules.GetProperty("use-recent-api-versions").GetProperty("level").GetString(), Is.EqualTo("off"));
        var levels = rules.EnumerateObject().Where(r => r.Name != "use-recent-api-versions").Select(r => r.Value.GetProperty("level").GetString()).ToList();
        Assert.That(levels, Has.Count.GreaterThan(20));
        Assert.That(levels, Has.All.EqualTo("error"));
    }
}
