using Microsoft.Extensions.Options;

namespace MeshGateway.Hosting;

/// <summary>The per-field checks of <see cref="MeshGatewayOptions"/>, generated at compile time (no reflection).</summary>
[OptionsValidator]
internal sealed partial class MeshGatewayOptionsValidator : IValidateOptions<MeshGatewayOptions>
{
}
