using System.Diagnostics.CodeAnalysis;

namespace MeshGateway.Model;

/// <summary>What a <see cref="MeshGatewayMode"/> holds.</summary>
public enum MeshGatewayModeKind
{
    /// <summary><c>""</c>: not set at this level; the next level decides.</summary>
    Unset = 0,

    /// <summary><c>none</c>: dial the target's instances directly.</summary>
    None,

    /// <summary><c>local</c>: dial the mesh gateways of the caller's own datacenter/partition.</summary>
    Local,

    /// <summary><c>remote</c>: dial the mesh gateways of the target's datacenter/partition.</summary>
    Remote,

    /// <summary>A non-empty string Consul's HTTP API stored without validating it (e.g. <c>bogus</c>, <c>LOCAL</c>, <c>" local"</c>).</summary>
    Unknown,
}

/// <summary>
/// A mesh gateway mode as Consul stores it (<c>"MeshGateway": {"Mode": "local"}</c>; Consul
/// <c>agent/structs/connect_proxy_config.go</c>): unset, <c>none</c>, <c>local</c>, <c>remote</c>, or an unknown string
/// kept exactly as read.
/// </summary>
/// <remarks>
/// Consul validates modes only where it loads configuration files and service definitions; its HTTP API stores any
/// string unchanged (docs/consul-behaviour.md §5, checked on a 1.8.7 agent). Data read from Consul therefore goes through
/// <see cref="FromConsul(string?)"/>, which never fails and keeps the raw value (<see cref="IsKnown"/>,
/// <see cref="RawValue"/>); a user's configuration goes through <see cref="TryParse(string?, out MeshGatewayMode, out string?)"/>,
/// which rejects anything else with Consul's own message. Comparison is case-sensitive, as in Consul: <c>Remote</c> is unknown.
/// Equality compares the raw value ordinally.
/// </remarks>
public readonly struct MeshGatewayMode : IEquatable<MeshGatewayMode>
{
    private readonly string? _raw;

    private MeshGatewayMode(string? raw, MeshGatewayModeKind kind)
    {
        _raw = raw;
        Kind = kind;
    }

    /// <summary>Unset (<c>""</c>); also the default value.</summary>
    public static MeshGatewayMode Unset => default;

    /// <summary><c>none</c>.</summary>
    public static MeshGatewayMode None { get; } = new("none", MeshGatewayModeKind.None);

    /// <summary><c>local</c>.</summary>
    public static MeshGatewayMode Local { get; } = new("local", MeshGatewayModeKind.Local);

    /// <summary><c>remote</c>.</summary>
    public static MeshGatewayMode Remote { get; } = new("remote", MeshGatewayModeKind.Remote);

    /// <summary>Which value this is.</summary>
    public MeshGatewayModeKind Kind { get; }

    /// <summary>Whether the value is non-empty; Consul's merge lets a level win exactly when this is true, known or not.</summary>
    public bool IsSet => Kind != MeshGatewayModeKind.Unset;

    /// <summary>Whether the value is unset or one of <c>none</c>, <c>local</c>, <c>remote</c>.</summary>
    public bool IsKnown => Kind != MeshGatewayModeKind.Unknown;

    /// <summary>The string as Consul stores it: <c>""</c>, <c>none</c>, <c>local</c>, <c>remote</c> or the unknown value unchanged.</summary>
    public string RawValue => _raw ?? string.Empty;

    /// <summary>Reads a value from Consul's data. Never fails: an unknown string is kept as <see cref="MeshGatewayModeKind.Unknown"/>.</summary>
    /// <param name="raw">The stored string; null or empty is unset.</param>
    /// <returns>The mode.</returns>
    public static MeshGatewayMode FromConsul(string? raw) => raw switch
    {
        null or "" => Unset,
        "none" => None,
        "local" => Local,
        "remote" => Remote,
        _ => new MeshGatewayMode(raw, MeshGatewayModeKind.Unknown),
    };

    /// <summary>
    /// Parses a value from a user's configuration as Consul's <c>ValidateMeshGatewayMode</c> does: exactly <c>""</c>,
    /// <c>none</c>, <c>local</c> or <c>remote</c> (case-sensitive).
    /// </summary>
    /// <param name="value">The value; null is treated as <c>""</c>.</param>
    /// <param name="mode">The mode, or unset on failure.</param>
    /// <param name="error">Null on success; otherwise Consul's message <c>Invalid Mesh Gateway Mode: "&lt;v&gt;"</c> (Go <c>%q</c> quoting).</param>
    /// <returns>Whether the value is valid.</returns>
    public static bool TryParse(string? value, out MeshGatewayMode mode, [NotNullWhen(false)] out string? error)
    {
        mode = FromConsul(value);
        if (mode.IsKnown)
        {
            error = null;
            return true;
        }

        mode = Unset;
        error = InvalidModeMessage(value!);
        return false;
    }

    /// <summary>Parses a value from a user's configuration, throwing Consul's message on failure.</summary>
    /// <param name="value">The value.</param>
    /// <returns>The mode.</returns>
    /// <exception cref="FormatException">The value is not <c>""</c>, <c>none</c>, <c>local</c> or <c>remote</c>.</exception>
    public static MeshGatewayMode Parse(string? value) =>
        TryParse(value, out MeshGatewayMode mode, out string? error) ? mode : throw new FormatException(error);

    /// <summary>Consul's validation message for a value: <c>Invalid Mesh Gateway Mode: "&lt;v&gt;"</c>, quoted like Go's <c>%q</c>.</summary>
    /// <param name="value">The rejected value.</param>
    /// <returns>The message.</returns>
    public static string InvalidModeMessage(string value) => "Invalid Mesh Gateway Mode: " + GoQuote.Quote(value);

    /// <summary>The raw value, <c>""</c> when unset.</summary>
    /// <returns>The raw value.</returns>
    public override string ToString() => RawValue;

    /// <inheritdoc/>
    public bool Equals(MeshGatewayMode other) => string.Equals(RawValue, other.RawValue, StringComparison.Ordinal);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is MeshGatewayMode other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(RawValue);

    /// <summary>Whether two modes hold the same raw value.</summary>
    /// <param name="left">A mode.</param>
    /// <param name="right">Another mode.</param>
    /// <returns>True when equal.</returns>
    public static bool operator ==(MeshGatewayMode left, MeshGatewayMode right) => left.Equals(right);

    /// <summary>Whether two modes hold different raw values.</summary>
    /// <param name="left">A mode.</param>
    /// <param name="right">Another mode.</param>
    /// <returns>True when different.</returns>
    public static bool operator !=(MeshGatewayMode left, MeshGatewayMode right) => !left.Equals(right);
}
