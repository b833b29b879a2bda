namespace DurableAgents.Tests.Support;

/// <summary>Every wait in a test is bounded: a hang fails the test instead of stalling CI.</summary>
public static class TestTimeout
{
    public static CancellationToken Token(int seconds = 60) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;
}
