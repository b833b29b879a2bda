using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace DurableAgents.Functions.Dashboard;

/// <summary>How the dashboard writes values as text. The components HTML-encode everything they output; these only format.</summary>
internal static class Format
{
    private static readonly JsonSerializerOptions Pretty = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }; // for reading; the page encodes it

    /// <summary>URL-encodes a path segment or query value.</summary>
    public static string U(string? value) => Uri.EscapeDataString(value ?? string.Empty);

    /// <summary>The detail page of an instance.</summary>
    public static string InstanceHref(string instanceId) => "/dashboard/instances/" + U(instanceId);

    /// <summary>A time as UTC text.</summary>
    public static string T(DateTimeOffset? t) => t is { } v ? v.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + " UTC" : "—";

    /// <summary>A duration, short.</summary>
    public static string D(TimeSpan d) => d.TotalMilliseconds < 1000 ? $"{d.TotalMilliseconds:0} ms" : d.TotalSeconds < 120 ? $"{d.TotalSeconds:0.0} s" : d.TotalMinutes < 120 ? $"{d.TotalMinutes:0.0} min" : $"{d.TotalHours:0.0} h";

    /// <summary>A number for SVG coordinates.</summary>
    public static string N(double value) => value.ToString("0.#", CultureInfo.InvariantCulture);

    /// <summary>A cost.</summary>
    public static string Cost(decimal cost) => cost.ToString("0.######", CultureInfo.InvariantCulture);

    /// <summary>JSON text indented for reading (or as it is, when it is not JSON).</summary>
    public static string PrettyJson(string? json)
    {
        if (string.IsNullOrWhiteSpace(json))
        {
            return "—";
        }

        try
        {
            using var doc = JsonDocument.Parse(json);
            return JsonSerializer.Serialize(doc.RootElement, Pretty);
        }
        catch (JsonException)
        {
            return json;
        }
    }

    /// <summary>Shortens text for a table cell.</summary>
    public static string Short(string? text, int max) => text is null ? string.Empty : text.Length <= max ? text : text[..max] + "…";
}
