namespace MeshGateway.Acl;

/// <summary>What an item of the rules' syntax tree holds.</summary>
internal enum AclSyntaxKind
{
    /// <summary><c>key = "value"</c>.</summary>
    StringValue,

    /// <summary><c>key "label" { ... }</c>.</summary>
    Block,

    /// <summary><c>key = 1</c>, <c>key = true</c>, a JSON array or null: a value that is not a string.</summary>
    OtherValue,
}

/// <summary>
/// One item of a policy's syntax tree, shared by the HCL and JSON readers so that both are interpreted by the same
/// code (<see cref="AclRuleInterpreter"/>) and fail the same way.
/// </summary>
internal sealed class AclSyntaxNode
{
    public AclSyntaxNode(string key, int line, int column, AclSyntaxKind kind)
    {
        Key = key;
        Line = line;
        Column = column;
        Kind = kind;
    }

    public string Key { get; }

    public int Line { get; }

    public int Column { get; }

    public AclSyntaxKind Kind { get; }

    /// <summary>Where the keyword itself is (differs from <see cref="Line"/> for JSON labelled blocks, which sit at their label).</summary>
    public (int Line, int Column) KeyPosition { get; init; }

    public List<string> Labels { get; } = [];

    public string? Value { get; init; }

    public List<AclSyntaxNode> Body { get; } = [];
}

/// <summary>Thrown inside the readers to unwind to <see cref="AclPolicyParser"/>; never escapes the parser.</summary>
internal sealed class AclParseException : Exception
{
    public AclParseException(AclParseError error)
        : base(error.ToString())
    {
        Error = error;
    }

    public AclParseException()
    {
        Error = new AclParseError(AclParseErrorKind.Syntax, 0, 0, "malformed rules");
    }

    public AclParseException(string message)
        : base(message)
    {
        Error = new AclParseError(AclParseErrorKind.Syntax, 0, 0, message);
    }

    public AclParseException(string message, Exception innerException)
        : base(message, innerException)
    {
        Error = new AclParseError(AclParseErrorKind.Syntax, 0, 0, message);
    }

    public AclParseError Error { get; }
}
