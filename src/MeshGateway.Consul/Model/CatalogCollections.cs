using System.Collections;
using System.Diagnostics.CodeAnalysis;

namespace MeshGateway.Model;

/// <summary>
/// A compact, immutable string-keyed map for catalog data (tagged addresses, <c>Meta</c>): one array of pairs sorted by ordinal key,
/// looked up by binary search. A catalog of 50,000 instances holds hundreds of thousands of these, mostly with 0–4 entries, where a
/// <see cref="Dictionary{TKey, TValue}"/> costs several times the memory (buckets, entries, comparer); the BCL's frozen and immutable
/// dictionaries are larger still for tiny maps, hence this type.
/// </summary>
/// <typeparam name="TValue">The value type.</typeparam>
public sealed class CatalogDictionary<TValue> : IReadOnlyDictionary<string, TValue>
{
    private readonly KeyValuePair<string, TValue>[] _pairs;

    internal CatalogDictionary(KeyValuePair<string, TValue>[] pairs) => _pairs = pairs;

    internal static CatalogDictionary<TValue> EmptyInstance { get; } = new([]);

    /// <inheritdoc />
    public int Count => _pairs.Length;

    /// <inheritdoc />
    public IEnumerable<string> Keys => _pairs.Select(static p => p.Key);

    /// <inheritdoc />
    public IEnumerable<TValue> Values => _pairs.Select(static p => p.Value);

    /// <inheritdoc />
    public TValue this[string key] => TryGetValue(key, out TValue? value) ? value : throw new KeyNotFoundException($"The key '{key}' is not in the map.");

    /// <inheritdoc />
    public bool ContainsKey(string key) => IndexOf(key) >= 0;

    /// <inheritdoc />
    public bool TryGetValue(string key, [MaybeNullWhen(false)] out TValue value)
    {
        int index = IndexOf(key);
        if (index < 0)
        {
            value = default;
            return false;
        }

        value = _pairs[index].Value;
        return true;
    }

    /// <inheritdoc />
    public IEnumerator<KeyValuePair<string, TValue>> GetEnumerator() => ((IEnumerable<KeyValuePair<string, TValue>>)_pairs).GetEnumerator();

    /// <inheritdoc />
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private int IndexOf(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        int low = 0;
        int high = _pairs.Length - 1;
        while (low <= high)
        {
            int mid = (low + high) >>> 1;
            int order = string.CompareOrdinal(_pairs[mid].Key, key);
            if (order == 0)
            {
                return mid;
            }

            if (order < 0)
            {
                low = mid + 1;
            }
            else
            {
                high = mid - 1;
            }
        }

        return -1;
    }
}

/// <summary>Creates <see cref="CatalogDictionary{TValue}"/> instances.</summary>
public static class CatalogDictionaries
{
    /// <summary>The shared empty map.</summary>
    /// <typeparam name="TValue">The value type.</typeparam>
    /// <returns>The map.</returns>
    public static CatalogDictionary<TValue> Empty<TValue>() => CatalogDictionary<TValue>.EmptyInstance;

    /// <summary>Creates a map; for a repeated key the last pair wins (as a JSON object read into a Go map). No pairs give the shared empty map.</summary>
    /// <typeparam name="TValue">The value type.</typeparam>
    /// <param name="pairs">The pairs (not kept).</param>
    /// <returns>The map.</returns>
    public static CatalogDictionary<TValue> Create<TValue>(ReadOnlySpan<KeyValuePair<string, TValue>> pairs)
    {
        if (pairs.IsEmpty)
        {
            return CatalogDictionary<TValue>.EmptyInstance;
        }

        var sorted = new List<KeyValuePair<string, TValue>>(pairs.Length);
        foreach (KeyValuePair<string, TValue> pair in pairs)
        {
            ArgumentNullException.ThrowIfNull(pair.Key, nameof(pairs));
            int index = sorted.FindIndex(p => string.Equals(p.Key, pair.Key, StringComparison.Ordinal));
            if (index >= 0)
            {
                sorted[index] = pair;
            }
            else
            {
                sorted.Add(pair);
            }
        }

        sorted.Sort(static (a, b) => string.CompareOrdinal(a.Key, b.Key));
        return new CatalogDictionary<TValue>([.. sorted]);
    }
}

/// <summary>Shared, immutable lists of check statuses: the few combinations real instances have are allocated once per process.</summary>
public static class CatalogHealthStatuses
{
    private const int MaxShared = 4;

    // Index: count (1..4) and the statuses in base 3; 3 + 9 + 27 + 81 = 120 lists at most.
    private static readonly IReadOnlyList<CatalogHealthStatus>?[][] s_shared = [[], new IReadOnlyList<CatalogHealthStatus>?[3], new IReadOnlyList<CatalogHealthStatus>?[9], new IReadOnlyList<CatalogHealthStatus>?[27], new IReadOnlyList<CatalogHealthStatus>?[81]];

    /// <summary>The statuses as an immutable list; up to four checks the list is shared by every instance with the same statuses.</summary>
    /// <param name="statuses">The statuses in check order (not kept).</param>
    /// <returns>The list.</returns>
    public static IReadOnlyList<CatalogHealthStatus> Create(ReadOnlySpan<CatalogHealthStatus> statuses)
    {
        if (statuses.IsEmpty)
        {
            return [];
        }

        if (statuses.Length > MaxShared)
        {
            return Array.AsReadOnly(statuses.ToArray());
        }

        int key = 0;
        foreach (CatalogHealthStatus status in statuses)
        {
            if ((uint)status > (uint)CatalogHealthStatus.Critical)
            {
                return Array.AsReadOnly(statuses.ToArray());
            }

            key = (key * 3) + (int)status;
        }

        ref IReadOnlyList<CatalogHealthStatus>? slot = ref s_shared[statuses.Length][key];
        return Volatile.Read(ref slot) ?? Interlocked.CompareExchange(ref slot, Array.AsReadOnly(statuses.ToArray()), null) ?? slot!;
    }
}

/// <summary>Structural comparison of the catalog model's collections.</summary>
internal static class CatalogEquality
{
    public static bool MapEquals<TValue>(IReadOnlyDictionary<string, TValue> a, IReadOnlyDictionary<string, TValue> b)
    {
        if (ReferenceEquals(a, b))
        {
            return true;
        }

        if (a.Count != b.Count)
        {
            return false;
        }

        foreach (KeyValuePair<string, TValue> pair in a)
        {
            if (!b.TryGetValue(pair.Key, out TValue? other) || !EqualityComparer<TValue>.Default.Equals(pair.Value, other))
            {
                return false;
            }
        }

        return true;
    }

    public static bool ListEquals<T>(IReadOnlyList<T> a, IReadOnlyList<T> b)
    {
        if (ReferenceEquals(a, b))
        {
            return true;
        }

        if (a.Count != b.Count)
        {
            return false;
        }

        for (int i = 0; i < a.Count; i++)
        {
            if (!EqualityComparer<T>.Default.Equals(a[i], b[i]))
            {
                return false;
            }
        }

        return true;
    }
}
