namespace MeshGateway.Model;

/// <summary>The discovery-chain part: the mode of every target a chain compiles to.</summary>
public static partial class MeshGatewayModeResolver
{
    // Each redirect or default-subset step visits a new target ID (a repeat is a cycle, reported as Consul does), so this
    // only bounds pathological inputs.
    private const int MaxResolveSteps = 1024;

    /// <summary>
    /// Compiles the targets of <paramref name="upstream"/>'s discovery chain (resolver redirects, default subsets,
    /// failovers) and gives each its mesh gateway mode as Consul's compiler does (<c>agent/consul/discoverychain/compile.go</c>
    /// <c>getResolverNode</c>): the target service's own <c>service-defaults</c> <c>MeshGateway</c>, else <c>proxy-defaults</c>
    /// of the target's partition, then replaced by the dialing side's value (<see cref="Resolve"/>'s six levels, passed as
    /// <c>OverrideMeshGateway</c>) when that is set. Targets of an <c>ExternalSNI</c> service always have an empty mode.
    /// </summary>
    /// <param name="inputs">The dialing side's levels; <see cref="MeshGatewayModeInputs.DestinationServiceDefaults"/> counts as the
    /// upstream's own service's <c>service-defaults</c> when <paramref name="entries"/> has none for it.</param>
    /// <param name="upstream">The upstream (a service; peers and prepared queries have no chain).</param>
    /// <param name="callerDatacenter">The datacenter the chain is evaluated in (the caller's).</param>
    /// <param name="entries">The <c>service-resolver</c>, <c>service-defaults</c> and other partitions' <c>proxy-defaults</c> entries.</param>
    /// <returns>The targets with their modes, or Consul's compile error.</returns>
    /// <remarks>Splitters and routers (HTTP-only) are not read: the chain starts at the upstream's resolver. A target's mode
    /// decides only for targets outside the caller's datacenter/partition (see <see cref="UpstreamTargetPlanner.PlanChain"/>);
    /// Consul 1.8's compiler also blanked the mode of same-datacenter targets, which changes nothing that is dialled.</remarks>
    public static DiscoveryChainModes ResolveChain(MeshGatewayModeInputs inputs, MeshUpstream upstream, string callerDatacenter, DiscoveryChainEntries? entries = null)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(upstream);
        ArgumentException.ThrowIfNullOrEmpty(callerDatacenter);
        entries ??= new DiscoveryChainEntries();

        // The dialing side's winner, without the destination fallback: the compiler applies service-defaults per target.
        MeshGatewayModeResolution dialing = Resolve(inputs with { DestinationServiceDefaults = MeshGatewayMode.Unset }, upstream);
        if (upstream.IsPeered || upstream.DestinationType == UpstreamDestinationType.PreparedQuery)
        {
            return new DiscoveryChainModes
            {
                Override = dialing,
                Error = upstream.IsPeered
                    ? "a peered upstream has no discovery chain; its mode is Resolve's (peers default to remote)"
                    : "a prepared query has no discovery chain and no mesh gateway mode",
            };
        }

