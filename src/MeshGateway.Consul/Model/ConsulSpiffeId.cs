using System.Text;

namespace MeshGateway.Model;

/// <summary>
/// Consul's SPIFFE identities (Consul <c>agent/connect/uri_service.go</c> <c>SpiffeIDService.URI</c>), used to check the
/// certificate a server presents.
/// </summary>
public static class ConsulSpiffeId
{
    /// <summary>
    /// The identity of a service: <c>spiffe://&lt;td&gt;/ns/&lt;ns&gt;/dc/&lt;dc&gt;/svc/&lt;name&gt;</c>, with
    /// <c>/ap/&lt;ap&gt;</c> in front of <c>/ns</c> when the partition is not <c>default</c> (Consul omits the default
    /// partition so CE and Enterprise agree).
    /// </summary>
    /// <param name="trustDomain">The trust domain (the URI host).</param>
    /// <param name="namespace">The namespace; null or empty means <c>default</c>.</param>
    /// <param name="datacenter">The datacenter.</param>
    /// <param name="service">The service name.</param>
    /// <param name="partition">The partition; null, empty or <c>default</c> omits the <c>/ap</c> segment.</param>
    /// <returns>The URI text. Path characters are escaped as Go's <c>url.URL.String</c> escapes a path (RFC 3986 unreserved
    /// and <c>$&amp;+,/:;=@</c> kept, everything else percent-encoded), so the text equals Consul's.</returns>
    /// <exception cref="ArgumentException">A required part is null or empty.</exception>
    public static string ForService(string trustDomain, string? @namespace, string datacenter, string service, string? partition = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(trustDomain);
        ArgumentException.ThrowIfNullOrEmpty(datacenter);
        ArgumentException.ThrowIfNullOrEmpty(service);

        var builder = new StringBuilder("spiffe://", 64 + trustDomain.Length + service.Length);
        builder.Append(trustDomain);
        if (!string.IsNullOrEmpty(partition) && !string.Equals(partition, ConsulSniName.DefaultName, StringComparison.Ordinal))
        {
            builder.Append("/ap/");
            AppendPathEscaped(builder, partition);
        }

        builder.Append("/ns/");
        AppendPathEscaped(builder, string.IsNullOrEmpty(@namespace) ? ConsulSniName.DefaultName : @namespace);
        builder.Append("/dc/");
        AppendPathEscaped(builder, datacenter);
        builder.Append("/svc/");
        AppendPathEscaped(builder, service);
        return builder.ToString();
    }

    // Go net/url shouldEscape(c, encodePath), applied to each UTF-8 byte.
    private static void AppendPathEscaped(StringBuilder builder, string segment)
    {
        Span<byte> buffer = stackalloc byte[4];
        foreach (Rune rune in segment.EnumerateRunes())
        {
            int length = rune.EncodeToUtf8(buffer);
            for (int i = 0; i < length; i++)
            {
                byte b = buffer[i];
                if (char.IsAsciiLetterOrDigit((char)b) || b is (byte)'-' or (byte)'_' or (byte)'.' or (byte)'~'
                    or (byte)'$' or (byte)'&' or (byte)'+' or (byte)',' or (byte)'/' or (byte)':' or (byte)';' or (byte)'=' or (byte)'@')
                {
                    builder.Append((char)b);
                }
                else
                {
                    builder.Append('%').Append(Convert.ToHexString([b]));
                }
            }
        }
    }
}
