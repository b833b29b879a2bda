using System.Text;

namespace DurableAgents.Orchestrations;

/// <summary>A line diff (longest common subsequence) of two texts: "- " removed, "+ " added; unchanged lines are left out.</summary>
public static class TextDiff
{
    /// <summary>The lines that changed from <paramref name="before"/> to <paramref name="after"/>.</summary>
    public static string Lines(string? before, string? after)
    {
        var a = (before ?? string.Empty).Split('\n');
        var b = (after ?? string.Empty).Split('\n');
        var lcs = new int[a.Length + 1, b.Length + 1];
        for (var i = a.Length - 1; i >= 0; i--)
        {
            for (var j = b.Length - 1; j >= 0; j--)
            {
                lcs[i, j] = a[i] == b[j] ? lcs[i + 1, j + 1] + 1 : Math.Max(lcs[i + 1, j], lcs[i, j + 1]);
            }
        }

        var diff = new StringBuilder();
        int x = 0, y = 0;
        while (x < a.Length || y < b.Length)
        {
            if (x < a.Length && y < b.Length && a[x] == b[y])
            {
                x++;
                y++;
            }
            else if (x < a.Length && (y == b.Length || lcs[x + 1, y] >= lcs[x, y + 1]))
            {
                diff.Append("- ").Append(a[x++]).Append('\n');
            }
            else
            {
                diff.Append("+ ").Append(b[y++]).Append('\n');
            }
        }

        return diff.ToString();
    }
}
