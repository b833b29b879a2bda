using System.Globalization;
using System.Text.Json;

namespace DurableAgents.Bench;

/// <summary>How a benchmark prints its figures: one JSON line, then a markdown table.</summary>
internal static class Report
{
    public static void Print(string scenario, IReadOnlyDictionary<string, object> figures)
    {
        Console.WriteLine(JsonSerializer.Serialize(new { scenario, figures }));
        Console.WriteLine();
        Console.WriteLine("| measure | value |");
        Console.WriteLine("|:---|---:|");
        foreach (var (k, v) in figures)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {k} | {v} |"));
        }
    }
}
