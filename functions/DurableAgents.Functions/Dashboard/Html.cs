using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.AspNetCore.Antiforgery;

namespace DurableAgents.Functions.Dashboard;

/// <summary>Server-rendered HTML for the dashboard: every value is HTML-encoded on the way in.</summary>
internal static class Html
{
    private static readonly JsonSerializerOptions Pretty = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }; // for reading; the text is HTML-encoded after

    /// <summary>The cookie that carries an action's result to the next page.</summary>
    public const string FlashCookie = "da_flash";

    /// <summary>HTML-encodes a value.</summary>
    public static string E(object? value) => HtmlEncoder.Default.Encode(Convert.ToString(value, CultureInfo.InvariantCulture) ?? string.Empty);

    /// <summary>URL-encodes a path segment or query value.</summary>
    public static string U(string? value) => Uri.EscapeDataString(value ?? string.Empty);

    /// <summary>A time as UTC text.</summary>
    public static string T(DateTimeOffset? t) => t is { } v ? v.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + " UTC" : "—";

    /// <summary>A duration, short.</summary>
    public static string D(TimeSpan d) => d.TotalMilliseconds < 1000 ? $"{d.TotalMilliseconds:0} ms" : d.TotalSeconds < 120 ? $"{d.TotalSeconds:0.0} s" : d.TotalMinutes < 120 ? $"{d.TotalMinutes:0.0} min" : $"{d.TotalHours:0.0} h";

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

    /// <summary>A status badge.</summary>
    public static string Badge(string status) => $"<span class=\"badge s-{E(status.ToLowerInvariant())}\">{E(status)}</span>";

    /// <summary>The hidden antiforgery field of a POST form.</summary>
    public static string Antiforgery(IAntiforgery antiforgery, HttpContext http)
    {
        var tokens = antiforgery.GetAndStoreTokens(http);
        return $"<input type=\"hidden\" name=\"{E(tokens.FormFieldName)}\" value=\"{E(tokens.RequestToken)}\">";
    }

    /// <summary>A whole page: navigation, skip link, heading, an optional flash message, and the body.</summary>
    public static IResult Page(HttpContext http, string title, string body, string current, int? refreshSeconds = null, int status = StatusCodes.Status200OK)
    {
        ArgumentNullException.ThrowIfNull(http);
        var (flash, error) = (string.Empty, string.Empty);
        if (http.Request.Cookies[FlashCookie] is { Length: > 0 } cookie)
        {
            http.Response.Cookies.Delete(FlashCookie, new CookieOptions { Path = "/dashboard" });
            var bar = cookie.IndexOf('|', StringComparison.Ordinal);
            if (bar > 0)
            {
                (flash, error) = cookie[..bar] == "ok" ? (cookie[(bar + 1)..], string.Empty) : (string.Empty, cookie[(bar + 1)..]);
            }
        }
        var sb = new StringBuilder();
        sb.Append("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
        sb.Append(CultureInfo.InvariantCulture, $"<title>{E(title)} · DurableAgents</title><link rel=\"stylesheet\" href=\"/dashboard/assets/dashboard.css\">");
        if (refreshSeconds is { } r)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<meta http-equiv=\"refresh\" content=\"{r}\">");
        }

        sb.Append("</head><body><a class=\"skip\" href=\"#main\">Skip to content</a><header><span class=\"brand\">DurableAgents</span><nav aria-label=\"Dashboard\"><ul>");
        foreach (var (href, label) in new[] { ("/dashboard", "Instances"), ("/dashboard/costs", "Costs"), ("/dashboard/schedules", "Schedules"), ("/dashboard/outbox", "Outbox") })
        {
            var here = label == current ? " aria-current=\"page\"" : string.Empty;
            sb.Append(CultureInfo.InvariantCulture, $"<li><a href=\"{href}\"{here}>{label}</a></li>");
        }

        sb.Append("</ul></nav></header><main id=\"main\" tabindex=\"-1\">");
        sb.Append(CultureInfo.InvariantCulture, $"<h1>{E(title)}</h1>");
        if (flash.Length > 0)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<p class=\"flash ok\" role=\"status\">{E(flash)}</p>");
        }

        if (error.Length > 0)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<p class=\"flash error\" role=\"alert\">{E(error)}</p>");
        }

        sb.Append(body).Append("</main><script src=\"/dashboard/assets/dashboard.js\" defer></script></body></html>");
        return Results.Content(sb.ToString(), "text/html; charset=utf-8", Encoding.UTF8, status);
    }
}
