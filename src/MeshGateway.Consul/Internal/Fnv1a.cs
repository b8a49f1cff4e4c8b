namespace MeshGateway.Consul;

/// <summary>
/// 64-bit FNV-1a, for change detection (answer bodies, check keys): not cryptographic, stable across runs. Hand-written
/// because <c>System.IO.Hashing</c> is a package, and the whole function is three lines.
/// </summary>
internal static class Fnv1a
{
    public const ulong Seed = 14695981039346656037UL;
    private const ulong Prime = 1099511628211UL;

    public static ulong Hash(ReadOnlySpan<byte> data) => Append(Seed, data);

    public static ulong Append(ulong hash, ReadOnlySpan<byte> data)
    {
        foreach (byte b in data)
        {
            hash = (hash ^ b) * Prime;
        }

        return hash;
    }

    public static ulong Append(ulong hash, ReadOnlySpan<char> text)
    {
        foreach (char c in text)
        {
            hash = (hash ^ c) * Prime;
        }

        return hash;
    }
}
