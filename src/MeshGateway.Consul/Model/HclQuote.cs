using System.Globalization;
using System.Text;

namespace MeshGateway.Model;

/// <summary>Quotes strings for HCL v1 (Consul's config and ACL policy language), shared by every HCL writer of the model.</summary>
internal static class HclQuote
{
    /// <summary>Quotes <paramref name="value"/> for HCL v1, escaping quotes, backslashes and control characters (<c>\uNNNN</c>).</summary>
    /// <param name="value">The string.</param>
    /// <returns>The quoted string.</returns>
    public static string Quote(string value)
    {
        var builder = new StringBuilder(value.Length + 2).Append('"');
        foreach (char c in value)
        {
            switch (c)
            {
                case '"': builder.Append("\\\""); break;
                case '\\': builder.Append("\\\\"); break;
                case '\n': builder.Append("\\n"); break;
                case '\r': builder.Append("\\r"); break;
                case '\t': builder.Append("\\t"); break;
                default:
                    if (char.IsControl(c))
                    {
                        builder.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        builder.Append(c);
                    }

                    break;
            }
        }

        return builder.Append('"').ToString();
    }
}
