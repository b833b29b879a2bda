namespace DurableAgents.Engine;

/// <summary>Instance id rules: 1–256 characters from letters, digits and <c>-_.:@+=</c>, so ids are safe in URLs, logs and file names.</summary>
public static class InstanceIds
{
    /// <summary>The longest allowed id.</summary>
    public const int MaxLength = 256;

    /// <summary>Throws <see cref="InvalidInstanceIdException"/> when the id breaks the rules.</summary>
    public static void Validate(string? instanceId)
    {
        if (string.IsNullOrEmpty(instanceId))
        {
            throw new InvalidInstanceIdException("The instance id is empty.");
        }

        if (instanceId.Length > MaxLength)
        {
            throw new InvalidInstanceIdException($"The instance id is {instanceId.Length} characters long; at most {MaxLength} are allowed.");
        }

        foreach (var c in instanceId)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':' or '@' or '+' or '='))
            {
                throw new InvalidInstanceIdException($"The instance id contains '{(char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString())}'; only letters, digits and -_.:@+= are allowed.");
            }
        }
    }
}
