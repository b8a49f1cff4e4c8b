namespace MeshGateway.Acl;

/// <summary>The agent's <c>acl.default_policy</c>: what happens when no rule applies.</summary>
public enum AclDefaultPolicy
{
    /// <summary><c>allow</c> (Consul's built-in default).</summary>
    Allow = 0,

    /// <summary><c>deny</c> (production guidance).</summary>
    Deny,
}

/// <summary>A policy authorizer's answer (Consul's <c>EnforcementDecision</c>).</summary>
public enum AclDecision
{
    /// <summary>No applicable rule: the default policy decides.</summary>
    Default = 0,

    /// <summary>A rule allows.</summary>
    Allow,

    /// <summary>A rule denies (a <c>deny</c> rule, or a rule whose level is too low, such as <c>read</c> for a write check).</summary>
    Deny,
}

/// <summary>Options for <see cref="AclEvaluator"/>.</summary>
public sealed record AclEvaluationOptions
{
    /// <summary>Community (top-level rules only) or Enterprise (nested rules). Default Community.</summary>
    public ConsulEdition Edition { get; init; }

    /// <summary>Enterprise: the partition the policies were created in; their top-level rules apply there. Default <c>default</c>.</summary>
    public string PolicyPartition { get; init; } = "default";

    /// <summary>Enterprise: the namespace the policies were created in; their top-level rules apply there. Default <c>default</c>.</summary>
    public string PolicyNamespace { get; init; } = "default";
}

/// <summary>The verdict on one requirement.</summary>
public sealed record AclRequirementResult
{
    /// <summary>The requirement.</summary>
    public required AclRequirement Requirement { get; init; }

    /// <summary>Whether the token has the permission (after the default policy).</summary>
    public required bool Satisfied { get; init; }

    /// <summary>The policies' own answer before the default policy.</summary>
    public required AclDecision Decision { get; init; }

    /// <summary>The rule that decided, or <see langword="null"/> when the default policy decided.</summary>
    public AclRule? DecidingRule { get; init; }

    /// <summary>The name of the policy holding <see cref="DecidingRule"/>.</summary>
    public string? DecidingPolicy { get; init; }

    /// <summary>Whether a <c>mesh</c>/<c>peering</c> check was answered by the <c>operator</c> rule because the policies do not set it.</summary>
    public bool FellBackToOperator { get; init; }

    /// <summary>
    /// What to grant when the requirement is missing, in Consul's words; null when satisfied. Usually
    /// <see cref="AclRequirement.Permission"/>; for a read of peer-imported data (<see cref="AclRequirement.IsPeeredRead"/>) the
    /// permissions Consul actually checks, for example <c>service:write on any service, or service:read on all services</c>.
    /// </summary>
    public string? MissingPermission { get; init; }

    /// <summary>Whether a peered read was granted because the token can write some service (Consul's <c>ServiceWriteAny</c>).</summary>
    public bool GrantedByServiceWriteAny { get; init; }

    /// <summary>A sentence saying what decided, for example
    /// <c>service:read on all services: satisfied by service_prefix "" (policy "mgw", line 5)</c>.</summary>
    public required string Explanation { get; init; }

    /// <inheritdoc/>
    public override string ToString() => Explanation;
}

/// <summary>The verdict on a set of requirements.</summary>
public sealed class AclEvaluationReport
{
    internal AclEvaluationReport(IReadOnlyList<AclRequirementResult> results, IReadOnlyList<string> notes)
    {
        Results = results;
        Notes = notes;
    }

    /// <summary>One result per requirement, in the requirements' order.</summary>
    public IReadOnlyList<AclRequirementResult> Results { get; }

    /// <summary>Observations that do not change a verdict but explain it (for example nested rules ignored by Community edition).</summary>
    public IReadOnlyList<string> Notes { get; }

    /// <summary>Whether every non-optional requirement is satisfied.</summary>
    public bool AllRequiredSatisfied => Results.All(r => r.Satisfied || r.Requirement.IsOptional);

    /// <summary>The unsatisfied requirements, optional ones included.</summary>
    public IEnumerable<AclRequirementResult> Missing => Results.Where(r => !r.Satisfied);
}
