using System.Security.Cryptography;
using System.Text;

namespace DurableAgents.Functions.Hosting;

/// <summary>
/// Management routes require an API key in the <c>x-api-key</c> header, compared in constant time
/// against DurableAgents:Api:Keys (from configuration or Key Vault references). With no key
/// configured the API answers loopback callers only, with a start-up warning; it is never silently
/// open on a public interface. Behind the Functions host (custom handler) every request arrives
/// from loopback, so there the function keys (authLevel "function" in function.json) guard the API
/// unless API keys are configured too.
/// </summary>
internal sealed partial class ApiKeyFilter : IEndpointFilter
{
    public const string HeaderName = "x-api-key";

    private readonly byte[][] _keyHashes;
    private readonly bool _behindFunctionsHost;

    public ApiKeyFilter(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        _keyHashes = ConfiguredKeys(configuration).Select(Hash).ToArray();
        _behindFunctionsHost = !string.IsNullOrEmpty(configuration["FUNCTIONS_CUSTOMHANDLER_PORT"]);
    }

    public bool HasKeys => _keyHashes.Length > 0;

    /// <summary>True when requests arrive through the Azure Functions host (custom handler).</summary>
    public bool BehindFunctionsHost => _behindFunctionsHost;

    public static IReadOnlyList<string> ConfiguredKeys(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var section = configuration.GetSection("DurableAgents:Api:Keys");
        var keys = section.GetChildren().Select(c => c.Value).ToList();
        keys.Add(section.Value);
        return keys.SelectMany(k => (k ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
    }

    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(next);
        var denial = Authorize(context.HttpContext);
        return denial is null ? await next(context).ConfigureAwait(false) : denial;
    }

    /// <summary>Null when the request may proceed, otherwise the problem to return.</summary>
    public IResult? Authorize(HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(http);
        if (_keyHashes.Length > 0)
        {
            var presented = http.Request.Headers[HeaderName].ToString();
            if (presented.Length > 0 && Matches(presented))
            {
                return null;
            }

            http.Response.Headers.WWWAuthenticate = "ApiKey header=\"x-api-key\"";
            return TypedResults.Problem(
                statusCode: StatusCodes.Status401Unauthorized,
                title: "Unauthorized",
                detail: presented.Length == 0 ? $"The {HeaderName} header is required." : $"The {HeaderName} header does not hold a valid key.");
        }

        if (_behindFunctionsHost)
        {
            return null; // the Functions host checked the function key before forwarding
        }

        var remote = http.Connection.RemoteIpAddress;
        if (remote is not null && System.Net.IPAddress.IsLoopback(remote))
        {
            return null;
        }

        return TypedResults.Problem(
            statusCode: StatusCodes.Status403Forbidden,
            title: "Forbidden",
            detail: "No API key is configured (DurableAgents:Api:Keys), so the management API answers loopback callers only.");
    }

    /// <summary>True when <paramref name="presented"/> is a configured key (constant-time).</summary>
    public bool Matches(string presented)
    {
        // Hashing first makes every comparison the same length; every configured key is compared,
        // so the time taken does not tell which key, or how much of one, matched.
        var hash = Hash(presented);
        var match = false;
        foreach (var key in _keyHashes)
        {
            match |= CryptographicOperations.FixedTimeEquals(hash, key);
        }

        return match;
    }

    /// <summary>
    /// A dashboard session token for a valid key: an HMAC of the key's hash, so the cookie never holds the
    /// key itself, and removing the key from configuration ends its sessions.
    /// </summary>
    public static string SessionToken(string key) => Convert.ToHexString(HMACSHA256.HashData(Hash(key), SessionLabel));

    /// <summary>True when <paramref name="token"/> is the session token of a configured key (constant-time).</summary>
    public bool MatchesSession(string token)
    {
        byte[] presented;
        try
        {
            presented = Convert.FromHexString(token);
        }
        catch (FormatException)
        {
            return false;
        }

        var match = false;
        foreach (var key in _keyHashes)
        {
            match |= CryptographicOperations.FixedTimeEquals(HMACSHA256.HashData(key, SessionLabel), presented);
        }

        return match;
    }

    private static ReadOnlySpan<byte> SessionLabel => "durableagents-dashboard-session"u8;

    private static byte[] Hash(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));
}

/// <summary>Warns at start when the management API has no key (loopback-only).</summary>
internal sealed partial class ApiKeyStartupCheck(ApiKeyFilter filter, IConfiguration configuration, ILogger<ApiKeyStartupCheck> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!filter.HasKeys)
        {
            if (string.IsNullOrEmpty(configuration["FUNCTIONS_CUSTOMHANDLER_PORT"]))
            {
                LogLoopbackOnly(logger);
            }
            else
            {
                LogFunctionKeysOnly(logger);
            }
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(EventId = 2100, Level = LogLevel.Warning, Message = "No API key is configured (DurableAgents:Api:Keys): the management API answers loopback callers only.")]
    private static partial void LogLoopbackOnly(ILogger logger);

    [LoggerMessage(EventId = 2101, Level = LogLevel.Warning, Message = "No API key is configured (DurableAgents:Api:Keys): the management API relies on the Functions host's function keys.")]
    private static partial void LogFunctionKeysOnly(ILogger logger);
}

/// <summary>Registration.</summary>
internal static class ApiKeyAuthenticationExtensions
{
    public static void AddApiKeyAuthentication(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<ApiKeyFilter>();
        builder.Services.AddHostedService<ApiKeyStartupCheck>();
        builder.Services.AddHostedService<ApprovalKeyStartupCheck>();
    }
}

/// <summary>Warns at start when approval links are signed with a random per-process key.</summary>
internal sealed partial class ApprovalKeyStartupCheck(DurableAgents.Activities.Approvals.ApprovalTokens tokens, ILogger<ApprovalKeyStartupCheck> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (tokens.IsEphemeralKey)
        {
            LogEphemeralKey(logger);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(EventId = 2102, Level = LogLevel.Warning, Message = "No approval signing key is configured (DurableAgents:Approvals:SigningKey): a random key is used, so approval links stop working when this process restarts and are not accepted by other hosts.")]
    private static partial void LogEphemeralKey(ILogger logger);
}
