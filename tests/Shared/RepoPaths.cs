using NUnit.Framework;

namespace DurableAgents.Tests.Shared;

/// <summary>
/// Paths in this repository seen from a test's output directory (linked into the test projects
/// that start the repository's binaries, including those that must not reference the engine).
/// </summary>
internal static class RepoPaths
{
    /// <summary>The repository root (where DurableAgents.sln is).</summary>
    public static string Root
    {
        get
        {
            var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "DurableAgents.sln")))
            {
                dir = dir.Parent;
            }

            return dir?.FullName ?? throw new InvalidOperationException("DurableAgents.sln not found above the test directory");
        }
    }

    /// <summary>The build configuration of the running tests (bin/&lt;Configuration&gt;/net10.0).</summary>
    public static string Configuration => new DirectoryInfo(TestContext.CurrentContext.TestDirectory).Parent!.Name;

    /// <summary>A project's output directory in the tests' configuration.</summary>
    public static string Output(string project) => Path.Combine(Root, project, "bin", Configuration, "net10.0");
}
