namespace DurableAgents.Engine.Tests.Crash;

/// <summary>Reads the per-process side files (<c>{path}.{pid}</c>) the crash hosts write.</summary>
internal static class SideFiles
{
    public static string ReadAll(string path)
    {
        var dir = Path.GetDirectoryName(path)!;
        if (!Directory.Exists(dir))
        {
            return string.Empty;
        }

        var text = new System.Text.StringBuilder();
        foreach (var file in Directory.GetFiles(dir, Path.GetFileName(path) + ".*"))
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            text.Append(reader.ReadToEnd());
        }

        return text.ToString();
    }

    public static void Delete(string path)
    {
        foreach (var file in Directory.GetFiles(Path.GetDirectoryName(path)!, Path.GetFileName(path) + ".*"))
        {
            File.Delete(file);
        }
    }
}
