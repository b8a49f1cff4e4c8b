using System.Text;
using MeshGateway.Model;

namespace MeshGateway.Acl;

/// <summary>Which mesh-gateway deployment a token is for.</summary>
public sealed record MeshGatewayAclOptions
{
    /// <summary>The service name the gateway registers as. Default <c>mesh-gateway</c>.</summary>
    public string ServiceName { get; init; } = "mesh-gateway";

    /// <summary>Whether the gateway serves cluster peering (adds <c>peering:read</c>). Default <see langword="true"/>, as in
    /// Consul's documented policy; <see langword="false"/> for WAN federation only.</summary>
    public bool Peering { get; init; } = true;

    /// <summary>Whether to include the optional <c>agent:read</c> (gRPC port discovery from <c>/v1/agent/self</c>). Default <see langword="true"/>.</summary>
    public bool AgentRead { get; init; } = true;

    /// <summary>The edition; Enterprise nests rules in <c>namespace</c>/<c>partition</c> blocks. Default Community.</summary>
    public ConsulEdition Edition { get; init; }

    /// <summary>Enterprise: the admin partition the gateway registers in (the policy and token are created there). Default <c>default</c>.</summary>
    public string Partition { get; init; } = "default";
}

/// <summary>
/// The permissions a mesh gateway's token needs (docs/consul-behaviour.md §7.1; Consul's
/// <c>create-a-mesh-gateway-token</c> page) and ready-to-apply policies granting them.
/// </summary>
/// <example>
/// <code>
/// var options = new MeshGatewayAclOptions { ServiceName = "mesh-gateway" };
/// string hcl = MeshGatewayAcl.ToHcl(options);   // consul acl policy create -name mgw -rules @policy.hcl
/// IReadOnlyList&lt;AclRequirement&gt; needed = MeshGatewayAcl.Requirements(options);
/// </code>
/// </example>
public static class MeshGatewayAcl
{
    /// <summary>The permissions needed, each with its reason, in the order Consul's documentation lists them.</summary>
    /// <param name="options">The deployment.</param>
    /// <returns>The requirements; evaluate a token's policies against them with <see cref="AclEvaluator"/>.</returns>
    public static IReadOnlyList<AclRequirement> Requirements(MeshGatewayAclOptions options)
    {
        Validate(options);
        bool enterprise = options.Edition == ConsulEdition.Enterprise;
        string partition = enterprise ? options.Partition : "default";
        var list = new List<AclRequirement>
        {
            new()
            {
                Resource = AclResource.Service, Access = AclAccessLevel.Write, Target = AclTargetKind.Named, Name = options.ServiceName,
                Partition = partition,
                Reason = "register the gateway itself in the catalog",
            },
            new()
            {
                Resource = AclResource.Service, Access = AclAccessLevel.Read, Target = AclTargetKind.All,
                Namespace = enterprise ? AclRequirement.Every : "default", Partition = partition,
                Reason = "discover the services and gateways to route to",
            },
            new()
            {
                // Nodes belong to a partition, not a namespace: Enterprise checks node rules in the default namespace.
                Resource = AclResource.Node, Access = AclAccessLevel.Read, Target = AclTargetKind.All, Partition = partition,
                Reason = "health results are filtered by node:read as well as service:read",
            },
            new()
            {
                Resource = AclResource.Mesh, Access = AclAccessLevel.Write, Partition = partition,
                Reason = "obtain a mesh-gateway leaf certificate (Consul's gateways terminate TLS for peered HTTP services with it)",
            },
        };
        if (options.Peering)
        {
            list.Add(new()
            {
                Resource = AclResource.Peering, Access = AclAccessLevel.Read, Partition = partition,
                Reason = "read cluster peerings to route peered traffic",
            });
            if (enterprise && partition == "default")
            {
                list.Add(new()
                {
                    Resource = AclResource.Peering, Access = AclAccessLevel.Read, Partition = AclRequirement.Every,
                    Reason = "a gateway in the default partition serves peerings of every partition",
                });
            }
        }

        if (options.AgentRead)
        {
            list.Add(new()
            {
                Resource = AclResource.Agent, Access = AclAccessLevel.Read, Target = AclTargetKind.All, Partition = partition, IsOptional = true,
                Reason = "read /v1/agent/self to discover the agent's gRPC port (not needed when the port is configured)",
            });
        }

        return list;
    }

