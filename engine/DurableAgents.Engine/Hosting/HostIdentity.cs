using System.Security.Cryptography;
using Microsoft.Extensions.Options;

namespace DurableAgents.Engine.Hosting;

/// <summary>
/// Who this host is in the task hub: the prefix of every lease it takes ("<c>{HostId}/...</c>") and
/// the id of its heartbeat row. <see cref="HostId"/> is <see cref="DurableAgentsOptions.WorkerId"/>
/// when configured, else the Azure App Service / Functions instance id (<c>WEBSITE_INSTANCE_ID</c>),
/// else machine name, process id and a random suffix. With a stable id (the first two), a host that
/// restarts releases what its previous run held at once; with the random one, the previous run's
/// leases are released when its heartbeat is <see cref="DurableAgentsOptions.HostDeadAfter"/> old.
/// </summary>
public sealed class HostIdentity
{
    /// <summary>Created from the engine options.</summary>
    public HostIdentity(IOptions<DurableAgentsOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var configured = options.Value.WorkerId;
        var azure = Environment.GetEnvironmentVariable("WEBSITE_INSTANCE_ID");
        if (!string.IsNullOrWhiteSpace(configured))
        {
            (HostId, Source) = (configured.Trim(), "configured");
        }
        else if (!string.IsNullOrWhiteSpace(azure))
        {
            (HostId, Source) = ("azure-" + azure.Trim(), "WEBSITE_INSTANCE_ID");
        }
        else
        {
            (HostId, Source) = ($"{Environment.MachineName}:{Environment.ProcessId}:{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3))}", "random");
        }

        if (HostId.Contains('/', StringComparison.Ordinal))
        {
            throw new OptionsValidationException(nameof(DurableAgentsOptions.WorkerId), typeof(DurableAgentsOptions), [$"DurableAgents:WorkerId must not contain '/' (lease owners are '<WorkerId>/...'): '{HostId}'."]);
        }

        Incarnation = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
    }

    /// <summary>The host id; lease owners start with "<c>{HostId}/</c>".</summary>
    public string HostId { get; }

    /// <summary>This process (new at every start), so a second process under the same id is noticed.</summary>
    public string Incarnation { get; }

    /// <summary>Where <see cref="HostId"/> came from: configured, WEBSITE_INSTANCE_ID or random.</summary>
    public string Source { get; }

    /// <summary>Whether the id survives a restart (configured or from the platform).</summary>
    public bool Stable => Source != "random";
}
