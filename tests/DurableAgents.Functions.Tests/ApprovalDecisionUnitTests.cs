using DurableAgents.Activities.Approvals;
using DurableAgents.Engine.Storage;
using DurableAgents.Functions.Apis;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using Moq;
using NUnit.Framework;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Functions.Tests;

/// <summary>The decision endpoint alone, with a store that fails where a real one cannot be made to.</summary>
public sealed class ApprovalDecisionUnitTests
{
    [Test]
    public async Task Decide_RaiseFailsForATransientReason_ReleasesTheSingleUseMark_AndRethrows()
    {
        var tokens = new ApprovalTokens(Options.Create(new ApprovalOptions { SigningKey = Convert.ToBase64String(new byte[32]) }), TimeProvider.System);
        var token = tokens.Create("inst-1", "approval", "approve", "a@example.com", DateTimeOffset.UtcNow.AddDays(1));
        var store = new Mock<IOrchestrationStore>(MockBehavior.Strict);
        store.Setup(s => s.TryConsumeTokenAsync(It.IsAny<string>(), It.IsAny<DateTimeOffset>(), It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>())).ReturnsAsync(true);
        store.Setup(s => s.ReleaseTokenAsync(It.IsAny<string>(), It.IsAny<CancellationToken>())).Returns(Task.CompletedTask);
        var client = new Mock<DurableTaskClient>(MockBehavior.Strict, "test");
        client.Setup(c => c.GetInstanceAsync("inst-1", false, It.IsAny<CancellationToken>())).ReturnsAsync(new OrchestrationMetadata("ApprovalGate", "inst-1") { RuntimeStatus = OrchestrationRuntimeStatus.Running });
        client.Setup(c => c.RaiseEventAsync("inst-1", "approval", It.IsAny<object?>(), It.IsAny<CancellationToken>())).ThrowsAsync(new TimeoutException("store unavailable"));

        await Assert.ThrowsAsync<TimeoutException>(() => ApprovalApi.DecideAsync(token, tokens, store.Object, client.Object, TimeProvider.System, new DefaultHttpContext(), CancellationToken.None));

        store.Verify(s => s.ReleaseTokenAsync("approval:inst-1:approval:a@example.com:" + tokens.Verify(token).Claims!.ExpiresAtUnixSeconds, It.IsAny<CancellationToken>()), Times.Once);
    }
}
