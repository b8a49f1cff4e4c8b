using System.Reflection;
using System.Reflection.Emit;
using MeshGateway.Consul;

namespace MeshGateway.Tests.Architecture;

/// <summary>
/// The pure Consul model (namespaces <c>MeshGateway.Model</c>, <c>MeshGateway.Acl</c>, <c>MeshGateway.Preflight</c>)
/// ships in the Consul package beside the adapter but does no I/O and does not depend on the adapter
/// (docs/architecture.md, "Packages and dependency direction"). Being in the same assembly, the compiler would let it
/// reach the adapter's internals or an <see cref="HttpClient"/>; this test is the fence.
/// </summary>
/// <remarks>
/// It reads the compiled assembly, not the sources: every type in those namespaces (nested and compiler-generated
/// types too: lambdas, iterators) is checked by its signatures (base type, interfaces, fields, properties, events,
/// method parameters and returns, locals) and by the members its IL bodies call, load or construct, so a fully
/// qualified name, a global using or <c>var</c> cannot hide a reference the way it could from a text scan.
/// </remarks>
public sealed class PureModelTests
{
    private static readonly Assembly ConsulAssembly = typeof(ConsulClient).Assembly;

    /// <summary>Namespaces (and their children) that do network, process or adapter work.</summary>
    private static readonly string[] ForbiddenNamespaces =
    [
        "MeshGateway.Consul",
        "System.Net.Http",
        "System.Net.Sockets",
        "System.Net.Security",
        "System.Net.NetworkInformation",
        "System.IO.Pipes",
    ];

    /// <summary>Single types that read files, the environment, the console, DNS or processes.</summary>
    private static readonly Type[] ForbiddenTypes =
    [
        typeof(File), typeof(FileInfo), typeof(Directory), typeof(DirectoryInfo), typeof(FileSystemInfo),
        typeof(FileStream), typeof(FileSystemWatcher), typeof(DriveInfo), typeof(Path),
        typeof(StreamReader), typeof(StreamWriter),
        typeof(Environment), typeof(Console), typeof(System.Net.Dns), typeof(System.Diagnostics.Process),
    ];

    [Theory]
    [InlineData("MeshGateway.Model")]
    [InlineData("MeshGateway.Acl")]
    [InlineData("MeshGateway.Preflight")]
    public void PureModelNamespace_ReferencesNoIoAndNoAdapterType(string ns)
    {
        Type[] types = ConsulAssembly.GetTypes().Where(t => t.Namespace == ns).ToArray();
        Assert.True(types.Length > 0, $"No type in namespace {ns}: the namespace moved or was renamed; update this test and docs/architecture.md.");

        string[] violations = types
            .SelectMany(t => References(t).Select(r => (Type: t, r.Via, Referenced: r.Type)))
            .Where(x => IsForbidden(x.Referenced))
            .Select(x => $"{x.Type.FullName} ({x.Via}) -> {x.Referenced.FullName}")
            .Distinct()
            .ToArray();

        Assert.True(violations.Length == 0, $"The pure model must not do I/O or use the adapter:{Environment.NewLine}{string.Join(Environment.NewLine, violations)}");
    }

    // The fence must be able to fail: the same scan over adapter types finds what they use, from a field signature
    // (ConsulClient's HttpClient) and from a method body only (ConsulAgentConnection reads the token file with File).
    [Fact]
    public void Scan_FindsSignatureAndBodyReferences_InAdapterTypes()
    {
        Assert.Contains(References(typeof(ConsulClient)), r => r.Type == typeof(HttpClient) && r.Via.StartsWith("field", StringComparison.Ordinal));
        Type connection = ConsulAssembly.GetType("MeshGateway.Consul.ConsulAgentConnection", throwOnError: true)!;
        Assert.Contains(References(connection), r => r.Type == typeof(File) && r.Via.StartsWith("body of", StringComparison.Ordinal));
        Assert.True(IsForbidden(typeof(File)) && IsForbidden(typeof(HttpClient)) && IsForbidden(typeof(ConsulClient)));
        Assert.False(IsForbidden(typeof(ReadOnlySpan<byte>)) || IsForbidden(typeof(System.Text.Json.Utf8JsonReader)));
    }

    private static bool IsForbidden(Type type) =>
        ForbiddenTypes.Contains(type)
        || (type.Namespace is { } ns && ForbiddenNamespaces.Any(f => ns == f || ns.StartsWith(f + ".", StringComparison.Ordinal)));

