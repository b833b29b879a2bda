using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using DurableAgents.Tests.Support;
using NUnit.Framework;

namespace DurableAgents.Functions.Tests;

/// <summary>Configuration switches the host's model calls from the simulator to Azure OpenAI (or any endpoint).</summary>
public sealed class ModelConfigurationTests
{
    [Test]
    public async Task Host_ConfiguredForAzureOpenAi_DraftsThroughTheAzureEndpoint_WithItsKey()
    {
        await using var azure = await FakeOpenAiServer.StartAsync();
        azure.DefaultText = "A draft written by the Azure deployment.";
        await using var host = await HostProcess.StartAsync(new Dictionary<string, string>
        {
            ["DurableAgents__Llm__Profiles__fast__Providers__0__Kind"] = "AzureOpenAI",
            ["DurableAgents__Llm__Profiles__fast__Providers__0__Endpoint"] = azure.BaseAddress.ToString(),
            ["DurableAgents__Llm__Profiles__fast__Providers__0__Model"] = "content-gpt",
            ["DurableAgents__Llm__Profiles__fast__Providers__0__ApiKey"] = "azure-key-from-key-vault",
        });
        using var http = host.CreateClient();

        using var start = await http.PostAsync("/api/orchestrators/DraftAndApprove/az-draft", new StringContent("{\"topic\":\"azure\"}", Encoding.UTF8, "application/json"));
        Assert.That(start.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        JsonElement status;
        do
        {
            await Task.Delay(20, cts.Token);
            status = await http.GetFromJsonAsync<JsonElement>("/api/instances/az-draft", cts.Token);
        }
        while (status.GetProperty("customStatus").GetString() != "awaiting approval");

        Assert.That(azure.ChatRequests, Has.Count.EqualTo(2), "outline and draft");
        Assert.That(azure.ChatRequests.Select(r => r.Path), Has.All.StartWith("/openai/deployments/content-gpt/chat/completions"));
        Assert.That(azure.ChatRequests.Select(r => r.Headers["api-key"]), Has.All.EqualTo("azure-key-from-key-vault"));
        var usage = await http.GetFromJsonAsync<JsonElement>("/api/instances/az-draft/usage", cts.Token);
        Assert.That(usage.GetProperty("attempts").EnumerateArray().Select(a => a.GetProperty("model").GetString()), Has.All.EqualTo("gpt-test"));
    }

    [Test]
    public async Task Host_ModelProviderMisconfigured_ExitsAtStart_NamingTheSetting()
    {
        var (exitCode, output) = await HostProcess.RunToExitAsync(new Dictionary<string, string>
        {
            ["DurableAgents__Llm__Profiles__fast__Providers__0__Kind"] = "AzureOpenAI",
            ["DurableAgents__Llm__Profiles__fast__Providers__0__Model"] = "content-gpt",
            ["DurableAgents__Llm__Profiles__fast__Providers__0__ApiKey"] = "never-printed-key",
        });

        Assert.That(exitCode, Is.Not.Zero);
        Assert.That(output, Does.Contain("DurableAgents:Llm:Profiles:fast:Providers:0:Endpoint"));
        Assert.That(output, Does.Not.Contain("never-printed-key"));
    }
}