    /// <summary>
    /// The policy as HCL, in the shape of Consul's documented example (Community: top-level rules; Enterprise: service
    /// and agent rules under <c>namespace "default"</c>, read rules under <c>namespace_prefix ""</c>, and
    /// <c>partition_prefix "" { peering = "read" }</c> in the default partition).
    /// </summary>
    /// <param name="options">The deployment.</param>
    /// <returns>HCL ready for <c>consul acl policy create -rules @file.hcl</c>.</returns>
    public static string ToHcl(MeshGatewayAclOptions options)
    {
        Validate(options);
        var hcl = new StringBuilder();
        hcl.Append("mesh = \"write\"\n");
        if (options.Peering)
        {
            hcl.Append("peering = \"read\"\n");
        }

        string name = HclQuote.Quote(options.ServiceName);
        if (options.Edition == ConsulEdition.Community)
        {
            AppendHclRule(hcl, "service", name, "write", "");
            AppendHclRule(hcl, "service_prefix", "\"\"", "read", "");
            AppendHclRule(hcl, "node_prefix", "\"\"", "read", "");
            if (options.AgentRead)
            {
                AppendHclRule(hcl, "agent_prefix", "\"\"", "read", "");
            }

            return hcl.ToString();
        }

        if (options.Peering && options.Partition == "default")
        {
            hcl.Append("partition_prefix \"\" {\n  peering = \"read\"\n}\n");
        }

        hcl.Append("namespace \"default\" {\n");
        AppendHclRule(hcl, "service", name, "write", "  ");
        if (options.AgentRead)
        {
            AppendHclRule(hcl, "agent_prefix", "\"\"", "read", "  ");
        }

        hcl.Append("}\nnamespace_prefix \"\" {\n");
        AppendHclRule(hcl, "node_prefix", "\"\"", "read", "  ");
        AppendHclRule(hcl, "service_prefix", "\"\"", "read", "  ");
        hcl.Append("}\n");
        return hcl.ToString();
    }

    /// <summary>The same policy as JSON, in the shape of Consul's documented JSON example (rule bodies in one-element lists).</summary>
    /// <param name="options">The deployment.</param>
    /// <returns>JSON rules (indented with two spaces).</returns>
    public static string ToJson(MeshGatewayAclOptions options)
    {
        Validate(options);
        using var stream = new MemoryStream();
        using (var json = new System.Text.Json.Utf8JsonWriter(stream, new System.Text.Json.JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("mesh", "write");
            if (options.Peering)
            {
                json.WriteString("peering", "read");
            }

            if (options.Edition == ConsulEdition.Community)
            {
                WriteJsonRule(json, "service", options.ServiceName, "write");
                WriteJsonRule(json, "service_prefix", string.Empty, "read");
                WriteJsonRule(json, "node_prefix", string.Empty, "read");
                if (options.AgentRead)
                {
                    WriteJsonRule(json, "agent_prefix", string.Empty, "read");
                }
            }
            else
            {
                if (options.Peering && options.Partition == "default")
                {
                    json.WriteStartObject("partition_prefix");
                    json.WriteStartArray(string.Empty);
                    json.WriteStartObject();
                    json.WriteString("peering", "read");
                    json.WriteEndObject();
                    json.WriteEndArray();
                    json.WriteEndObject();
                }

                json.WriteStartObject("namespace");
                json.WriteStartArray("default");
                json.WriteStartObject();
                if (options.AgentRead)
                {
                    WriteJsonRule(json, "agent_prefix", string.Empty, "read");
                }

                WriteJsonRule(json, "service", options.ServiceName, "write");
                json.WriteEndObject();
                json.WriteEndArray();
                json.WriteEndObject();

                json.WriteStartObject("namespace_prefix");
                json.WriteStartArray(string.Empty);
                json.WriteStartObject();
                WriteJsonRule(json, "node_prefix", string.Empty, "read");
                WriteJsonRule(json, "service_prefix", string.Empty, "read");
                json.WriteEndObject();
                json.WriteEndArray();
                json.WriteEndObject();
            }

            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    private static void Validate(MeshGatewayAclOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrEmpty(options.ServiceName))
        {
            throw new ArgumentException("The gateway's service name must not be empty.", nameof(options));
        }

        if (options.Edition == ConsulEdition.Enterprise && string.IsNullOrEmpty(options.Partition))
        {
            throw new ArgumentException("The partition must not be empty; use \"default\".", nameof(options));
        }
    }

    private static void AppendHclRule(StringBuilder hcl, string keyword, string quotedLabel, string policy, string indent)
        => hcl.Append(indent).Append(keyword).Append(' ').Append(quotedLabel).Append(" {\n")
            .Append(indent).Append("  policy = \"").Append(policy).Append("\"\n")
            .Append(indent).Append("}\n");

    private static void WriteJsonRule(System.Text.Json.Utf8JsonWriter json, string keyword, string label, string policy)
    {
        json.WriteStartObject(keyword);
        json.WriteStartArray(label);
        json.WriteStartObject();
        json.WriteString("policy", policy);
        json.WriteEndObject();
        json.WriteEndArray();
        json.WriteEndObject();
    }
}
