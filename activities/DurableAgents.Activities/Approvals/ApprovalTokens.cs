using System.ComponentModel.DataAnnotations;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;

namespace DurableAgents.Activities.Approvals;

/// <summary>Approval link settings (DurableAgents:Approvals).</summary>
public sealed class ApprovalOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "DurableAgents:Approvals";

    /// <summary>
    /// HMAC-SHA256 key, base64, at least 32 bytes; from Key Vault in production. When empty a random
    /// key is made at start (with a warning): links then stop working when the host restarts.
    /// </summary>
    public string? SigningKey { get; set; }

    /// <summary>Public base URL that links point at.</summary>
    /// <value>The default value is http://localhost:7071.</value>
    [Required]
    public string BaseUrl { get; set; } = "http://localhost:7071";
}

/// <summary>What a token grants: one decision, by one approver, on one instance's event, until it expires.</summary>
public sealed record ApprovalClaims(
    [property: JsonPropertyName("i")] string InstanceId,
    [property: JsonPropertyName("e")] string EventName,
    [property: JsonPropertyName("d")] string Decision,
    [property: JsonPropertyName("a")] string Approver,
    [property: JsonPropertyName("x")] long ExpiresAtUnixSeconds,
    [property: JsonPropertyName("n")] string Nonce)
{
    /// <summary>When the token expires.</summary>
    [JsonIgnore]
    public DateTimeOffset ExpiresAt => DateTimeOffset.FromUnixTimeSeconds(ExpiresAtUnixSeconds);
}

/// <summary>Why a token was refused.</summary>
public enum ApprovalTokenProblem
{
    /// <summary>The token verified.</summary>
    None,

    /// <summary>Not a token, or its signature does not match (forged or altered).</summary>
    Invalid,

    /// <summary>Signed by us, but past its expiry.</summary>
    Expired,
}

/// <summary>
/// Signs and verifies approval tokens: <c>base64url(json claims) "." base64url(HMAC-SHA256)</c>.
/// Claims name nothing secret (instance id, event, decision, approver, expiry, a random nonce).
/// </summary>
public sealed class ApprovalTokens
{
    private readonly byte[] _key;
    private readonly TimeProvider _time;

    /// <summary>Created by DI.</summary>
    public ApprovalTokens(IOptions<ApprovalOptions> options, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        _time = time;
        var configured = options.Value.SigningKey;
        if (string.IsNullOrWhiteSpace(configured))
        {
            _key = RandomNumberGenerator.GetBytes(32);
            IsEphemeralKey = true;
        }
        else
        {
            try
            {
                _key = Convert.FromBase64String(configured);
            }
            catch (FormatException ex)
            {
                throw new InvalidOperationException("DurableAgents:Approvals:SigningKey must be base64.", ex);
            }

            if (_key.Length < 32)
            {
                throw new InvalidOperationException("DurableAgents:Approvals:SigningKey must hold at least 32 bytes.");
            }
        }

        BaseUrl = options.Value.BaseUrl.TrimEnd('/');
    }

    /// <summary>True when no key was configured and a random one is in use.</summary>
    public bool IsEphemeralKey { get; }

    /// <summary>Public base URL of the host.</summary>
    public string BaseUrl { get; }

    /// <summary>Creates a signed token.</summary>
    public string Create(string instanceId, string eventName, string decision, string approver, DateTimeOffset expiresAt)
    {
        var claims = new ApprovalClaims(instanceId, eventName, decision, approver, expiresAt.ToUnixTimeSeconds(), Convert.ToHexString(RandomNumberGenerator.GetBytes(16)));
        var payload = Base64Url(JsonSerializer.SerializeToUtf8Bytes(claims));
        return $"{payload}.{Base64Url(HMACSHA256.HashData(_key, Encoding.ASCII.GetBytes(payload)))}";
    }

    /// <summary>The link for a token.</summary>
    public Uri LinkFor(string token) => new($"{BaseUrl}/approve/{token}");

    /// <summary>Verifies a token: signature first (constant time), then expiry.</summary>
    public (ApprovalTokenProblem Problem, ApprovalClaims? Claims) Verify(string? token)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 2048)
        {
            return (ApprovalTokenProblem.Invalid, null);
        }

        var dot = token.IndexOf('.', StringComparison.Ordinal);
        if (dot <= 0 || dot == token.Length - 1)
        {
            return (ApprovalTokenProblem.Invalid, null);
        }

        var payload = token[..dot];
        var expected = HMACSHA256.HashData(_key, Encoding.ASCII.GetBytes(payload));
        if (!TryFromBase64Url(token[(dot + 1)..], out var signature) || !CryptographicOperations.FixedTimeEquals(expected, signature))
        {
            return (ApprovalTokenProblem.Invalid, null);
        }

        ApprovalClaims? claims;
        try
        {
            claims = TryFromBase64Url(payload, out var json) ? JsonSerializer.Deserialize<ApprovalClaims>(json) : null;
        }
        catch (JsonException)
        {
            claims = null;
        }

        if (claims is null)
        {
            return (ApprovalTokenProblem.Invalid, null);
        }

        return claims.ExpiresAt <= _time.GetUtcNow() ? (ApprovalTokenProblem.Expired, claims) : (ApprovalTokenProblem.None, claims);
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static bool TryFromBase64Url(string text, out byte[] bytes)
    {
        var s = text.Replace('-', '+').Replace('_', '/');
        s = s.PadRight(s.Length + ((4 - (s.Length % 4)) % 4), '=');
        try
        {
            bytes = Convert.FromBase64String(s);
            return true;
        }
        catch (FormatException)
        {
            bytes = [];
            return false;
        }
    }
}