        var compiler = new ChainCompiler(inputs, upstream, entries, dialing);
        string callerPartition = OrDefault(inputs.CallerPartition);
        var start = new TargetKey(
            upstream.Name,
            string.IsNullOrEmpty(upstream.Subset) ? null : upstream.Subset,
            OrDefault(upstream.Namespace),
            string.IsNullOrEmpty(upstream.Partition) ? callerPartition : upstream.Partition,
            string.IsNullOrEmpty(upstream.Datacenter) ? callerDatacenter : upstream.Datacenter);
        string? error = compiler.Compile(start);
        return new DiscoveryChainModes { Override = dialing, Targets = error is null ? compiler.Targets : [], Error = error };
    }

    private readonly record struct TargetKey(string Service, string? Subset, string Namespace, string Partition, string Datacenter)
    {
        // structs.DiscoveryTarget ID (1.11+): [<subset>.]<service>.<namespace>.<partition>.<datacenter>.
        public string Id => (Subset is null ? string.Empty : Subset + ".") + Service + "." + Namespace + "." + Partition + "." + Datacenter;

        // compile.go rewriteTarget: empty fields keep the target's value; another service clears the subset.
        public TargetKey Rewrite(string? service, string? subset, string? @namespace, string? partition, string? datacenter)
        {
            TargetKey next = this;
            if (!string.IsNullOrEmpty(service) && !string.Equals(service, Service, StringComparison.Ordinal))
            {
                next = next with { Service = service, Subset = null };
            }

            if (!string.IsNullOrEmpty(subset))
            {
                next = next with { Subset = subset };
            }

            if (!string.IsNullOrEmpty(partition))
            {
                next = next with { Partition = partition };
            }

            if (!string.IsNullOrEmpty(@namespace))
            {
                next = next with { Namespace = @namespace };
            }

            if (!string.IsNullOrEmpty(datacenter))
            {
                next = next with { Datacenter = datacenter };
            }

            return next;
        }
    }

    private sealed class ChainCompiler(MeshGatewayModeInputs inputs, MeshUpstream upstream, DiscoveryChainEntries entries, MeshGatewayModeResolution dialing)
    {
        private readonly List<ChainTarget> _targets = [];
        private readonly HashSet<string> _seen = new(StringComparer.Ordinal);

        public IReadOnlyList<ChainTarget> Targets => _targets;

        public string? Compile(TargetKey start)
        {
            string? error = ResolveTarget(start, ChainTargetRole.Primary, null, out TargetKey primary, out ServiceResolverEntry? resolver);
            if (error is not null || resolver is null)
            {
                return error;
            }

            // Failover: the section for the target's subset, else "*"; one target per datacenter, or one from the other
            // fields; a failover to the target itself is dropped. Failover targets go through redirects and default subsets
            // but not through their own failover.
            if (!resolver.Failover.TryGetValue(primary.Subset ?? string.Empty, out ServiceResolverFailover? failover)
                && !resolver.Failover.TryGetValue("*", out failover))
            {
                return null;
            }

            var failoverTargets = new List<TargetKey>();
            if (failover.Datacenters.Count > 0)
            {
                foreach (string dc in failover.Datacenters)
                {
                    TargetKey candidate = primary.Rewrite(failover.Service, failover.ServiceSubset, failover.Namespace, null, dc);
                    if (candidate.Id != primary.Id)
                    {
                        failoverTargets.Add(candidate);
                    }
                }
            }
            else
            {
                TargetKey candidate = primary.Rewrite(failover.Service, failover.ServiceSubset, failover.Namespace, null, null);
                if (candidate.Id != primary.Id)
                {
                    failoverTargets.Add(candidate);
                }
            }

            foreach (TargetKey target in failoverTargets)
            {
                error = ResolveTarget(target, ChainTargetRole.Failover, primary.Id, out _, out _);
                if (error is not null)
                {
                    return error;
                }
            }

            return null;
        }

        private string? ResolveTarget(TargetKey target, ChainTargetRole role, string? failoverOf, out TargetKey resolved, out ServiceResolverEntry? resolverUsed)
        {
            resolved = target;
            resolverUsed = null;
            var history = new List<string>();
            ServiceResolverEntry resolver;
            for (int step = 0; ; step++)
            {
                if (step >= MaxResolveSteps)
                {
                    return "resolving '" + target.Id + "' took more than " + MaxResolveSteps + " redirect steps";
                }

                resolver = FindResolver(target) ?? new ServiceResolverEntry { Name = target.Service };
                if (history.Contains(target.Id))
                {
                    history.Add(target.Id);
                    return "detected circular resolver redirect: [" + string.Join(" -> ", history) + "]";
                }

                history.Add(target.Id);
                if (resolver.Redirect is { } redirect)
                {
                    TargetKey redirected = target.Rewrite(redirect.Service, redirect.ServiceSubset, redirect.Namespace, redirect.Partition, redirect.Datacenter);
                    if (redirected.Id != target.Id)
                    {
                        target = redirected;
                        continue;
                    }
                }

                if (target.Subset is null && !string.IsNullOrEmpty(resolver.DefaultSubset))
                {
                    target = target.Rewrite(null, resolver.DefaultSubset, null, null, null);
                    continue;
                }

                break;
            }

            if (target.Subset is not null && !resolver.Subsets.Contains(target.Subset))
            {
                return $"service \"{target.Service}\" does not have a subset named \"{target.Subset}\"";
            }

            ChainServiceDefaults? defaults = FindServiceDefaults(target);
            bool external = !string.IsNullOrEmpty(defaults?.ExternalSni);
            if (external)
            {
                string? forbidden = resolver.Redirect is not null ? "redirects" : resolver.Subsets.Count > 0 ? "subsets" : resolver.Failover.Count > 0 ? "failover" : null;
                if (forbidden is not null)
                {
                    return $"service \"{target.Service}\" has an external SNI set; cannot define {forbidden} for external services";
                }
            }

            resolved = target;
            resolverUsed = resolver;
            if (_seen.Add(target.Id))
            {
                _targets.Add(Describe(target, role, failoverOf, history.Count > 1 ? history.GetRange(0, history.Count - 1) : [], external, defaults));
            }

            return null;
        }

        private ChainTarget Describe(TargetKey target, ChainTargetRole role, string? failoverOf, List<string> redirectedFrom, bool external, ChainServiceDefaults? defaults)
        {
            MeshGatewayMode mode = MeshGatewayMode.Unset;
            ChainTargetModeSource source = ChainTargetModeSource.None;
            string why;
            if (external)
            {
                source = ChainTargetModeSource.External;
                why = $"its service '{target.Service}' has ExternalSNI, so the compiler leaves the mode empty and mesh gateways are bypassed";
            }
            else
            {
                MeshGatewayMode own = defaults?.MeshGateway ?? MeshGatewayMode.Unset;
                MeshGatewayMode proxyDefaults = string.Equals(target.Partition, OrDefault(inputs.CallerPartition), StringComparison.Ordinal) && inputs.ProxyDefaults.IsSet
                    ? inputs.ProxyDefaults
                    : entries.ProxyDefaultsByPartition.GetValueOrDefault(target.Partition);
                if (own.IsSet)
                {
                    (mode, source) = (own, ChainTargetModeSource.TargetServiceDefaults);
                }
                else if (proxyDefaults.IsSet)
                {
                    (mode, source) = (proxyDefaults, ChainTargetModeSource.ProxyDefaults);
                }

                string before = source switch
                {
                    ChainTargetModeSource.TargetServiceDefaults => $"service-defaults of '{target.Service}' gives mode \"{own.RawValue}\"",
                    ChainTargetModeSource.ProxyDefaults => $"proxy-defaults of partition '{target.Partition}' gives mode \"{proxyDefaults.RawValue}\"",
                    _ => $"neither service-defaults of '{target.Service}' nor proxy-defaults set a mode",
                };
                if (dialing.Mode.IsSet)
                {
                    (mode, source) = (dialing.Mode, ChainTargetModeSource.Override);
                    why = $"the dialing side's mode \"{dialing.Mode.RawValue}\" (decided by {dialing.DecidedBy}) replaces what the target had ({before})";
                }
                else
                {
                    why = before + " and the dialing side sets none";
                }
            }

            string reached = role == ChainTargetRole.Primary ? "primary target" : $"failover target of '{failoverOf}'";
            if (redirectedFrom.Count > 0)
            {
                reached += " reached from '" + string.Join("' -> '", redirectedFrom) + "'";
            }

            return new ChainTarget
            {
                Id = target.Id,
                Service = target.Service,
                Subset = target.Subset,
                Namespace = target.Namespace,
                Partition = target.Partition,
                Datacenter = target.Datacenter,
                Role = role,
                RedirectedFrom = redirectedFrom,
                External = external,
                Mode = mode,
                DecidedBy = source,
                Explanation = $"'{target.Id}' ({reached}): {why}.",
            };
        }

        private ServiceResolverEntry? FindResolver(TargetKey target)
        {
            foreach (ServiceResolverEntry entry in entries.Resolvers)
            {
                if (string.Equals(entry.Name, target.Service, StringComparison.Ordinal)
                    && string.Equals(OrDefault(entry.Namespace), target.Namespace, StringComparison.Ordinal)
                    && string.Equals(OrDefault(entry.Partition), target.Partition, StringComparison.Ordinal))
                {
                    return entry;
                }
            }

            return null;
        }

        private ChainServiceDefaults? FindServiceDefaults(TargetKey target)
        {
            foreach (ChainServiceDefaults entry in entries.ServiceDefaults)
            {
                if (string.Equals(entry.Name, target.Service, StringComparison.Ordinal)
                    && string.Equals(OrDefault(entry.Namespace), target.Namespace, StringComparison.Ordinal)
                    && string.Equals(OrDefault(entry.Partition), target.Partition, StringComparison.Ordinal))
                {
                    return entry;
                }
            }

            // MeshGatewayModeInputs.DestinationServiceDefaults is the upstream's own service's entry.
            bool upstreamService = string.Equals(target.Service, upstream.Name, StringComparison.Ordinal)
                && string.Equals(target.Namespace, OrDefault(upstream.Namespace), StringComparison.Ordinal);
            return upstreamService && inputs.DestinationServiceDefaults.IsSet
                ? new ChainServiceDefaults { Name = target.Service, MeshGateway = inputs.DestinationServiceDefaults }
                : null;
        }
    }
}