    /// <summary>Every type <paramref name="type"/>'s own members name (not its nested types': they are scanned on their own).</summary>
    private static List<(string Via, Type Type)> References(Type type)
    {
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        var found = new List<(string Via, Type Type)>();
        void Add(string via, Type? t)
        {
            foreach (Type part in Expand(t))
            {
                found.Add((via, part));
            }
        }

        Add("base type", type.BaseType);
        foreach (Type i in type.GetInterfaces())
        {
            Add("interface", i);
        }

        foreach (FieldInfo f in type.GetFields(all))
        {
            Add($"field {f.Name}", f.FieldType);
        }

        foreach (PropertyInfo p in type.GetProperties(all))
        {
            Add($"property {p.Name}", p.PropertyType);
        }

        foreach (EventInfo e in type.GetEvents(all))
        {
            Add($"event {e.Name}", e.EventHandlerType);
        }

        foreach (MethodBase m in type.GetMethods(all).Cast<MethodBase>().Concat(type.GetConstructors(all)))
        {
            if (m is MethodInfo mi)
            {
                Add($"return of {m.Name}", mi.ReturnType);
            }

            foreach (ParameterInfo p in m.GetParameters())
            {
                Add($"parameter of {m.Name}", p.ParameterType);
            }

            if (m.GetMethodBody() is not { } body)
            {
                continue;
            }

            foreach (LocalVariableInfo local in body.LocalVariables)
            {
                Add($"local in {m.Name}", local.LocalType);
            }

            foreach (MemberInfo member in BodyMembers(m, body.GetILAsByteArray() ?? []))
            {
                string via = $"body of {m.Name}";
                switch (member)
                {
                    case Type t:
                        Add(via, t);
                        break;
                    case FieldInfo f:
                        Add(via, f.DeclaringType);
                        Add(via, f.FieldType);
                        break;
                    case MethodBase { Name: "get_CurrentManagedThreadId" } called when called.DeclaringType == typeof(Environment):
                        // The compiler's iterator and async state machines read it (which thread owns the enumerator); no I/O.
                        break;
                    case MethodBase called:
                        Add(via, called.DeclaringType);
                        if (called is MethodInfo calledInfo)
                        {
                            Add(via, calledInfo.ReturnType);
                            foreach (Type g in calledInfo.IsGenericMethod ? calledInfo.GetGenericArguments() : [])
                            {
                                Add(via, g);
                            }
                        }

                        foreach (ParameterInfo p in called.GetParameters())
                        {
                            Add(via, p.ParameterType);
                        }

                        break;
                }
            }
        }

        return found;
    }

    /// <summary>A type and what it is built from: array/pointer/by-ref element types and generic arguments.</summary>
    private static IEnumerable<Type> Expand(Type? type)
    {
        if (type is null || type.IsGenericParameter)
        {
            yield break;
        }

        if (type.HasElementType)
        {
            foreach (Type t in Expand(type.GetElementType()))
            {
                yield return t;
            }

            yield break;
        }

        yield return type.IsConstructedGenericType ? type.GetGenericTypeDefinition() : type;
        foreach (Type argument in type.IsConstructedGenericType ? type.GetGenericArguments() : [])
        {
            foreach (Type t in Expand(argument))
            {
                yield return t;
            }
        }
    }

    // The runtime offers no IL reader; System.Reflection.Metadata has one but would need the file path and a decoder for
    // signatures. The opcode table below comes from OpCodes itself, so the walk only needs each operand's size.
    private static readonly Dictionary<short, OpCode> OpCodeTable = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    /// <summary>The fields, methods and types an IL body's tokens name.</summary>
    private static IEnumerable<MemberInfo> BodyMembers(MethodBase method, byte[] il)
    {
        Type[]? typeArguments = method.DeclaringType is { IsGenericType: true } d ? d.GetGenericArguments() : null;
        Type[]? methodArguments = method is MethodInfo { IsGenericMethod: true } g ? g.GetGenericArguments() : null;
        int at = 0;
        while (at < il.Length)
        {
            short value = il[at] == 0xFE ? (short)(0xFE00 | il[at + 1]) : il[at];
            OpCode op = OpCodeTable[value];
            at += op.Size;
            switch (op.OperandType)
            {
                case OperandType.InlineField or OperandType.InlineMethod or OperandType.InlineType or OperandType.InlineTok:
                    int token = BitConverter.ToInt32(il, at);
                    yield return method.Module.ResolveMember(token, typeArguments, methodArguments)!;
                    at += 4;
                    break;
                case OperandType.InlineSwitch:
                    at += 4 + (4 * BitConverter.ToInt32(il, at));
                    break;
                default:
                    at += OperandSize(op.OperandType);
                    break;
            }
        }
    }

    private static int OperandSize(OperandType operand) => operand switch
    {
        OperandType.InlineNone => 0,
        OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
        OperandType.InlineVar => 2,
        OperandType.InlineI8 or OperandType.InlineR => 8,
        _ => 4, // InlineBrTarget, InlineI, InlineSig, InlineString, ShortInlineR (tokens are handled by the caller)
    };
}
