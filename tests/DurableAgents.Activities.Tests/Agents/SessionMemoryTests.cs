using DurableAgents.Activities.Agents;
using DurableAgents.Activities.Llm;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using NUnit.Framework;
using StackExchange.Redis;

namespace DurableAgents.Activities.Tests.Agents;

/// <summary>Short-term memory: per-session working state with a time to live, in-process and in a real Redis.</summary>
public sealed class SessionMemoryTests
{
    [Test]
    public async Task InProcess_KeepsASessionUntilItsTimeToLivePassesSinceTheLastWrite()
    {
        var time = new FakeTimeProvider();
        var memory = new InProcessSessionMemory(new MemoryOptions { SessionTimeToLive = TimeSpan.FromMinutes(30) }, time);

        await memory.SetAsync("s1", "plan", "outline first");
        time.Advance(TimeSpan.FromMinutes(20));
        await memory.SetAsync("s1", "step", "2");
        time.Advance(TimeSpan.FromMinutes(20));

        Assert.That(await memory.GetAsync("s1", "plan"), Is.EqualTo("outline first"), "the second write renewed the session");
        Assert.That(await memory.GetAllAsync("s1"), Has.Count.EqualTo(2));
        Assert.That(await memory.GetAsync("s2", "plan"), Is.Null, "sessions are separate");
        time.Advance(TimeSpan.FromMinutes(11));
        Assert.That(await memory.GetAsync("s1", "plan"), Is.Null);
        Assert.That(await memory.GetAllAsync("s1"), Is.Empty);
    }

    [Test]
    public async Task Redis_StoresTheSessionAsAHashWithTheTimeToLive()
    {
        var configuration = Environment.GetEnvironmentVariable("DURABLEAGENTS_TEST_REDIS") ?? throw new IgnoreException("no Redis server: run scripts/test.sh");
        var hub = "sess" + Guid.NewGuid().ToString("N")[..8];
        await using var redis = new LlmRedis(configuration, hub, NullLogger<LlmRedis>.Instance);
        var memory = new RedisSessionMemory(redis, new MemoryOptions { SessionTimeToLive = TimeSpan.FromSeconds(2) });

        await memory.SetAsync("s1", "plan", "outline first");
        await memory.SetAsync("s1", "step", "2");
        var other = new RedisSessionMemory(redis, new MemoryOptions());

        Assert.That(await other.GetAsync("s1", "plan"), Is.EqualTo("outline first"), "another host sees the same session");
        Assert.That(await memory.GetAllAsync("s1"), Is.EquivalentTo(new Dictionary<string, string> { ["plan"] = "outline first", ["step"] = "2" }));
        await using var check = await ConnectionMultiplexer.ConnectAsync(configuration);
        var ttl = await check.GetDatabase().KeyTimeToLiveAsync($"durableagents:{hub}:session:s1");
        Assert.That(ttl, Is.Not.Null.And.LessThanOrEqualTo(TimeSpan.FromSeconds(2)).And.GreaterThan(TimeSpan.Zero));
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (await memory.GetAsync("s1", "plan") is not null && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200);
        }

        Assert.That(await memory.GetAsync("s1", "plan"), Is.Null, "Redis expired the session");
    }
}
