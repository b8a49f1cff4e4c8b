namespace MeshGateway.Model;

/// <summary>
/// Decides where a sidecar dials for one upstream and which SNI it sends, as Consul's Envoy configuration does
/// (docs/consul-behaviour.md §5.2; Consul <c>agent/xds/endpoints.go</c> <c>makeLoadAssignmentEndpointGroup</c>,
/// <c>makeUpstreamLoadAssignmentForPeerService</c>; <c>agent/proxycfg/upstreams.go</c>).
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Same datacenter and partition: the target's instances, whatever the mode (LAN best address).</item>
/// <item>Another datacenter/partition: unset, <c>none</c> or an unknown string dial the instances (WAN best address);
/// <c>local</c> the caller's gateways (LAN); <c>remote</c> the target's gateways (WAN). Through gateways every endpoint gets one
/// health: healthy when any real target instance is healthy. The SNI is forms 1–4 with the target's datacenter.</item>
/// <item>Peers: unset, <c>remote</c>, <c>none</c> (flagged, Consul warns) or unknown dial the imported instances (the exporter's
/// gateways, WAN); <c>local</c> the caller's gateways (LAN). The SNI is the first <c>Connect.PeerMeta.SNI</c> of the imported instances.</item>
/// <item>When the mode needs gateways and none are known the result is an error: Consul leaves the cluster without endpoints and
/// never falls back to dialling directly.</item>
/// <item>Prepared queries (<see cref="UpstreamDestinationType.PreparedQuery"/>): the query's result instances (put in
/// <see cref="MeshCatalogView.TargetInstances"/>) are dialled directly whatever the mode, with the SNI of form 7
/// (<c>QuerySNI</c>).</item>
/// </list>
/// </remarks>
public static class UpstreamTargetPlanner
{
    /// <summary>Plans one upstream.</summary>
    /// <param name="request">The caller, the upstream and its resolved mode.</param>
    /// <param name="catalog">What the sidecar sees in the catalog.</param>
    /// <returns>Where to dial, the SNI and why; check <see cref="UpstreamTarget.IsRoutable"/>.</returns>
    public static UpstreamTarget Plan(UpstreamTargetRequest request, MeshCatalogView catalog)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(request.Upstream);

