using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using NUnit.Framework;

namespace DurableAgents.Functions.Tests;

/// <summary>The host exports traces and metrics over OTLP/HTTP when an endpoint is configured.</summary>
[NonParallelizable]
public sealed class TelemetryTests
{
    [Test]
    public async Task OtlpEndpointConfigured_WorkflowSpansAndMetricsAreExported()
    {
        // A loopback OTLP/HTTP receiver that records what it is sent.
        var port = FreePort();
        using var listener = new HttpListener();
        listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        listener.Start();
        var received = new ConcurrentQueue<(string Path, string Body)>();
        using var stop = new CancellationTokenSource();
        var receiver = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                HttpListenerContext ctx;
                try
                {
                    ctx = await listener.GetContextAsync();
                }
                catch (HttpListenerException)
                {
                    break;
                }
                catch (ObjectDisposedException)
                {
                    break;
                }

                using var ms = new MemoryStream();
                await ctx.Request.InputStream.CopyToAsync(ms);
                received.Enqueue((ctx.Request.Url!.AbsolutePath, Encoding.UTF8.GetString(ms.ToArray())));
                ctx.Response.StatusCode = 200;
                ctx.Response.Close();
            }
        });

        await using (var host = await HostProcess.StartAsync(new Dictionary<string, string>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = $"http://127.0.0.1:{port}",
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            ["OTEL_BSP_SCHEDULE_DELAY"] = "100",
            ["OTEL_METRIC_EXPORT_INTERVAL"] = "300",
        }))
        {
            using var http = host.CreateClient();
            using var start = await http.PostAsync("/api/orchestrators/HelloCities/otel-1", new StringContent("[\"Quito\"]", Encoding.UTF8, "application/json"));
            Assert.That(start.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));
            using var draft = await http.PostAsync("/api/orchestrators/DraftAndApprove/otel-2", new StringContent("{\"topic\":\"tracing\"}", Encoding.UTF8, "application/json"));
            Assert.That(draft.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));

            // Model calls (the simulator here) carry the OpenTelemetry GenAI attributes: model and tokens.
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            while (!(Has("/v1/traces", "orchestration HelloCities") && Has("/v1/traces", "activity SayHello") && Has("/v1/metrics", "durableagents.activities")
                && Has("/v1/traces", "gen_ai.request.model") && Has("/v1/traces", "gen_ai.usage.input_tokens") && Has("/v1/traces", "gen_ai.usage.output_tokens")))
            {
                await Task.Delay(50, cts.Token);
            }
        }

        Assert.That(Has("/v1/traces", "otel-1"), Is.True, "spans carry the instance id");
        await stop.CancelAsync();
        listener.Stop();
        await receiver;

        bool Has(string path, string text) => received.Any(r => r.Path == path && r.Body.Contains(text, StringComparison.Ordinal));
    }

    private static int FreePort()
    {
        using var socket = new TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        return ((IPEndPoint)socket.LocalEndpoint).Port;
    }
}
