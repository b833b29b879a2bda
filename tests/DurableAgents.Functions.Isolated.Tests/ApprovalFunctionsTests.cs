using DurableAgents.Activities.Approvals;
using DurableAgents.Activities.Contracts;
using DurableAgents.Activities.Email;
using Microsoft.AspNetCore.Http;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Moq;
using NUnit.Framework;

namespace DurableAgents.Functions.Isolated.Tests;

/// <summary>The isolated app's approval links against a mocked <see cref="DurableTaskClient"/>.</summary>
public sealed class ApprovalFunctionsTests
{
    private readonly ApprovalTokens _tokens = new(Options.Create(new ApprovalOptions { SigningKey = Convert.ToBase64String(new byte[32]) }), TimeProvider.System);

    private static HttpRequest Post()
    {
        var http = new DefaultHttpContext { RequestServices = new ServiceCollection().AddLogging().BuildServiceProvider() };
        http.Request.Method = "POST";
        http.Response.Body = new MemoryStream();
        return http.Request;
    }

    private ApprovalFunctions Functions(Mock<IUsedTokens> used) => new(_tokens, used.Object, TimeProvider.System, new DevelopmentOutbox(TimeProvider.System));

    [Test]
    public async Task Post_RaisesTheDecision_Once()
    {
        var token = _tokens.Create("gate-1", "approval", ApprovalDecisions.Approve, "me@example.com", DateTimeOffset.UtcNow.AddDays(1));
        var used = new Mock<IUsedTokens>();
        used.SetupSequence(u => u.TryConsumeAsync(It.IsAny<string>(), It.IsAny<DateTimeOffset>(), It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>())).ReturnsAsync(true).ReturnsAsync(false);
        var client = new Mock<DurableTaskClient>("test");
        client.Setup(c => c.GetInstanceAsync("gate-1", false, It.IsAny<CancellationToken>())).ReturnsAsync(new OrchestrationMetadata("ApprovalGate", "gate-1") { RuntimeStatus = OrchestrationRuntimeStatus.Running });
        var functions = Functions(used);

        var first = Post();
        await (await functions.DecideAsync(first, client.Object, token)).ExecuteAsync(first.HttpContext);
        var second = Post();
        await (await functions.DecideAsync(second, client.Object, token)).ExecuteAsync(second.HttpContext);

        Assert.That(first.HttpContext.Response.StatusCode, Is.EqualTo(200));
        Assert.That(second.HttpContext.Response.StatusCode, Is.EqualTo(409));
        client.Verify(c => c.RaiseEventAsync("gate-1", "approval", It.Is<object?>(d => ((ApprovalDecision)d!).Decision == ApprovalDecisions.Approve && ((ApprovalDecision)d!).Approver == "me@example.com"), It.IsAny<CancellationToken>()), Times.Once);
    }

    [Test]
    public async Task ForgedToken_Is403_AndNothingIsCalled()
    {
        var token = _tokens.Create("gate-1", "approval", ApprovalDecisions.Approve, "me@example.com", DateTimeOffset.UtcNow.AddDays(1));
        var forged = token[..^2] + (token[^2] == 'A' ? "BB" : "AA");
        var used = new Mock<IUsedTokens>(MockBehavior.Strict);
        var client = new Mock<DurableTaskClient>(MockBehavior.Strict, "test");
        var request = Post();

        await (await Functions(used).DecideAsync(request, client.Object, forged)).ExecuteAsync(request.HttpContext);

        Assert.That(request.HttpContext.Response.StatusCode, Is.EqualTo(403));
        client.VerifyNoOtherCalls();
        used.VerifyNoOtherCalls();
    }
}
