using System.ClientModel;
using System.Text.Json;
using DurableAgents.Activities.Contracts.Llm;
using Polly.CircuitBreaker;
using Polly.Timeout;

namespace DurableAgents.Activities.Llm;

/// <summary>
/// Turns a provider failure into a typed <see cref="ApplicationFailureException"/>: transient ones
/// (429, 408, 5xx, timeouts, refused connections, open circuit) are retryable; a content-filter refusal,
/// bad credentials and an invalid request are not. Messages name the provider and status, never a key
/// or a prompt.
/// </summary>
public static class ModelErrors
{
    /// <summary>Classifies <paramref name="exception"/> from a call to <paramref name="provider"/>.</summary>
    public static ApplicationFailureException Classify(Exception exception, string provider, TimeSpan? retryAfter = null)
    {
        ArgumentNullException.ThrowIfNull(exception);
        for (var e = exception; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case ApplicationFailureException afe:
                    return afe;
                case BrokenCircuitException:
                    return Transient($"The circuit for provider '{provider}' is open after repeated failures.", exception, retryAfter);
                case TimeoutRejectedException:
                    return Transient($"Provider '{provider}' timed out.", exception, retryAfter);
                case ClientResultException cre when cre.Status != 0:
                    return FromStatus(cre.Status, ErrorCode(cre), provider, exception, retryAfter);
                case HttpRequestException hre when hre.StatusCode is { } status:
                    return FromStatus((int)status, null, provider, exception, retryAfter);
                case HttpRequestException:
                    return Transient($"Provider '{provider}' could not be reached ({e.Message}).", exception, retryAfter);
                case TimeoutException or TaskCanceledException:
                    return Transient($"Provider '{provider}' timed out.", exception, retryAfter);
            }
        }

        return Transient($"Provider '{provider}' failed: {exception.GetType().Name}.", exception, retryAfter);
    }

    /// <summary>The error for a content-filter refusal.</summary>
    public static ApplicationFailureException ContentFiltered(string provider) =>
        new($"Provider '{provider}' refused the content (content filter). Change the prompt; retrying will not help.", LlmErrorTypes.ContentFiltered, nonRetryable: true);

    private static ApplicationFailureException FromStatus(int status, string? code, string provider, Exception inner, TimeSpan? retryAfter)
    {
        if (code is "content_filter" or "content_policy_violation" or "ResponsibleAIPolicyViolation")
        {
            return new ApplicationFailureException(
                $"Provider '{provider}' refused the content (content filter, HTTP {status}). Change the prompt; retrying will not help.",
                LlmErrorTypes.ContentFiltered,
                nonRetryable: true,
                innerException: inner);
        }

        return status switch
        {
            401 or 403 => new ApplicationFailureException($"Provider '{provider}' rejected the credentials (HTTP {status}). Check its ApiKey or managed identity.", LlmErrorTypes.Authentication, nonRetryable: true, innerException: inner),
            408 or 429 or >= 500 => Transient($"Provider '{provider}' answered HTTP {status}{(status == 429 ? " (rate limited)" : string.Empty)}.", inner, retryAfter),
            _ => new ApplicationFailureException($"Provider '{provider}' rejected the request (HTTP {status}{(code is null ? string.Empty : ", " + code)}).", LlmErrorTypes.InvalidRequest, nonRetryable: true, innerException: inner),
        };
    }

    private static ApplicationFailureException Transient(string message, Exception inner, TimeSpan? retryAfter) =>
        new(message, LlmErrorTypes.Transient, nonRetryable: false, nextRetryDelay: retryAfter, innerException: inner);

    /// <summary>The OpenAI error body's code (e.g. content_filter), if it has one.</summary>
    private static string? ErrorCode(ClientResultException exception)
    {
        try
        {
            var body = exception.GetRawResponse()?.Content?.ToString();
            if (string.IsNullOrEmpty(body))
            {
                return null;
            }

            using var doc = JsonDocument.Parse(body);
            return doc.RootElement.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.Object && error.TryGetProperty("code", out var code) && code.ValueKind == JsonValueKind.String
                ? code.GetString()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }
}
