using System.Text.Json;
using System.Text.Json.Serialization;
using MeshGateway.Model;

namespace MeshGateway.Consul;

/// <summary>
/// Source-generated (AOT-safe) JSON metadata for every DTO the client reads or writes. Property names match
/// case-insensitively because Consul's casing varies (tagged addresses are documented lower-case but sent PascalCase).
/// Health entries are read straight into the catalog model by <see cref="CatalogHealthJsonConverter"/>.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNameCaseInsensitive = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    ReadCommentHandling = JsonCommentHandling.Skip,
    AllowTrailingCommas = true,
    Converters = [typeof(CatalogHealthJsonConverter)])]
[JsonSerializable(typeof(IReadOnlyList<CatalogServiceInstance>))]
[JsonSerializable(typeof(Dictionary<string, IReadOnlyList<CatalogServiceInstance>>))]
[JsonSerializable(typeof(ConsulCaRoots))]
[JsonSerializable(typeof(List<ConsulPartition>))]
[JsonSerializable(typeof(ConsulLeafCertificate))]
[JsonSerializable(typeof(ConsulAgentSelf))]
[JsonSerializable(typeof(ConsulAgentService))]
[JsonSerializable(typeof(List<string>))]
[JsonSerializable(typeof(Dictionary<string, List<string>>))]
[JsonSerializable(typeof(ConsulProxyDefaults))]
[JsonSerializable(typeof(List<ConsulProxyDefaults>))]
[JsonSerializable(typeof(List<ConsulCatalogNode>))]
[JsonSerializable(typeof(ConsulNodeServices))]
[JsonSerializable(typeof(List<ConsulCheckState>))]
[JsonSerializable(typeof(CheckList))]
[JsonSerializable(typeof(ConsulServiceDefaults))]
[JsonSerializable(typeof(List<ConsulServiceDefaults>))]
[JsonSerializable(typeof(ConsulServiceResolver))]
[JsonSerializable(typeof(List<ConsulServiceResolver>))]
[JsonSerializable(typeof(ConsulMeshConfigEntry))]
[JsonSerializable(typeof(ConsulExportedServices))]
[JsonSerializable(typeof(ConsulPeering))]
[JsonSerializable(typeof(List<ConsulPeering>))]
[JsonSerializable(typeof(ConsulServiceRegistration))]
[JsonSerializable(typeof(ConsulAclToken))]
[JsonSerializable(typeof(ConsulAclPolicy))]
[JsonSerializable(typeof(ConsulAclRole))]
[JsonSerializable(typeof(JsonElement))]
[JsonSerializable(typeof(string))]
internal sealed partial class ConsulJsonContext : JsonSerializerContext;
