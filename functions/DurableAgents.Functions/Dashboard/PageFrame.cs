using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Http.HttpResults;

namespace DurableAgents.Functions.Dashboard;

/// <summary>What every page's frame shows: the title, the current section, an auto-refresh, and the last action's result.</summary>
/// <param name="Title">The page's title and heading.</param>
/// <param name="Section">The navigation entry to mark as current ("" for none).</param>
/// <param name="RefreshSeconds">Reload the page every so many seconds.</param>
/// <param name="Flash">The last action's success message.</param>
/// <param name="Error">The last action's failure message.</param>
public sealed record PageFrame(string Title, string Section, int? RefreshSeconds = null, string? Flash = null, string? Error = null);

/// <summary>A short page: a sentence, an optional code value, and an optional link on.</summary>
/// <param name="Text">The sentence.</param>
/// <param name="Code">A value shown as code after it (an instance id).</param>
/// <param name="LinkHref">Where to go on.</param>
/// <param name="LinkText">The link's text.</param>
/// <param name="IsError">Shown as an alert.</param>
public sealed record Notice(string Text, string? Code = null, string? LinkHref = null, string? LinkText = null, bool IsError = false);

/// <summary>The hidden field a POST form carries (the antiforgery token).</summary>
/// <param name="Name">The field's name.</param>
/// <param name="Value">The token.</param>
public sealed record FormToken(string Name, string Value)
{
    public static FormToken For(IAntiforgery antiforgery, HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(antiforgery);
        var tokens = antiforgery.GetAndStoreTokens(http);
        return new FormToken(tokens.FormFieldName, tokens.RequestToken ?? string.Empty);
    }
}

/// <summary>Renders the dashboard's pages: one Razor component per page, given its frame and its typed model.</summary>
public static class DashboardPages
{
    /// <summary>The cookie that carries an action's result to the next page.</summary>
    public const string FlashCookie = "da_flash";

    /// <summary>A page component with its model (a <c>Model</c> parameter), inside the frame.</summary>
    public static IResult Render<TPage>(HttpContext http, string title, string section, object? model = null, int status = StatusCodes.Status200OK, int? refreshSeconds = null)
        where TPage : IComponent
    {
        var parameters = new Dictionary<string, object?> { ["Frame"] = Frame(http, title, section, refreshSeconds) };
        if (model is not null)
        {
            parameters["Model"] = model;
        }

        return new RazorComponentResult<TPage>(parameters) { StatusCode = status, ContentType = "text/html; charset=utf-8" };
    }

    /// <summary>A page of one sentence.</summary>
    public static IResult Notice(HttpContext http, string title, string section, Notice notice, int status) =>
        Render<Pages.NoticePage>(http, title, section, notice, status);

    private static PageFrame Frame(HttpContext http, string title, string section, int? refreshSeconds)
    {
        ArgumentNullException.ThrowIfNull(http);
        if (http.Request.Cookies[FlashCookie] is { Length: > 0 } cookie)
        {
            http.Response.Cookies.Delete(FlashCookie, new CookieOptions { Path = "/dashboard" });
            var bar = cookie.IndexOf('|', StringComparison.Ordinal);
            if (bar > 0)
            {
                var text = cookie[(bar + 1)..];
                return cookie[..bar] == "ok" ? new PageFrame(title, section, refreshSeconds, Flash: text) : new PageFrame(title, section, refreshSeconds, Error: text);
            }
        }

        return new PageFrame(title, section, refreshSeconds);
    }
}
