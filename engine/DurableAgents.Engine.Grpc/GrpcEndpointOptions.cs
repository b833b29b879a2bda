using System.ComponentModel.DataAnnotations;

namespace DurableAgents.Engine.Grpc;

/// <summary>
/// The Durable Task gRPC endpoint, bound from <c>DurableAgents:Grpc</c>. Off by default. On, it
/// listens on its own HTTP/2 (cleartext) port, on loopback unless <see cref="Address"/> says
/// otherwise; beyond loopback it requires <see cref="ApiKey"/> in every call's metadata.
/// </summary>
public sealed class GrpcEndpointOptions
{
    /// <summary>The configuration section name.</summary>
    public const string SectionName = "DurableAgents:Grpc";

    /// <summary>Whether the endpoint runs.</summary>
    /// <value>The default value is false.</value>
    public bool Enabled { get; set; }

    /// <summary>The IP address to listen on (<c>0.0.0.0</c> or <c>::</c> for every interface).</summary>
    /// <value>The default value is 127.0.0.1.</value>
    [Required]
    public string Address { get; set; } = "127.0.0.1";

    /// <summary>The TCP port; 0 picks a free one (logged at start).</summary>
    /// <value>The default value is 4001.</value>
    [Range(0, 65535)]
    public int Port { get; set; } = 4001;

    /// <summary>
    /// The key callers send as <c>authorization: Bearer &lt;key&gt;</c> (or <c>x-api-key</c>) metadata.
    /// Required when <see cref="Address"/> is not a loopback address; when set, required on loopback too.
    /// </summary>
    public string? ApiKey { get; set; }

    /// <summary>How often an idle work-item stream gets a health ping (the stock worker reconnects after 120 s of silence).</summary>
    /// <value>The default value is 15 seconds.</value>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00")]
    public TimeSpan HealthPingInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Histories longer than this many events are not put in the work item for workers that
    /// announce history streaming: the worker fetches them with StreamInstanceHistory, in chunks.
    /// </summary>
    /// <value>The default value is 500.</value>
    [Range(0, int.MaxValue)]
    public int InlineHistoryEvents { get; set; } = 500;

    /// <summary>Most events per StreamInstanceHistory chunk.</summary>
    /// <value>The default value is 256.</value>
    [Range(1, 10_000)]
    public int HistoryChunkEvents { get; set; } = 256;

    /// <summary>Upper bound for the concurrency a worker announces per stream (0 announced means this bound).</summary>
    /// <value>The default value is 1000.</value>
    [Range(1, 100_000)]
    public int MaxWorkItemsPerStream { get; set; } = 1000;
}
