using System.Net;
using MeshGateway.Acl;

namespace MeshGateway.Consul;

/// <summary>
/// Base of every error <see cref="ConsulClient"/> raises. The hierarchy tells callers what to do:
/// <list type="table">
/// <item><term><see cref="ConsulPermissionDeniedException"/></term><description>403 <c>Permission denied…</c>: the token lacks a permission; <see cref="ConsulStatusException.Body"/> names it.</description></item>
/// <item><term><see cref="ConsulAclNotFoundException"/></term><description>403 <c>ACL not found</c>: the token is unknown or expired.</description></item>
/// <item><term><see cref="ConsulNotFoundException"/></term><description>404 (config entry or agent service absent).</description></item>
/// <item><term><see cref="ConsulNoPathToDatacenterException"/></term><description>500 <c>No path to datacenter</c>: <c>?dc=</c> names a datacenter not WAN-joined.</description></item>
/// <item><term><see cref="ConsulHttpException"/></term><description>any other non-success status.</description></item>
/// <item><term><see cref="ConsulTransportException"/></term><description>no HTTP answer: connection refused/reset, TLS failure, timeout, undecodable body.</description></item>
/// </list>
/// Messages carry the method and path (no token: the token travels in a header, never in the URL).
/// </summary>
public abstract class ConsulException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What failed.</param>
    /// <param name="request">Method and path of the request.</param>
    /// <param name="statusCode">The HTTP status, or null when there was no answer.</param>
    /// <param name="inner">The underlying exception.</param>
    private protected ConsulException(string message, string request, HttpStatusCode? statusCode, Exception? inner)
        : base(message, inner)
    {
        Request = request;
        StatusCode = statusCode;
    }

    /// <summary>Method and path of the failed request, e.g. <c>GET /v1/catalog/services?dc=dc2</c>.</summary>
    public string Request { get; }

    /// <summary>The HTTP status, or null when no answer arrived.</summary>
    public HttpStatusCode? StatusCode { get; }
}

/// <summary>Base of errors that came with an HTTP answer; keeps the (truncated) plain-text body.</summary>
public abstract class ConsulStatusException : ConsulException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What failed.</param>
    /// <param name="request">Method and path.</param>
    /// <param name="statusCode">The HTTP status.</param>
    /// <param name="body">The response body (at most 4 KiB kept).</param>
    private protected ConsulStatusException(string message, string request, HttpStatusCode statusCode, string body)
        : base(message, request, statusCode, null) => Body = body;

    /// <summary>The response body as Consul sent it (plain text, truncated to 4 KiB).</summary>
    public string Body { get; }
}

/// <summary>HTTP 403 with a body containing <c>Permission denied</c> (docs/consul-behaviour.md §7.3).</summary>
/// <remarks>The body (e.g. <c>Permission denied: token with AccessorID '…' lacks permission 'service:write' on "mesh-gateway"</c>)
/// is mapped through the ACL model (<see cref="AclDenialParser"/>) to <see cref="Denial"/>; the message names the missing
/// permission and the fix. Bodies hold accessor IDs, never secrets; the token itself never appears.</remarks>
public sealed class ConsulPermissionDeniedException : ConsulStatusException
{
    internal ConsulPermissionDeniedException(string request, string body)
        : this(request, body, Parse(body))
    {
    }

    private ConsulPermissionDeniedException(string request, string body, AclDenial? denial)
        : base(denial is null ? $"Consul denied {request}: {body}" : $"Consul denied {request}: {denial.Message}.", request, HttpStatusCode.Forbidden, body)
        => Denial = denial;

    /// <summary>What the ACL model made of the body, or null if it did not recognise it.</summary>
    public AclDenial? Denial { get; }

    /// <summary>The missing permission in Consul's words, e.g. <c>service:read on "api"</c>, when Consul named it.</summary>
    public string? MissingPermission => Denial?.Permission;

    /// <summary>The resource whose permission is missing, when Consul named it.</summary>
    public AclResource? Resource => Denial?.Resource;

    /// <summary>The access level that is missing, when Consul named it.</summary>
    public AclAccessLevel? Access => Denial?.Access;

    private static AclDenial? Parse(string body) => AclDenialParser.TryParse(403, body, out AclDenial? denial) ? denial : null;
}

/// <summary>HTTP 403 <c>ACL not found</c>: the token is unknown (typo, deleted, expired, or from another cluster).</summary>
public sealed class ConsulAclNotFoundException : ConsulStatusException
{
    internal ConsulAclNotFoundException(string request, string body)
        : base($"Consul rejected the ACL token on {request}: " + (AclDenialParser.TryParse(403, body, out AclDenial? d) ? d.Message : "ACL not found (unknown, deleted or expired token)") + ".",
            request, HttpStatusCode.Forbidden, body)
        => Denial = AclDenialParser.TryParse(403, body, out AclDenial? denial) ? denial : null;

    /// <summary>What the ACL model made of the body (<see cref="AclDenialKind.AclNotFound"/> or <see cref="AclDenialKind.AclNotBootstrapped"/>), or null.</summary>
    public AclDenial? Denial { get; }
}

/// <summary>HTTP 404, e.g. <c>Config entry not found for "service-resolver" / "api"</c> or an unknown agent service.</summary>
public sealed class ConsulNotFoundException : ConsulStatusException
{
    internal ConsulNotFoundException(string request, string body)
        : base($"Consul has no {request}: {body}", request, HttpStatusCode.NotFound, body)
    {
    }
}

/// <summary>HTTP 500 <c>No path to datacenter</c>: the datacenter is unknown or not WAN-joined.</summary>
public sealed class ConsulNoPathToDatacenterException : ConsulStatusException
{
    internal ConsulNoPathToDatacenterException(string request, string? datacenter, string body)
        : base($"Consul has no path to datacenter '{datacenter}' for {request}: is it WAN-joined to this one?", request, HttpStatusCode.InternalServerError, body)
        => Datacenter = datacenter;

    /// <summary>The datacenter asked for.</summary>
    public string? Datacenter { get; }
}

/// <summary>Any other non-success HTTP status.</summary>
public sealed class ConsulHttpException : ConsulStatusException
{
    internal ConsulHttpException(string request, HttpStatusCode statusCode, string body)
        : base($"Consul answered {(int)statusCode} {statusCode} to {request}: {body}", request, statusCode, body)
    {
    }
}

/// <summary>No usable HTTP answer: connection failure, TLS failure, timeout or an undecodable body.</summary>
public sealed class ConsulTransportException : ConsulException
{
    internal ConsulTransportException(string message, string request, bool isTimeout, Exception? inner)
        : base(message, request, null, inner) => IsTimeout = isTimeout;

    /// <summary>Whether the request timed out (rather than failing to connect or decode).</summary>
    public bool IsTimeout { get; }
}
