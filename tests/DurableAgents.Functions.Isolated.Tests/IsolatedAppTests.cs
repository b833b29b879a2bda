using System.Text.Json;
using DurableAgents.Orchestrations;
using Microsoft.DurableTask;
using Microsoft.Extensions.DependencyInjection;
using DurableAgents.Tests.Shared;
using NUnit.Framework;

namespace DurableAgents.Functions.Isolated.Tests;

/// <summary>The isolated app's build output: its function metadata, and no Microsoft.AspNet.WebApi.Client in it.</summary>
public sealed class IsolatedAppTests
{
    /// <summary>The isolated app's build output in the tests' configuration.</summary>
    private static string Output
    {
        get
        {
            var dir = RepoPaths.Output("functions/DurableAgents.Functions.Isolated");
            Assert.That(Directory.Exists(dir), Is.True, dir);
            return dir;
        }
    }

    private static List<JsonElement> Metadata()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Output, "functions.metadata")));
        return doc.RootElement.EnumerateArray().Select(e => e.Clone()).ToList();
    }

    private static (string Type, JsonElement Binding) Trigger(JsonElement function)
    {
        var trigger = function.GetProperty("bindings").EnumerateArray().Single(b => b.GetProperty("type").GetString()!.EndsWith("Trigger", StringComparison.Ordinal));
        return (trigger.GetProperty("type").GetString()!, trigger);
    }

    [Test]
    public void EveryRegisteredWorkflowAndActivity_HasAFunctionWithItsTrigger()
    {
        var registry = new DurableTaskRegistry().AddWorkflows().AddProductActivities();
        var functions = Metadata().ToDictionary(f => f.GetProperty("name").GetString()!, f => f);

        var orchestrators = registry.GetOrchestrators().Select(o => o.Key.Name).ToList();
        var activities = registry.GetActivities().Select(a => a.Key.Name).ToList();
        Assert.That(orchestrators, Has.Count.EqualTo(14));
        Assert.That(activities, Has.Count.EqualTo(13));
        Assert.Multiple(() =>
        {
            foreach (var name in orchestrators)
            {
                Assert.That(functions.ContainsKey(name), Is.True, $"workflow {name} has no [OrchestrationTrigger] wrapper in WorkflowFunctions");
                if (functions.TryGetValue(name, out var f))
                {
                    Assert.That(Trigger(f).Type, Is.EqualTo("orchestrationTrigger"), name);
                }
            }

            foreach (var name in activities)
            {
                Assert.That(functions.ContainsKey(name), Is.True, $"activity {name} has no [ActivityTrigger] wrapper in ActivityFunctions");
                if (functions.TryGetValue(name, out var f))
                {
                    Assert.That(Trigger(f).Type, Is.EqualTo("activityTrigger"), name);
                }
            }
        });

        // And nothing else claims to be one.
        var durable = functions.Where(f => Trigger(f.Value).Type is "orchestrationTrigger" or "activityTrigger").Select(f => f.Key);
        Assert.That(durable, Is.EquivalentTo(orchestrators.Concat(activities)));
    }

    [TestCase("StartOrchestration", "api/orchestrators/{name}/{instanceId?}", "post")]
    [TestCase("GetInstance", "api/instances/{instanceId}", "get")]
    [TestCase("RaiseEvent", "api/instances/{instanceId}/raiseEvent/{eventName}", "post")]
    [TestCase("Terminate", "api/instances/{instanceId}/terminate", "post")]
    [TestCase("Suspend", "api/instances/{instanceId}/suspend", "post")]
    [TestCase("Resume", "api/instances/{instanceId}/resume", "post")]
    [TestCase("Purge", "api/instances/{instanceId}", "delete")]
    [TestCase("DevelopmentOutbox", "api/outbox", "get")]
    [TestCase("GetInstanceModelUsage", "api/instances/{instanceId}/usage", "get")]
    [TestCase("GetWorkflowModelUsage", "api/usage", "get")]
    [TestCase("ListSchedules", "api/schedules", "get")]
    [TestCase("CreateSchedule", "api/schedules", "post")]
    [TestCase("PauseSchedule", "api/schedules/{id}/pause", "post")]
    [TestCase("ResumeSchedule", "api/schedules/{id}/resume", "post")]
    [TestCase("DeleteSchedule", "api/schedules/{id}", "delete")]
    public void HttpFunctions_HaveTheCustomHandlersRoutes_UnderFunctionKeys(string name, string route, string method)
    {
        var f = Metadata().Single(m => m.GetProperty("name").GetString() == name);
        var (type, trigger) = Trigger(f);

        Assert.That(type, Is.EqualTo("httpTrigger"));
        Assert.That(trigger.GetProperty("route").GetString(), Is.EqualTo(route));
        Assert.That(trigger.GetProperty("methods").EnumerateArray().Select(m => m.GetString()), Is.EqualTo(new[] { method }));
        Assert.That(trigger.GetProperty("authLevel").GetString(), Is.EqualTo("Function"));
    }

    [Test]
    public void SchedulerHeartbeat_IsATimerEveryFiveMinutes_RunningAtStart()
    {
        var f = Metadata().Single(m => m.GetProperty("name").GetString() == "SchedulerHeartbeat");
        var (type, trigger) = Trigger(f);

        Assert.That(type, Is.EqualTo("timerTrigger"));
        Assert.That(trigger.GetProperty("schedule").GetString(), Is.EqualTo("0 */5 * * * *"));
        Assert.That(trigger.GetProperty("runOnStartup").GetBoolean(), Is.True);
    }

    [TestCase("ApprovalConfirm", "get")]
    [TestCase("ApprovalDecide", "post")]
    public void ApprovalLinks_AreAnonymous_OnTheCustomHandlersRoute(string name, string method)
    {
        var (type, trigger) = Trigger(Metadata().Single(m => m.GetProperty("name").GetString() == name));

        Assert.That(type, Is.EqualTo("httpTrigger"));
        Assert.That(trigger.GetProperty("route").GetString(), Is.EqualTo("approve/{token}"));
        Assert.That(trigger.GetProperty("methods").EnumerateArray().Select(m => m.GetString()), Is.EqualTo(new[] { method }));
        Assert.That(trigger.GetProperty("authLevel").GetString(), Is.EqualTo("Anonymous"), "the signed, single-use link is the credential");
    }

    [Test]
    public void WorkerConfig_StartsTheApp()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Output, "worker.config.json")));
        var description = doc.RootElement.GetProperty("description");

        Assert.That(description.GetProperty("language").GetString(), Is.EqualTo("dotnet-isolated"));
        Assert.That(description.GetProperty("defaultWorkerPath").GetString(), Is.EqualTo("DurableAgents.Functions.Isolated.dll"));
    }

    [Test]
    public void HostJson_UsesTheDurableExtensionOnAzureStorage()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Output, "host.json")));
        var durable = doc.RootElement.GetProperty("extensions").GetProperty("durableTask");

        Assert.That(durable.GetProperty("hubName").GetString(), Is.EqualTo("DurableAgents"));
        Assert.That(durable.GetProperty("storageProvider").GetProperty("type").GetString(), Is.EqualTo("AzureStorage"));
        Assert.That(durable.GetProperty("extendedSessionsEnabled").GetBoolean(), Is.True);
    }

    [Test]
    public void BuildOutput_HasNoMicrosoftAspNetWebApiClient()
    {
        // Microsoft.AspNet.WebApi.Client is under Microsoft's own terms: neither its assembly, nor the
        // compat shim that pulls it in, nor a dependency entry naming it may ship (NoWebApiClient.targets).
        var files = Directory.GetFiles(Output, "*", SearchOption.AllDirectories);
        Assert.That(files.Select(Path.GetFileName), Has.None.EqualTo("System.Net.Http.Formatting.dll").And.None.EqualTo("Microsoft.AspNetCore.Mvc.WebApiCompatShim.dll"));
        var manifests = files.Where(f => f.EndsWith(".deps.json", StringComparison.Ordinal) || f.EndsWith("extensions.json", StringComparison.Ordinal)).ToList();
        Assert.That(manifests.Select(Path.GetFileName), Does.Contain("function.deps.json"), "the extensions' dependency manifest is checked");
        foreach (var manifest in manifests)
        {
            var text = File.ReadAllText(manifest);
            Assert.That(text, Does.Not.Contain("Microsoft.AspNet.WebApi.Client").And.Not.Contain("WebApiCompatShim").And.Not.Contain("System.Net.Http.Formatting"), manifest);
            Assert.DoesNotThrow(() => JsonDocument.Parse(text).Dispose(), $"{manifest} is still valid JSON");
        }

        Assert.That(files.Select(Path.GetFileName), Does.Contain("Microsoft.Azure.WebJobs.Extensions.DurableTask.dll"), "the Durable extension itself is there");
    }
}
