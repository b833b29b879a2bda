using DurableAgents.Functions.Hosting;
using Microsoft.AspNetCore.Antiforgery;

namespace DurableAgents.Functions.Dashboard;

/// <summary>
/// The dashboard's access rule, the management API's: with API keys configured, a valid key — as the
/// x-api-key header, or a cookie set by the login form (HttpOnly, SameSite=Strict); without keys, loopback
/// callers only. The cookie holds an HMAC of the key, never the key. Behind the Azure Functions host the dashboard function is anonymous (browsers cannot send
/// function keys), so there it requires API keys. Every POST also needs a valid antiforgery token.
/// </summary>
internal sealed class DashboardAuthFilter(ApiKeyFilter keys, IAntiforgery antiforgery) : IEndpointFilter
{
    public const string CookieName = "da_dashboard_key";

    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(next);
        var http = context.HttpContext;
        if (Denied(http) is { } denial)
        {
            return denial;
        }

        if (HttpMethods.IsPost(http.Request.Method) && !await antiforgery.IsRequestValidAsync(http).ConfigureAwait(false))
        {
            return DashboardPages.Notice(http, "Request refused", string.Empty, new Notice("The form expired or did not come from this dashboard. Go back, reload the page and try again."), StatusCodes.Status400BadRequest);
        }

        http.Response.Headers.XFrameOptions = "DENY";
        http.Response.Headers.ContentSecurityPolicy = "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'";
        http.Response.Headers.CacheControl = "no-store";
        return await next(context).ConfigureAwait(false);
    }

    /// <summary>Null when the request may see the dashboard; otherwise the redirect or refusal.</summary>
    public IResult? Denied(HttpContext http)
    {
        if (keys.HasKeys)
        {
            var cookie = http.Request.Cookies[CookieName];
            var header = http.Request.Headers[ApiKeyFilter.HeaderName].ToString();
            if ((cookie is { Length: > 0 } && keys.MatchesSession(cookie)) || (header.Length > 0 && keys.Matches(header)))
            {
                return null;
            }

            var back = http.Request.Path + http.Request.QueryString;
            return Results.Redirect("/dashboard/login?returnUrl=" + Uri.EscapeDataString(back));
        }

        if (keys.BehindFunctionsHost)
        {
            return DashboardPages.Notice(http, "Dashboard disabled", string.Empty, new Notice("On Azure the dashboard needs an API key: sign in with one of", "DurableAgents:Api:Keys"), StatusCodes.Status403Forbidden);
        }

        return keys.Authorize(http) is null
            ? null
            : DashboardPages.Notice(http, "Forbidden", string.Empty, new Notice("No API key is configured, so the dashboard answers loopback callers only. Set", "DurableAgents:Api:Keys"), StatusCodes.Status403Forbidden);
    }
}
