namespace DurableAgents;

/// <summary>
/// What went wrong in an activity, sub-orchestration or orchestration, as data that survives
/// serialization into history. <see cref="IsNonRetriable"/> tells retry policies to give up at once.
/// </summary>
public sealed record TaskFailureDetails(
    string ErrorType,
    string ErrorMessage,
    string? StackTrace = null,
    TaskFailureDetails? InnerFailure = null,
    bool IsNonRetriable = false)
{
    /// <summary>Builds failure details from an exception, keeping typed error data where the exception carries it.</summary>
    public static TaskFailureDetails FromException(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return exception switch
        {
            TaskFailedException tfe => new TaskFailureDetails(
                tfe.GetType().FullName!, tfe.Message, tfe.StackTrace, tfe.FailureDetails, tfe.FailureDetails.IsNonRetriable),
            DurableAgentsException dae => new TaskFailureDetails(
                dae.ErrorType, dae.Message, dae.StackTrace, Inner(dae), dae.NonRetryable),
            _ => new TaskFailureDetails(
                exception.GetType().FullName!, exception.Message, exception.StackTrace, Inner(exception)),
        };

        static TaskFailureDetails? Inner(Exception e) => e.InnerException is null ? null : FromException(e.InnerException);
    }

    /// <summary>True when this failure, or one it wraps, has the given error type.</summary>
    public bool IsCausedBy(string errorType) =>
        string.Equals(ErrorType, errorType, StringComparison.Ordinal) || (InnerFailure?.IsCausedBy(errorType) ?? false);

    /// <inheritdoc />
    public override string ToString() => $"{ErrorType}: {ErrorMessage}";
}