        return request.Upstream.DestinationType == UpstreamDestinationType.PreparedQuery ? PlanPreparedQuery(request, catalog)
            : request.Upstream.IsPeered ? PlanPeer(request, catalog)
            : PlanService(request, catalog);
    }

    /// <summary>
    /// Plans every target of a compiled discovery chain (<see cref="MeshGatewayModeResolver.ResolveChain"/>), each with its own
    /// mode, as Consul's Envoy configuration does per chain target (<c>agent/xds/endpoints.go</c>
    /// <c>makeUpstreamLoadAssignmentForDiscoveryChain</c>: one load assignment per target, with the target's
    /// <c>MeshGateway</c>).
    /// </summary>
    /// <param name="request">The caller; its <see cref="UpstreamTargetRequest.Upstream"/> and <see cref="UpstreamTargetRequest.Mode"/> are replaced per target.</param>
    /// <param name="chain">The chain's targets and modes.</param>
    /// <param name="catalogFor">What the sidecar sees in the catalog for one target.</param>
    /// <returns>One plan per chain target, in the chain's order (primary first); empty when the chain did not compile.</returns>
    public static IReadOnlyList<UpstreamTarget> PlanChain(UpstreamTargetRequest request, DiscoveryChainModes chain, Func<ChainTarget, MeshCatalogView> catalogFor)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(chain);
        ArgumentNullException.ThrowIfNull(catalogFor);
        var plans = new List<UpstreamTarget>(chain.Targets.Count);
        foreach (ChainTarget target in chain.Targets)
        {
            plans.Add(Plan(request with { Upstream = target.ToUpstream(), Mode = target.Mode }, catalogFor(target)));
        }

        return plans;
    }

    // agent/xds/endpoints.go: prepared-query upstreams have no discovery chain; their cluster is named
    // connect.UpstreamSNI (QuerySNI with the upstream's datacenter, else the caller's) and its endpoints are the query's
    // result nodes, each at its best address (WAN when the node is in another datacenter). No gateway mode applies.
    private static UpstreamTarget PlanPreparedQuery(UpstreamTargetRequest request, MeshCatalogView catalog)
    {
        MeshUpstream upstream = request.Upstream;
        var caller = new GatewayKey(request.CallerDatacenter, request.CallerPartition);
        string datacenter = string.IsNullOrEmpty(upstream.Datacenter) ? request.CallerDatacenter : upstream.Datacenter;
        string sni = ConsulSniName.ForPreparedQuery(upstream.Name, datacenter, request.TrustDomain).ToString();
        string where = $"prepared query '{upstream.Name}' (datacenter {datacenter})";
        bool unknown = !request.Mode.IsKnown;
        return Direct(request, catalog, caller, sni, modeIgnored: true, unknown,
            $"{where} is dialled at the query's result instances (WAN addresses for other datacenters' nodes); prepared queries have no discovery chain, so no mesh gateway mode applies and mesh gateways do not route their names");
    }

    private static UpstreamTarget PlanService(UpstreamTargetRequest request, MeshCatalogView catalog)
    {
        MeshUpstream upstream = request.Upstream;
        var caller = new GatewayKey(request.CallerDatacenter, request.CallerPartition);
        var target = new GatewayKey(
            string.IsNullOrEmpty(upstream.Datacenter) ? caller.Datacenter : upstream.Datacenter,
            string.IsNullOrEmpty(upstream.Partition) ? caller.Partition : upstream.Partition);
        string sni = ConsulSniName.ForService(upstream.Name, upstream.Namespace, target.Partition, target.Datacenter, request.TrustDomain, upstream.Subset).ToString();
        bool unknown = !request.Mode.IsKnown;
        string where = $"'{upstream.Name}' in {target}";

        if (target == caller)
        {
            return Direct(request, catalog, caller, sni, modeIgnored: true, unknown,
                $"{where} is in the caller's own datacenter and partition, so the mode (\"{request.Mode.RawValue}\") is ignored and its instances are dialled directly");
        }

        MeshGatewayModeKind applied = MeshGatewayModeResolver.EffectiveMode(request.Mode, peered: false);
        switch (applied)
        {
            case MeshGatewayModeKind.Local:
                if (catalog.LocalGateways.Count == 0)
                {
                    return Unroutable(UpstreamTargetError.NoLocalGateways, sni, applied, unknown,
                        $"{where} needs the mesh gateways of {caller} (mode local) but none are registered; Consul does not fall back to dialling directly.");
                }

                return ThroughGateways(request, catalog, catalog.LocalGateways, UpstreamDialKind.LocalGateways, caller, sni, applied,
                    $"{where} is reached through the mesh gateways of the caller's datacenter {caller} (mode local), at their LAN addresses");

            case MeshGatewayModeKind.Remote:
                if (!catalog.RemoteGateways.TryGetValue(target, out IReadOnlyList<CatalogServiceInstance>? gateways) || gateways.Count == 0)
                {
                    return Unroutable(UpstreamTargetError.NoTargetGateways, sni, applied, unknown,
                        $"{where} needs the mesh gateways of {target} (mode remote) but none are known; Consul does not fall back to dialling directly.");
                }

                return ThroughGateways(request, catalog, gateways, UpstreamDialKind.TargetGateways, caller, sni, applied,
                    $"{where} is reached through the mesh gateways of {target} (mode remote), at their WAN addresses");

            default:
                string why = request.Mode.Kind switch
                {
                    MeshGatewayModeKind.None => "mode none",
                    MeshGatewayModeKind.Unknown => $"the unknown mode \"{request.Mode.RawValue}\" acts as none",
                    _ => "no mode is set, which means none",
                };
                return Direct(request, catalog, caller, sni, modeIgnored: false, unknown,
                    $"{where} is dialled directly at its instances' WAN addresses ({why})");
        }
    }

    private static UpstreamTarget PlanPeer(UpstreamTargetRequest request, MeshCatalogView catalog)
    {
        MeshUpstream upstream = request.Upstream;
        var caller = new GatewayKey(request.CallerDatacenter, request.CallerPartition);
        MeshGatewayModeKind applied = MeshGatewayModeResolver.EffectiveMode(request.Mode, peered: true);
        bool unknown = !request.Mode.IsKnown;
        bool noneAsRemote = request.Mode.Kind == MeshGatewayModeKind.None;
        string where = $"'{upstream.Name}' imported from peer '{upstream.Peer}'";

        string? sni = null;
        foreach (CatalogServiceInstance instance in catalog.TargetInstances)
        {
            if (instance.Service.PeerSni.Count > 0 && !string.IsNullOrEmpty(instance.Service.PeerSni[0]))
            {
                sni = instance.Service.PeerSni[0];
                break;
            }
        }

        if (sni is null)
        {
            return Unroutable(UpstreamTargetError.NoPeerSni, null, applied, unknown,
                $"{where} has no imported instance carrying Connect.PeerMeta.SNI, so there is no name to send.") with { NoneTreatedAsRemote = noneAsRemote };
        }

        if (applied == MeshGatewayModeKind.Local)
        {
            if (catalog.LocalGateways.Count == 0)
            {
                return Unroutable(UpstreamTargetError.NoLocalGateways, sni, applied, unknown,
                    $"{where} needs the mesh gateways of {caller} (mode local) but none are registered; Consul does not fall back.");
            }

            List<UpstreamDialEndpoint> local = Endpoints(catalog.LocalGateways, caller, forceWan: false, request.OnlyPassing, overrideHealth: null, out bool localWan);
            return new UpstreamTarget
            {
                DialKind = UpstreamDialKind.LocalGateways,
                Endpoints = local,
                UsesWanAddresses = localWan,
                Sni = sni,
                AppliedMode = applied,
                Explanation = $"{where} is reached through the mesh gateways of the caller's datacenter {caller} (mode local), at their LAN addresses, with the exporter's SNI.",
            };
        }

        List<UpstreamDialEndpoint> endpoints = Endpoints(catalog.TargetInstances, caller, forceWan: true, request.OnlyPassing, overrideHealth: null, out _);
        string why = request.Mode.Kind switch
        {
            MeshGatewayModeKind.Remote => "mode remote",
            MeshGatewayModeKind.None => "mode none, which Consul treats as remote for peers and logs a warning",
            MeshGatewayModeKind.Unknown => $"the unknown mode \"{request.Mode.RawValue}\" acts as remote",
            _ => "no mode is set, and peers default to remote",
        };
        return new UpstreamTarget
        {
            DialKind = UpstreamDialKind.PeerGateways,
            Endpoints = endpoints,
            UsesWanAddresses = true,
            Sni = sni,
            AppliedMode = applied,
            NoneTreatedAsRemote = noneAsRemote,
            UnknownMode = unknown,
            Explanation = $"{where} is dialled at its imported instances (the exporter's mesh gateways), at their WAN addresses ({why}), with the exporter's SNI.",
        };
    }

    private static UpstreamTarget Direct(UpstreamTargetRequest request, MeshCatalogView catalog, GatewayKey caller, string sni, bool modeIgnored, bool unknown, string explanation)
    {
        if (catalog.TargetInstances.Count == 0)
        {
            return Unroutable(UpstreamTargetError.NoTargetInstances, sni, MeshGatewayModeKind.None, unknown, explanation + ", but it has no instances.") with { ModeIgnored = modeIgnored };
        }

        List<UpstreamDialEndpoint> endpoints = Endpoints(catalog.TargetInstances, caller, forceWan: false, request.OnlyPassing, overrideHealth: null, out bool wan);
        return new UpstreamTarget
        {
            DialKind = UpstreamDialKind.TargetInstances,
            Endpoints = endpoints,
            UsesWanAddresses = wan,
            Sni = sni,
            AppliedMode = MeshGatewayModeKind.None,
            ModeIgnored = modeIgnored,
            UnknownMode = unknown,
            Explanation = explanation + ".",
        };
    }

    private static UpstreamTarget ThroughGateways(
        UpstreamTargetRequest request,
        MeshCatalogView catalog,
        IReadOnlyList<CatalogServiceInstance> gateways,
        UpstreamDialKind kind,
        GatewayKey caller,
        string sni,
        MeshGatewayModeKind applied,
        string explanation)
    {
        // Every gateway endpoint gets the aggregate health of the real targets (agent/xds/endpoints.go, OverrideHealth).
        bool anyHealthy = false;
        foreach (CatalogServiceInstance instance in catalog.TargetInstances)
        {
            if (instance.IsHealthy(request.OnlyPassing))
            {
                anyHealthy = true;
                break;
            }
        }

        List<UpstreamDialEndpoint> endpoints = Endpoints(gateways, caller, forceWan: false, request.OnlyPassing, anyHealthy, out bool wan);
        return new UpstreamTarget
        {
            DialKind = kind,
            Endpoints = endpoints,
            UsesWanAddresses = wan,
            Sni = sni,
            AppliedMode = applied,
            Explanation = explanation + (anyHealthy ? "." : "; every gateway endpoint is marked unhealthy because no target instance is healthy."),
        };
    }

    private static List<UpstreamDialEndpoint> Endpoints(
        IReadOnlyList<CatalogServiceInstance> instances,
        GatewayKey caller,
        bool forceWan,
        bool onlyPassing,
        bool? overrideHealth,
        out bool anyWan)
    {
        anyWan = false;
        var endpoints = new List<UpstreamDialEndpoint>(instances.Count);
        foreach (CatalogServiceInstance instance in instances)
        {
            bool wan = forceWan || BestAddress.IsWan(caller, instance);
            anyWan |= wan;
            BestAddress best = BestAddress.Select(instance, wan);
            endpoints.Add(new UpstreamDialEndpoint(best.Address, best.Port, overrideHealth ?? instance.IsHealthy(onlyPassing), best.AddressSource, instance.Node.Name, instance.Service.Id));
        }

        return endpoints;
    }

    private static UpstreamTarget Unroutable(UpstreamTargetError error, string? sni, MeshGatewayModeKind applied, bool unknown, string explanation) => new()
    {
        DialKind = UpstreamDialKind.Unroutable,
        Error = error,
        Sni = sni,
        AppliedMode = applied,
        UnknownMode = unknown,
        Explanation = explanation,
    };
}
