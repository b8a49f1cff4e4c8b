using System.Globalization;

namespace MeshGateway.Model;

/// <summary>
/// Computes the mesh gateway mode of one upstream the way Consul does (docs/consul-behaviour.md §5.1).
/// </summary>
/// <remarks>
/// <para>
/// Consul flattens six dialing-side levels, lowest first, and a level wins exactly when its mode string is non-empty
/// (Consul <c>agent/configentry/resolve.go</c> <c>ComputeResolvedServiceConfig</c>, steps 1–5, and
/// <c>agent/configentry/merge_service_config.go</c> <c>MergeServiceConfig</c>, step 6): proxy-defaults, service-defaults,
/// <c>UpstreamConfig.Defaults</c>, the proxy registration, <c>UpstreamConfig.Overrides</c>, the upstream itself. The merge
/// never validates the value, so an unknown string also wins its level; it is reported in
/// <see cref="MeshGatewayModeResolution.LevelsWithUnknownValues"/>. When all six are unset the discovery-chain compiler
/// (<c>agent/consul/discoverychain/compile.go</c>) falls back to the destination's own service-defaults, except for peered
/// upstreams, which have no discovery chain. <see cref="ResolveChain"/> goes further: it gives every target of the compiled
/// chain (after resolver redirects, default subsets and failovers) its own mode, from that target's service-defaults.
/// </para>
/// <para>
/// Overrides match on name, namespace and partition (empty is <c>default</c>; a peered upstream is matched in the caller's
/// partition) and peer. For compatibility with 1.14, when no override in the entry names a peer, an override without a
/// peer also applies to a peered upstream of the same name (the <c>legacyUpstreams</c> rule of 1.15+). When several
/// overrides match the same upstream, the last one is used (Consul keeps them in a map), even if its mode is unset.
/// </para>
/// </remarks>
public static partial class MeshGatewayModeResolver
{
    /// <summary>Resolves the mode of <paramref name="upstream"/> from every level Consul uses.</summary>
    /// <param name="inputs">The configuration levels.</param>
    /// <param name="upstream">The upstream, whose <see cref="MeshUpstream.MeshGateway"/> is level 6.</param>
    /// <returns>The mode, the level that decided it and an explanation.</returns>
    public static MeshGatewayModeResolution Resolve(MeshGatewayModeInputs inputs, MeshUpstream upstream)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(upstream);

        int overrideIndex = FindOverride(inputs, upstream);
        MeshGatewayMode overrideMode = overrideIndex >= 0 ? inputs.UpstreamOverrides[overrideIndex].MeshGateway : MeshGatewayMode.Unset;

        // Lowest precedence first; the last set level wins.
        ReadOnlySpan<(MeshGatewayModeLevel Level, MeshGatewayMode Mode)> levels =
        [
            (MeshGatewayModeLevel.ProxyDefaults, inputs.ProxyDefaults),
            (MeshGatewayModeLevel.ServiceDefaults, inputs.ServiceDefaults),
            (MeshGatewayModeLevel.UpstreamDefaults, inputs.UpstreamDefaults),
            (MeshGatewayModeLevel.ProxyRegistration, inputs.ProxyRegistration),
            (MeshGatewayModeLevel.UpstreamOverride, overrideMode),
            (MeshGatewayModeLevel.Upstream, upstream.MeshGateway),
        ];

        var unknown = new List<MeshGatewayModeLevel>();
        MeshGatewayModeLevel decidedBy = MeshGatewayModeLevel.BuiltInDefault;
        MeshGatewayMode mode = MeshGatewayMode.Unset;
        foreach ((MeshGatewayModeLevel level, MeshGatewayMode value) in levels)
        {
            if (!value.IsKnown)
            {
                unknown.Add(level);
            }

            if (value.IsSet)
            {
                decidedBy = level;
                mode = value;
            }
        }

