using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using DurableAgents.Activities;
using DurableAgents.Activities.Contracts.Llm;
using DurableAgents.Activities.Llm;
using DurableAgents.Engine.Testing;
using DurableAgents.Tests.Support;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using NUnit.Framework;

namespace DurableAgents.Activities.Tests.Llm;

/// <summary>The store a limiter test runs on: the database itself, or Redis (the shared test server, a task hub of its own) falling back to it.</summary>
public sealed class RateLimitTestStores(string kind, TimeProvider time) : IAsyncDisposable
{
    private readonly LlmRedis? _redis = kind == "redis"
        ? new LlmRedis(
            Environment.GetEnvironmentVariable("DURABLEAGENTS_TEST_REDIS") ?? throw new IgnoreException("no Redis server: run scripts/test.sh"),
            "rl-" + Guid.NewGuid().ToString("n"),
            NullLogger<LlmRedis>.Instance)
        : null;

    /// <summary>One host's store over <paramref name="database"/>.</summary>
    public IRateLimitStore Store(ActivityDatabase database)
    {
        var relational = new RelationalRateLimitStore(database, time);
        return _redis is null ? relational : new RedisRateLimitStore(_redis, relational, time, NullLogger<RedisRateLimitStore>.Instance);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_redis is not null)
        {
            await _redis.DisposeAsync();
        }
    }
}

/// <summary>Limits held in Redis when Redis goes away mid-run: the database takes over with a warning, nothing stalls, and no lease is left in flight.</summary>
public sealed class RedisRateLimitOutageTests
{
    private const string Deployment = "openaicompatible|http://127.0.0.1:1/v1|gpt-test";

    [Test]
    public async Task RedisDown_TheDatabaseHoldsTheLimits_WithAWarning_AndReleasesReachRedisWhenItIsBack()
    {
        using var redisServer = await PrivateRedis.StartAsync();
        using var database = ActivityTestDatabase.Create("sqlite");
        using var db = ActivityDatabase.ForSqlite(database.SqliteConnectionString!);
        var logs = new CapturingLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.AddProvider(logs));
        await using var redis = new LlmRedis(redisServer.Configuration, "outage", factory.CreateLogger<LlmRedis>());
        var store = new RedisRateLimitStore(redis, new RelationalRateLimitStore(db, TimeProvider.System), TimeProvider.System, factory.CreateLogger<RedisRateLimitStore>());
        var limiter = new ModelRateLimiter(store);
        var limits = new ModelLimits(null, null, MaxConcurrent: 1);
        var token = TestTimeout.Token(60);

        var inRedis = await limiter.TryAcquireAsync(Deployment, limits, 10, token);
        Assert.That(inRedis.Granted, Is.True);
        Assert.That((await limiter.TryAcquireAsync(Deployment, limits, 10, token)).Granted, Is.False, "Redis holds the call in flight");

        redisServer.Kill();
        var down = Stopwatch.StartNew();
        var inDatabase = await limiter.TryAcquireAsync(Deployment, limits, 10, token);

        Assert.That(inDatabase.Granted, Is.True, "the database knows nothing of Redis' grant: one call more than the limit may go while Redis is down");
        Assert.That(down.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)), "the outage does not stall the call (Redis' connect timeout is 3 s)");
        Assert.That(store.Degraded, Is.True);
        Assert.That(logs.Entries.Count(e => e.Id.Id == 1330 && e.Level == LogLevel.Warning), Is.EqualTo(1), "one warning");
        Assert.That((await limiter.TryAcquireAsync(Deployment, limits, 10, token)).Granted, Is.False, "meanwhile the database holds the limit");
        Assert.That(logs.Entries.Count(e => e.Id.Id == 1330), Is.EqualTo(1), "still one warning");

        // Both calls end while Redis is down: the one Redis granted is released there once it is back.
        await limiter.ReleaseAsync(Deployment, limits, inRedis, 10, token);
        await limiter.ReleaseAsync(Deployment, limits, inDatabase, 10, token);

        await redisServer.RestartAsync(token);
        CapacityDecision? next = null;
        while (store.Degraded || next is null)
        {
            next = await limiter.TryAcquireAsync(Deployment, limits, 10, token);
            if (store.Degraded)
            {
                Assert.That(next.Granted, Is.True, "the database's slot was released");
                await limiter.ReleaseAsync(Deployment, limits, next, 10, token);
                next = null;
                await Task.Delay(50, token); // the multiplexer reconnects in the background; asked again until it has
            }
        }

        Assert.That(next.Granted, Is.True, "Redis' grant was released when Redis came back, not left in flight for its 10-minute lifetime");
        Assert.That(logs.Entries.Any(e => e.Id.Id == 1331), Is.True, "the recovery is logged");
        Assert.That((await limiter.TryAcquireAsync(Deployment, limits, 10, token)).Granted, Is.False, "Redis holds the limit again");
        Assert.That(logs.Entries.Where(e => e.Level >= LogLevel.Error), Is.Empty, "an outage is a degradation, not an error");
    }
}

/// <summary>A redis-server of a test's own on a free loopback port, which the test may kill and restart.</summary>
internal sealed class PrivateRedis : IDisposable
{
    private readonly int _port;
    private Process? _process;

    private PrivateRedis(int port) => _port = port;

    /// <summary>Its configuration string.</summary>
    public string Configuration => $"127.0.0.1:{_port}";

    public static async Task<PrivateRedis> StartAsync()
    {
        if (Environment.GetEnvironmentVariable("DURABLEAGENTS_TEST_REDIS") is null)
        {
            throw new IgnoreException("no Redis server: run scripts/test.sh");
        }

        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var redis = new PrivateRedis(port);
        await redis.RestartAsync(TestTimeout.Token(30));
        return redis;
    }

    /// <summary>Starts it (again) on the same port and waits until it accepts connections.</summary>
    public async Task RestartAsync(CancellationToken cancellationToken)
    {
        _process = Process.Start(new ProcessStartInfo("redis-server", ["--port", _port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        {
            RedirectStandardOutput = true,
            UseShellExecute = false,
        })!;
        while (true)
        {
            var line = await _process.StandardOutput.ReadLineAsync(cancellationToken) ?? throw new InvalidOperationException("redis-server exited");
            if (line.Contains("Ready to accept connections", StringComparison.Ordinal))
            {
                _ = _process.StandardOutput.ReadToEndAsync(CancellationToken.None);
                return;
            }
        }
    }

    /// <summary>SIGKILL.</summary>
    public void Kill()
    {
        _process?.Kill();
        _process?.WaitForExit();
    }

    public void Dispose()
    {
        Kill();
        _process?.Dispose();
    }
}
