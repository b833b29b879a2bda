using System.ComponentModel.DataAnnotations;

namespace DurableAgents.Engine.Hosting;

/// <summary>Engine settings, bound from the <c>DurableAgents</c> configuration section.</summary>
public sealed class DurableAgentsOptions : IValidatableObject
{
    /// <summary>The configuration section name.</summary>
    public const string SectionName = "DurableAgents";

    /// <summary>Largest input, output, event or custom status, in UTF-8 JSON bytes.</summary>
    /// <value>The default value is 1 MiB.</value>
    [Range(1024, 64 * 1024 * 1024)]
    public int MaxPayloadBytes { get; set; } = 1024 * 1024;

    /// <summary>Episodes run at once by this host.</summary>
    /// <value>The default value is 4.</value>
    [Range(1, 256)]
    public int MaxConcurrentOrchestrations { get; set; } = 4;

    /// <summary>Activities run at once by this host.</summary>
    /// <value>The default value is 16.</value>
    [Range(1, 1024)]
    public int MaxConcurrentActivities { get; set; } = 16;

    /// <summary>How long an episode's lease lasts; a host that dies loses its instances for at most this long.</summary>
    /// <value>The default value is 30 seconds.</value>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan OrchestrationLease { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long an activity lease lasts; it is renewed at a third of this while the activity runs.</summary>
    /// <value>The default value is 60 seconds.</value>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan ActivityLease { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>The shortest wait between polls when idle; doubles up to <see cref="MaxPollInterval"/>.</summary>
    /// <value>The default value is 10 ms.</value>
    [Range(typeof(TimeSpan), "00:00:00.001", "00:01:00")]
    public TimeSpan MinPollInterval { get; set; } = TimeSpan.FromMilliseconds(10);

    /// <summary>The longest wait between polls when idle. Local commits wake dispatchers at once; this bounds pickup of work written by other hosts.</summary>
    /// <value>The default value is 1 second.</value>
    [Range(typeof(TimeSpan), "00:00:00.001", "00:01:00")]
    public TimeSpan MaxPollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long the SDK runner keeps an idle orchestration in memory between episodes (extended
    /// sessions), so the next episode sends new events only instead of replaying the history.
    /// Zero turns sessions off: every episode replays from the start.
    /// </summary>
    /// <value>The default value is 30 seconds.</value>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan ExtendedSessionIdleTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The longest a client's <c>WaitForInstance*Async</c> goes without re-reading the instance. It is
    /// woken at once by this host's commits and by the store's notifications of other hosts'
    /// (PostgreSQL LISTEN/NOTIFY); this bounds the wait only when no notification reaches it.
    /// </summary>
    /// <value>The default value is 2 seconds.</value>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan WaitPollInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Whether this host runs workers; a client-only host sets false.</summary>
    /// <value>The default value is true.</value>
    public bool EnableWorker { get; set; } = true;

    /// <summary>
    /// Whether this host's worker takes only the orchestrations and activities it registers,
    /// leaving the rest to other workers of the task hub (stock Durable Task workers connected over
    /// gRPC). Off, an instance of an orchestrator nobody here registers fails at once with
    /// <c>DurableAgents.OrchestratorNotFound</c>. Turned on by the gRPC endpoint.
    /// </summary>
    /// <value>The default value is false.</value>
    public bool TakeRegisteredTasksOnly { get; set; }

    /// <summary>
    /// This host's id in the task hub: the prefix of its lease owners and the key of its heartbeat row.
    /// Give each host its own stable id (the custom handler derives one from machine and port; on Azure
    /// the instance id is used) so that a restarted host releases what its previous run held at once.
    /// Unset and not on Azure: machine name, process id and a random suffix. Must not contain '/'.
    /// </summary>
    public string? WorkerId { get; set; }

    /// <summary>How often this host writes its heartbeat and looks for dead hosts. Zero turns heartbeats off (leases then move only when they expire).</summary>
    /// <value>The default value is 500 ms.</value>
    [Range(typeof(TimeSpan), "00:00:00", "00:01:00")]
    public TimeSpan HostHeartbeatInterval { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// How long another host may see a host's beat count stand still (on its own clock, so clock skew
    /// does not matter) before it releases that host's leases. Lower moves work
    /// sooner after a crash; a host stalled for longer than this (GC, CPU starvation, a store outage)
    /// loses its leases and its in-flight results are discarded and redone. At least twice
    /// <see cref="HostHeartbeatInterval"/>.
    /// </summary>
    /// <value>The default value is 2 seconds.</value>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan HostDeadAfter { get; set; } = TimeSpan.FromSeconds(2);

    /// <inheritdoc />
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (HostHeartbeatInterval > TimeSpan.Zero && HostDeadAfter < HostHeartbeatInterval * 2)
        {
            yield return new ValidationResult(
                $"DurableAgents:HostDeadAfter ({HostDeadAfter}) must be at least twice DurableAgents:HostHeartbeatInterval ({HostHeartbeatInterval}), or live hosts would be presumed dead between two heartbeats.",
                [nameof(HostDeadAfter)]);
        }
    }
}
