namespace MeshGateway.Acl;

/// <summary>
/// A Consul ACL access level, as in <c>acl/acl.go</c> (<c>AccessLevel</c>): the value of a rule's <c>policy</c> (or of a
/// scalar rule such as <c>mesh = "write"</c>) and the level a check asks for.
/// </summary>
/// <remarks><c>write</c> grants write, list and read; <c>list</c> grants list and read (key rules only); <c>read</c> grants
/// only read; <c>deny</c> grants nothing and is final.</remarks>
public enum AclAccessLevel
{
    /// <summary>Not a valid access level.</summary>
    Unknown = 0,

    /// <summary><c>deny</c>: explicit denial; no fall-through to the default policy.</summary>
    Deny,

    /// <summary><c>read</c>.</summary>
    Read,

    /// <summary><c>list</c>: valid only on <c>key</c>/<c>key_prefix</c> rules.</summary>
    List,

    /// <summary><c>write</c>.</summary>
    Write,
}

/// <summary>Conversions between <see cref="AclAccessLevel"/> and Consul's spelling.</summary>
public static class AclAccessLevels
{
    /// <summary>
    /// Parses an access value the way Consul's <c>AccessLevelFromString</c> does: ASCII case-insensitively, so
    /// <c>WRITE</c> is write.
    /// </summary>
    /// <param name="value">The value as written in a policy.</param>
    /// <param name="level">The level, or <see cref="AclAccessLevel.Unknown"/>.</param>
    /// <returns>Whether <paramref name="value"/> is one of <c>deny</c>, <c>read</c>, <c>list</c>, <c>write</c> in any case.</returns>
    public static bool TryParse(string? value, out AclAccessLevel level)
    {
        level = value is null ? AclAccessLevel.Unknown : Parse(value);
        return level != AclAccessLevel.Unknown;
    }

    /// <summary>Consul's lower-case spelling (<c>deny</c>, <c>read</c>, <c>list</c>, <c>write</c>; <c>unknown</c> otherwise).</summary>
    /// <param name="level">The level.</param>
    /// <returns>The spelling Consul uses in rules and in <c>lacks permission 'service:write'</c> messages.</returns>
    public static string ToConsulString(this AclAccessLevel level) => level switch
    {
        AclAccessLevel.Deny => "deny",
        AclAccessLevel.Read => "read",
        AclAccessLevel.List => "list",
        AclAccessLevel.Write => "write",
        _ => "unknown",
    };

    /// <summary>Whether a rule with access <paramref name="granted"/> allows a check for <paramref name="required"/> (Consul's <c>enforce</c>).</summary>
    /// <param name="granted">The rule's level.</param>
    /// <param name="required">The level the check needs: read, list or write.</param>
    /// <returns><see langword="true"/> for allow, <see langword="false"/> for deny.</returns>
    public static bool Grants(this AclAccessLevel granted, AclAccessLevel required) => granted switch
    {
        AclAccessLevel.Write => true,
        AclAccessLevel.List => required is AclAccessLevel.List or AclAccessLevel.Read,
        AclAccessLevel.Read => required == AclAccessLevel.Read,
        _ => false,
    };

    private static AclAccessLevel Parse(string value)
    {
        if (value.Equals("deny", StringComparison.OrdinalIgnoreCase))
        {
            return AclAccessLevel.Deny;
        }

        if (value.Equals("read", StringComparison.OrdinalIgnoreCase))
        {
            return AclAccessLevel.Read;
        }

        if (value.Equals("list", StringComparison.OrdinalIgnoreCase))
        {
            return AclAccessLevel.List;
        }

        return value.Equals("write", StringComparison.OrdinalIgnoreCase) ? AclAccessLevel.Write : AclAccessLevel.Unknown;
    }
}
