using System.Text;
using MeshGateway.Acl;
using MeshGateway.Preflight;

namespace MeshGateway.Consul;

/// <summary>Settings of <see cref="ConsulPreflight.RunAsync"/>.</summary>
public sealed class ConsulPreflightOptions
{
    /// <summary>The gateway deployment whose token requirements are checked (<see cref="MeshGatewayAcl.Requirements"/>).</summary>
    public MeshGatewayAclOptions Acl { get; set; } = new();

    /// <summary>
    /// Clients of agents in the other datacenters that should be federated with this one. Their facts join the check, so
    /// a missing WAN join or a disagreeing primary datacenter is found. Not disposed.
    /// </summary>
    public IReadOnlyList<ConsulClient> OtherDatacenters { get; set; } = [];

    /// <summary>Whether the gateway federates the servers (WAN federation through mesh gateways): checks the settings that needs. Default false.</summary>
    public bool WanFederation { get; set; }
}

/// <summary>What is known about one permission the gateway's token needs.</summary>
public enum ConsulTokenPermissionStatus
{
    /// <summary>Shown to be held (a probe succeeded, or ACLs are disabled).</summary>
    Granted = 1,

    /// <summary>Shown to be missing (403, or results filtered by ACLs).</summary>
    Missing,

    /// <summary>Could not be determined without <c>acl:read</c> or without a side effect.</summary>
    Unknown,

    /// <summary>The Consul version in use has no such permission (e.g. <c>peering</c> before 1.13).</summary>
    NotApplicable,
}

/// <summary>One requirement of <see cref="MeshGatewayAcl.Requirements"/> and what the preflight found about it.</summary>
/// <param name="Requirement">The requirement.</param>
/// <param name="Status">What was found.</param>
/// <param name="Evidence">How it was found (the probe and its answer).</param>
public sealed record ConsulTokenPermissionCheck(AclRequirement Requirement, ConsulTokenPermissionStatus Status, string Evidence)
{
    /// <summary>Whether this blocks the gateway: a missing permission that is not optional.</summary>
    public bool IsError => Status == ConsulTokenPermissionStatus.Missing && !Requirement.IsOptional;

    /// <summary>The fix, when something is missing or unknown.</summary>
    public string? Fix => Status is ConsulTokenPermissionStatus.Missing or ConsulTokenPermissionStatus.Unknown
        ? $"Grant {Requirement.Permission} to the gateway's token (MeshGatewayAcl.ToHcl generates the complete policy)."
        : null;

    /// <inheritdoc />
    public override string ToString() => $"{Status.ToString().ToLowerInvariant()}: {Requirement.Permission}{(Requirement.IsOptional ? " (optional)" : string.Empty)} — {Evidence}"
        + (Fix is null ? string.Empty : " Fix: " + Fix);
}

/// <summary>The outcome of <see cref="ConsulPreflight.RunAsync"/>: the facts, the model's findings and the token's permissions.</summary>
public sealed record ConsulPreflightReport
{
    /// <summary>Facts from the gateway's own agent.</summary>
    public required ConsulPreflightFacts Facts { get; init; }

    /// <summary>Facts from the agents of <see cref="ConsulPreflightOptions.OtherDatacenters"/>.</summary>
    public IReadOnlyList<ConsulPreflightFacts> OtherFacts { get; init; } = [];

    /// <summary>The facts as the model's <see cref="PreflightChecker"/> saw them.</summary>
    public required ClusterFacts ClusterFacts { get; init; }

    /// <summary>
    /// Unmet or undeterminable prerequisites, each with a fix: the model's findings, plus the adapter's own under
    /// <see cref="PreflightCheck.TrustDomain"/>, <see cref="PreflightCheck.PrimaryReachable"/> and <see cref="PreflightCheck.TokenPermissions"/>
    /// (one per entry of <see cref="TokenPermissions"/> that is missing or unknown).
    /// </summary>
    public required IReadOnlyList<PreflightFinding> Findings { get; init; }

    /// <summary>Each permission the gateway's token needs and what was found about it.</summary>
    public required IReadOnlyList<ConsulTokenPermissionCheck> TokenPermissions { get; init; }

    /// <summary>Whether anything blocks the gateway: an error finding or a missing required permission.</summary>
    public bool HasErrors => Findings.Any(f => f.Severity == PreflightSeverity.Error) || TokenPermissions.Any(p => p.IsError);

    /// <summary>A multi-line, log-ready summary (never contains the token).</summary>
    /// <returns>The text.</returns>
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append("Consul preflight for datacenter ").Append(Facts.Datacenter ?? "(unknown)").Append(": ")
            .Append(HasErrors ? "PROBLEMS FOUND" : "ok").AppendLine();
        foreach (PreflightFinding finding in Findings.Where(f => f.Check != PreflightCheck.TokenPermissions)) // listed below with evidence
        {
            sb.Append("  ").AppendLine(finding.ToString());
        }

        foreach (ConsulTokenPermissionCheck permission in TokenPermissions.Where(p => p.Status != ConsulTokenPermissionStatus.NotApplicable))
        {
            sb.Append("  token ").AppendLine(permission.ToString());
        }

        return sb.ToString();
    }
}