        if (!mode.IsSet && !upstream.IsPeered && inputs.DestinationServiceDefaults.IsSet)
        {
            decidedBy = MeshGatewayModeLevel.DestinationServiceDefaults;
            mode = inputs.DestinationServiceDefaults;
            if (!mode.IsKnown)
            {
                unknown.Add(decidedBy);
            }
        }

        return Build(mode, decidedBy, upstream.IsPeered, overrideIndex >= 0 ? overrideIndex : null, unknown, Describe(decidedBy, overrideIndex, inputs));
    }

    /// <summary>
    /// Resolves the mode from the four levels Consul's documentation lists, highest first: the upstream definition, the service
    /// instance (proxy registration), <c>service-defaults</c>, <c>proxy-defaults</c>. The first non-empty value wins.
    /// </summary>
    /// <param name="upstream">The upstream's own <c>MeshGateway</c>.</param>
    /// <param name="instance">The proxy registration's <c>Proxy.MeshGateway</c>.</param>
    /// <param name="serviceDefaults">The dialing service's <c>service-defaults</c> <c>MeshGateway</c>.</param>
    /// <param name="proxyDefaults">The <c>proxy-defaults</c> <c>MeshGateway</c>.</param>
    /// <param name="peered">Whether the upstream is peered (changes only <see cref="MeshGatewayModeResolution.EffectiveMode"/>).</param>
    /// <returns>The mode, the level that decided it and an explanation.</returns>
    /// <remarks>This is the documented simplification; <see cref="Resolve"/> gives the same answer whenever the two extra levels
    /// (<c>UpstreamConfig.Defaults</c>/<c>Overrides</c>) and the destination's service-defaults are unset.</remarks>
    public static MeshGatewayModeResolution ResolveDocumented(
        MeshGatewayMode upstream,
        MeshGatewayMode instance,
        MeshGatewayMode serviceDefaults,
        MeshGatewayMode proxyDefaults,
        bool peered = false) =>
        Resolve(
            new MeshGatewayModeInputs { ProxyDefaults = proxyDefaults, ServiceDefaults = serviceDefaults, ProxyRegistration = instance },
            new MeshUpstream { Name = "upstream", Peer = peered ? "peer" : null, MeshGateway = upstream });

    /// <summary>What a mode means for a target outside the caller's datacenter/partition (see <see cref="MeshGatewayModeResolution.EffectiveMode"/>).</summary>
    /// <param name="mode">The resolved mode.</param>
    /// <param name="peered">Whether the target is a peer's service.</param>
    /// <returns><see cref="MeshGatewayModeKind.None"/>, <see cref="MeshGatewayModeKind.Local"/> or <see cref="MeshGatewayModeKind.Remote"/>.</returns>
    public static MeshGatewayModeKind EffectiveMode(MeshGatewayMode mode, bool peered) => mode.Kind switch
    {
        // agent/xds/endpoints.go switches on local/remote only: anything else dials directly.
        MeshGatewayModeKind.Local => MeshGatewayModeKind.Local,
        MeshGatewayModeKind.Remote => MeshGatewayModeKind.Remote,
        // Peers: only local changes anything; none is logged and treated as remote (agent/proxycfg/upstreams.go).
        _ => peered ? MeshGatewayModeKind.Remote : MeshGatewayModeKind.None,
    };

    private static int FindOverride(MeshGatewayModeInputs inputs, MeshUpstream upstream)
    {
        IReadOnlyList<UpstreamModeOverride> overrides = inputs.UpstreamOverrides;
        bool anyNamesPeer = false;
        foreach (UpstreamModeOverride candidate in overrides)
        {
            if (!string.IsNullOrEmpty(candidate.Name) && !string.IsNullOrEmpty(candidate.Peer))
            {
                anyNamesPeer = true;
                break;
            }
        }

        string upstreamNamespace = OrDefault(upstream.Namespace);
        string upstreamPartition = OrDefault(upstream.IsPeered || string.IsNullOrEmpty(upstream.Partition) ? inputs.CallerPartition : upstream.Partition);
        string upstreamPeer = upstream.Peer ?? string.Empty;

        int found = -1;
        for (int i = 0; i < overrides.Count; i++)
        {
            UpstreamModeOverride candidate = overrides[i];
            if (string.IsNullOrEmpty(candidate.Name)
                || !string.Equals(candidate.Name, upstream.Name, StringComparison.Ordinal)
                || !string.Equals(OrDefault(candidate.Namespace), upstreamNamespace, StringComparison.Ordinal)
                || !string.Equals(OrDefault(candidate.Partition), upstreamPartition, StringComparison.Ordinal))
            {
                continue;
            }

            string peer = candidate.Peer ?? string.Empty;
            if (string.Equals(peer, upstreamPeer, StringComparison.Ordinal) || (!anyNamesPeer && peer.Length == 0))
            {
                found = i;
            }
        }

        return found;
    }

    private static MeshGatewayModeResolution Build(
        MeshGatewayMode mode,
        MeshGatewayModeLevel decidedBy,
        bool peered,
        int? overrideIndex,
        List<MeshGatewayModeLevel> unknown,
        string source)
    {
        MeshGatewayModeKind effective = EffectiveMode(mode, peered);
        string meaning = effective switch
        {
            MeshGatewayModeKind.Local => "through the mesh gateways of the caller's own datacenter/partition",
            MeshGatewayModeKind.Remote => peered
                ? "to the peer's imported instances (the exporter's mesh gateways)"
                : "through the mesh gateways of the target's datacenter/partition",
            _ => "directly to the target's instances",
        };

        string value = mode.IsSet ? $"mode \"{mode.RawValue}\"" : "no mode";
        string note = mode.Kind switch
        {
            MeshGatewayModeKind.Unknown => $" \"{mode.RawValue}\" is not a valid mode (Consul stored it unvalidated) and acts as {(peered ? "remote" : "none")}.",
            MeshGatewayModeKind.None when peered => " Consul treats none as remote for peers and logs a warning.",
            MeshGatewayModeKind.Unset => peered ? " Peers default to remote." : " Other datacenters/partitions default to none.",
            _ => string.Empty,
        };

        return new MeshGatewayModeResolution
        {
            Mode = mode,
            DecidedBy = decidedBy,
            MatchedOverrideIndex = overrideIndex,
            IsPeered = peered,
            EffectiveMode = effective,
            LevelsWithUnknownValues = unknown,
            Explanation = $"{source} gives {value}: a target outside the caller's datacenter/partition is dialled {meaning}.{note} Targets in the caller's own datacenter and partition ignore the mode.",
        };
    }

    private static string Describe(MeshGatewayModeLevel level, int overrideIndex, MeshGatewayModeInputs inputs) => level switch
    {
        MeshGatewayModeLevel.ProxyDefaults => "proxy-defaults/global MeshGateway",
        MeshGatewayModeLevel.ServiceDefaults => "the dialing service's service-defaults MeshGateway",
        MeshGatewayModeLevel.UpstreamDefaults => "the dialing service's service-defaults UpstreamConfig.Defaults.MeshGateway",
        MeshGatewayModeLevel.ProxyRegistration => "the proxy registration's Proxy.MeshGateway",
        MeshGatewayModeLevel.UpstreamOverride => string.Create(
            CultureInfo.InvariantCulture,
            $"the dialing service's service-defaults UpstreamConfig.Overrides[{overrideIndex}] (Name \"{inputs.UpstreamOverrides[overrideIndex].Name}\", Peer \"{inputs.UpstreamOverrides[overrideIndex].Peer}\")"),
        MeshGatewayModeLevel.Upstream => "the upstream definition's MeshGateway",
        MeshGatewayModeLevel.DestinationServiceDefaults => "the destination service's service-defaults MeshGateway (used because all six dialing-side levels are unset)",
        _ => "no level (all unset)",
    };

    private static string OrDefault(string? value) => string.IsNullOrEmpty(value) ? ConsulSniName.DefaultName : value;
}
