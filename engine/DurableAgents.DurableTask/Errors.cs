using Microsoft.DurableTask;

namespace DurableAgents;

/// <summary>
/// The one error root of DurableAgents. <see cref="ErrorType"/> is a stable string that survives
/// serialization into history; <see cref="NonRetryable"/> and <see cref="NextRetryDelay"/> make
/// retryability data rather than a type hierarchy (as Temporal's ApplicationFailureException does).
/// The backend records them in the failure's <see cref="TaskFailureDetails.ErrorType"/> and
/// <see cref="TaskFailureDetails.Properties"/> (see <see cref="TaskFailureDetailsExtensions"/>).
/// </summary>
public class DurableAgentsException : Exception
{
    /// <summary>Creates an error with a stable error type.</summary>
    public DurableAgentsException(string message, string errorType, bool nonRetryable = false, TimeSpan? nextRetryDelay = null, Exception? innerException = null)
        : base(message, innerException)
    {
        ErrorType = errorType;
        NonRetryable = nonRetryable;
        NextRetryDelay = nextRetryDelay;
    }

    /// <summary>A stable machine-readable error type, e.g. <c>DurableAgents.PayloadTooLarge</c>.</summary>
    public string ErrorType { get; }

    /// <summary>True when retrying cannot help (bad input, content filter, budget exceeded).</summary>
    public bool NonRetryable { get; }

    /// <summary>A delay the failing party asked for (e.g. Retry-After), if any.</summary>
    public TimeSpan? NextRetryDelay { get; }
}

/// <summary>
/// Thrown by activity code to fail with a typed error, for example
/// <c>throw new ApplicationFailureException("content filtered", "ContentFilter", nonRetryable: true)</c>.
/// </summary>
public sealed class ApplicationFailureException : DurableAgentsException
{
    /// <summary>Creates an application failure.</summary>
    public ApplicationFailureException(string message, string errorType, bool nonRetryable = false, TimeSpan? nextRetryDelay = null, Exception? innerException = null)
        : base(message, errorType, nonRetryable, nextRetryDelay, innerException)
    {
    }
}

/// <summary>Error types used by the engine; stable strings, part of the public contract.</summary>
public static class ErrorTypes
{
    /// <summary>A payload exceeded the configured size limit.</summary>
    public const string PayloadTooLarge = "DurableAgents.PayloadTooLarge";

    /// <summary>No orchestrator with the name is registered.</summary>
    public const string OrchestratorNotFound = "DurableAgents.OrchestratorNotFound";

    /// <summary>No activity with the name is registered.</summary>
    public const string ActivityNotFound = "DurableAgents.ActivityNotFound";

    /// <summary>An input or output could not be read as the declared type.</summary>
    public const string SerializationFailed = "DurableAgents.SerializationFailed";

    /// <summary>A sub-orchestration was terminated.</summary>
    public const string Terminated = "DurableAgents.Terminated";

    /// <summary>A sub-orchestration instance id is already in use by a running instance.</summary>
    public const string InstanceAlreadyExists = "DurableAgents.InstanceAlreadyExists";

    /// <summary>The orchestration asked for something this backend does not implement (durable entities).</summary>
    public const string NotSupported = "DurableAgents.NotSupported";
}

/// <summary>
/// Reads the typed error data the backend records with a failure. Property names are persisted in
/// histories: renaming one is a breaking change for in-flight orchestrations.
/// </summary>
public static class TaskFailureDetailsExtensions
{
    /// <summary>The property holding <see cref="DurableAgentsException.ErrorType"/>.</summary>
    public const string ErrorTypeProperty = "durableagents.errorType";

    /// <summary>The property holding <see cref="DurableAgentsException.NonRetryable"/>.</summary>
    public const string NonRetryableProperty = "durableagents.nonRetryable";

    /// <summary>The property holding <see cref="DurableAgentsException.NextRetryDelay"/> in milliseconds.</summary>
    public const string NextRetryDelayProperty = "durableagents.nextRetryDelayMs";

    /// <summary>True when the failure, or one it wraps, has the stable error type <paramref name="errorType"/>.</summary>
    public static bool HasErrorType(this TaskFailureDetails? failure, string errorType)
    {
        for (var f = failure; f is not null; f = f.InnerFailure)
        {
            if (string.Equals(f.ErrorType, errorType, StringComparison.Ordinal)
                || (f.Properties is { } p && p.TryGetValue(ErrorTypeProperty, out var v) && string.Equals(v?.ToString(), errorType, StringComparison.Ordinal)))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>True when the failing code said retrying cannot help.</summary>
    public static bool IsNonRetriable(this TaskFailureDetails? failure) =>
        failure?.Properties is { } p && p.TryGetValue(NonRetryableProperty, out var v) && v is true or "true" or "True";

    /// <summary>The delay the failing party asked for, if any.</summary>
    public static TimeSpan? NextRetryDelay(this TaskFailureDetails? failure) =>
        failure?.Properties is { } p && p.TryGetValue(NextRetryDelayProperty, out var v) && v is not null
            && double.TryParse(v.ToString(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var ms)
            ? TimeSpan.FromMilliseconds(ms)
            : null;

    /// <summary>The properties to record for <paramref name="exception"/> (empty for other exceptions).</summary>
    public static IDictionary<string, object?> PropertiesOf(Exception exception) => exception switch
    {
        DurableAgentsException dae => new Dictionary<string, object?>
        {
            [ErrorTypeProperty] = dae.ErrorType,
            [NonRetryableProperty] = dae.NonRetryable,
            [NextRetryDelayProperty] = dae.NextRetryDelay?.TotalMilliseconds,
        },
        _ => new Dictionary<string, object?>(),
    };
}

/// <summary>Retry policies that respect <see cref="DurableAgentsException.NonRetryable"/>.</summary>
public static class RetryPolicies
{
    /// <summary>
    /// A <see cref="RetryPolicy"/> that does not retry failures marked non-retriable (a content
    /// filter refusal, a budget refusal, bad input): the SDK's default retries every failure.
    /// </summary>
    public static RetryPolicy SkippingNonRetriable(int maxNumberOfAttempts, TimeSpan firstRetryInterval, double backoffCoefficient = 1.0, TimeSpan? maxRetryInterval = null, TimeSpan? retryTimeout = null) =>
        new(maxNumberOfAttempts, firstRetryInterval, backoffCoefficient, maxRetryInterval, retryTimeout)
        {
            HandleFailure = static f => !f.IsNonRetriable(),
        };

    /// <summary><see cref="TaskOptions"/> for <see cref="SkippingNonRetriable"/>.</summary>
    public static TaskOptions Options(int maxNumberOfAttempts, TimeSpan firstRetryInterval, double backoffCoefficient = 1.0, TimeSpan? maxRetryInterval = null, TimeSpan? retryTimeout = null) =>
        TaskOptions.FromRetryPolicy(SkippingNonRetriable(maxNumberOfAttempts, firstRetryInterval, backoffCoefficient, maxRetryInterval, retryTimeout));
}
