using System.Text;
using System.Text.Json;
using MeshGateway.Model;

namespace MeshGateway.Tests.Model;

public sealed class MeshGatewayModeTests
{
    [Theory]
    [InlineData(null, MeshGatewayModeKind.Unset, "")]
    [InlineData("", MeshGatewayModeKind.Unset, "")]
    [InlineData("none", MeshGatewayModeKind.None, "none")]
    [InlineData("local", MeshGatewayModeKind.Local, "local")]
    [InlineData("remote", MeshGatewayModeKind.Remote, "remote")]
    [InlineData("bogus", MeshGatewayModeKind.Unknown, "bogus")]
    [InlineData("LOCAL", MeshGatewayModeKind.Unknown, "LOCAL")]
    [InlineData(" local", MeshGatewayModeKind.Unknown, " local")]
    [InlineData("Remote", MeshGatewayModeKind.Unknown, "Remote")]
    public void FromConsul_AnyString_KeepsTheRawValue(string? raw, MeshGatewayModeKind kind, string expectedRaw)
    {
        MeshGatewayMode mode = MeshGatewayMode.FromConsul(raw);
        Assert.Equal(kind, mode.Kind);
        Assert.Equal(expectedRaw, mode.RawValue);
        Assert.Equal(expectedRaw, mode.ToString());
        Assert.Equal(kind != MeshGatewayModeKind.Unknown, mode.IsKnown);
        Assert.Equal(kind != MeshGatewayModeKind.Unset, mode.IsSet);
    }

    [Theory]
    [InlineData("", MeshGatewayModeKind.Unset)]
    [InlineData(null, MeshGatewayModeKind.Unset)]
    [InlineData("none", MeshGatewayModeKind.None)]
    [InlineData("local", MeshGatewayModeKind.Local)]
    [InlineData("remote", MeshGatewayModeKind.Remote)]
    public void TryParse_ValidValue_Succeeds(string? value, MeshGatewayModeKind kind)
    {
        Assert.True(MeshGatewayMode.TryParse(value, out MeshGatewayMode mode, out string? error));
        Assert.Null(error);
        Assert.Equal(kind, mode.Kind);
        Assert.Equal(kind, MeshGatewayMode.Parse(value).Kind);
    }

    [Theory]
    [InlineData("Remote", "Invalid Mesh Gateway Mode: \"Remote\"")]
    [InlineData("LOCAL", "Invalid Mesh Gateway Mode: \"LOCAL\"")]
    [InlineData("bogus", "Invalid Mesh Gateway Mode: \"bogus\"")]
    [InlineData(" local", "Invalid Mesh Gateway Mode: \" local\"")]
    [InlineData("a\"b\\c", "Invalid Mesh Gateway Mode: \"a\\\"b\\\\c\"")]
    [InlineData("tab\there\nnl\r\a\b\f\v", "Invalid Mesh Gateway Mode: \"tab\\there\\nnl\\r\\a\\b\\f\\v\"")]
    [InlineData("\u0001\u007f", "Invalid Mesh Gateway Mode: \"\\x01\\x7f\"")]
    [InlineData("caf\u00e9 \u20ac", "Invalid Mesh Gateway Mode: \"caf\u00e9 \u20ac\"")]
    [InlineData("nb\u00a0sp\u200bzw\ue000", "Invalid Mesh Gateway Mode: \"nb\\u00a0sp\\u200bzw\\ue000\"")]
    [InlineData("\U0001F600\U0010FFFF", "Invalid Mesh Gateway Mode: \"\U0001F600\\U0010ffff\"")]
    public void TryParse_InvalidValue_FailsWithConsulsExactMessage(string value, string message)
    {
        Assert.False(MeshGatewayMode.TryParse(value, out MeshGatewayMode mode, out string? error));
        Assert.Equal(message, error);
        Assert.Equal(MeshGatewayMode.Unset, mode);
        Assert.Equal(message, Assert.Throws<FormatException>(() => MeshGatewayMode.Parse(value)).Message);
    }

    [Fact]
    public void InvalidModeMessage_LoneSurrogate_WritesReplacementEscape()
    {
        Assert.Equal("Invalid Mesh Gateway Mode: \"a\\ufffdb\"", MeshGatewayMode.InvalidModeMessage("a\ud800b"));
    }

    [Fact]
    public void Equality_ComparesRawValuesOrdinally()
    {
        Assert.Equal(MeshGatewayMode.Local, MeshGatewayMode.FromConsul("local"));
        Assert.True(MeshGatewayMode.Unset == default);
        Assert.True(MeshGatewayMode.FromConsul("LOCAL") != MeshGatewayMode.Local);
        Assert.Equal(MeshGatewayMode.FromConsul("x").GetHashCode(), MeshGatewayMode.FromConsul("x").GetHashCode());
        Assert.False(MeshGatewayMode.Local.Equals((object)"local"));
    }

    [Theory]
    [InlineData("{\"Mode\":\"local\"}", false, "local", MeshGatewayModeKind.Local)]
    [InlineData("{\"mode\":\"remote\"}", false, "remote", MeshGatewayModeKind.Remote)]
    [InlineData("{\"MODE\":\"none\"}", true, "none", MeshGatewayModeKind.None)]
    [InlineData("{}", true, "", MeshGatewayModeKind.Unset)]
    [InlineData("null", true, "", MeshGatewayModeKind.Unset)]
    [InlineData("{\"Mode\":null}", true, "", MeshGatewayModeKind.Unset)]
    [InlineData("{\"Mode\":\"\"}", true, "", MeshGatewayModeKind.Unset)]
    [InlineData("{\"Mode\":\"bogus\"}", false, "bogus", MeshGatewayModeKind.Unknown)]
    [InlineData("{\"Mode\":\" local\"}", false, " local", MeshGatewayModeKind.Unknown)]
    [InlineData("{\"Other\":{\"x\":[1,{\"Mode\":\"remote\"}]},\"Mode\":\"none\",\"After\":true}", false, "none", MeshGatewayModeKind.None)]
    public void JsonTryRead_ValidShape_ReadsTheMode(string json, bool validate, string raw, MeshGatewayModeKind kind)
    {
        Assert.True(MeshGatewayModeJson.TryRead(Encoding.UTF8.GetBytes(json), validate, out MeshGatewayMode mode, out string? error), error);
        Assert.Equal(kind, mode.Kind);
        Assert.Equal(raw, mode.RawValue);
    }

    [Theory]
    [InlineData("{\"Mode\":\"LOCAL\"}", "Invalid Mesh Gateway Mode: \"LOCAL\"")]
    [InlineData("{\"Mode\":\"Remote\"}", "Invalid Mesh Gateway Mode: \"Remote\"")]
    [InlineData("{\"Mode\":5}", "MeshGateway.Mode must be a string, not Number.")]
    [InlineData("[1]", "MeshGateway must be an object, not StartArray.")]
    [InlineData("\"local\"", "MeshGateway must be an object, not String.")]
    [InlineData("", "MeshGateway JSON is empty.")]
    public void JsonTryRead_Validating_RejectsWithMessage(string json, string message)
    {
        Assert.False(MeshGatewayModeJson.TryRead(Encoding.UTF8.GetBytes(json), validate: true, out MeshGatewayMode mode, out string? error));
        Assert.Equal(message, error);
        Assert.Equal(MeshGatewayMode.Unset, mode);
    }

    [Theory]
    [InlineData("{\"Mode\":")]
    [InlineData("{\"Mode\":\"local\"")]
    [InlineData("{\"Mode\" \"local\"}")]
    [InlineData("{\"Mode\":\"local\",}")]
    [InlineData("{")]
    public void JsonTryRead_MalformedJson_FailsWithoutThrowing(string json)
    {
        Assert.False(MeshGatewayModeJson.TryRead(Encoding.UTF8.GetBytes(json), validate: false, out MeshGatewayMode mode, out string? error));
        Assert.False(string.IsNullOrEmpty(error));
        Assert.Equal(MeshGatewayMode.Unset, mode);
    }

    [Fact]
    public void JsonTryRead_InsideConfigEntry_LeavesReaderOnTheValueEnd()
    {
        byte[] json = """{"Kind":"proxy-defaults","MeshGateway":{"Mode":"local","X":1},"Name":"global"}"""u8.ToArray();
        var reader = new Utf8JsonReader(json);
        MeshGatewayMode mode = default;
        string? name = null;
        while (reader.Read())
        {
            if (reader.TokenType != JsonTokenType.PropertyName)
            {
                continue;
            }

            string property = reader.GetString()!;
            reader.Read();
            if (property == MeshGatewayModeJson.PropertyName)
            {
                Assert.True(MeshGatewayModeJson.TryRead(ref reader, validate: false, out mode, out _));
                Assert.Equal(JsonTokenType.EndObject, reader.TokenType);
            }
            else if (property == "Name")
            {
                name = reader.GetString();
            }
        }

        Assert.Equal(MeshGatewayMode.Local, mode);
        Assert.Equal("global", name);
    }

    [Theory]
    [InlineData("local", "{\"MeshGateway\":{\"Mode\":\"local\"}}")]
    [InlineData("", "{\"MeshGateway\":{}}")]
    [InlineData("bogus", "{\"MeshGateway\":{\"Mode\":\"bogus\"}}")]
    public void JsonWriteProperty_WritesConsulsShape(string raw, string expected)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            writer.WriteStartObject();
            MeshGatewayModeJson.WriteProperty(writer, MeshGatewayMode.FromConsul(raw));
            writer.WriteEndObject();
        }

        string json = Encoding.UTF8.GetString(stream.ToArray());
        Assert.Equal(expected, json);

        // And back.
        using JsonDocument document = JsonDocument.Parse(json);
        byte[] value = Encoding.UTF8.GetBytes(document.RootElement.GetProperty("MeshGateway").GetRawText());
        Assert.True(MeshGatewayModeJson.TryRead(value, validate: false, out MeshGatewayMode back, out _));
        Assert.Equal(raw, back.RawValue);
    }

    [Fact]
    public void HclRender_KnownAndUnsetAndEscaped()
    {
        Assert.Equal("mesh_gateway {\n  mode = \"local\"\n}", MeshGatewayModeHcl.Render(MeshGatewayMode.Local));
        Assert.Equal("mesh_gateway {}", MeshGatewayModeHcl.Render(MeshGatewayMode.Unset));
        Assert.Equal("    mesh_gateway {\n      mode = \"remote\"\n    }", MeshGatewayModeHcl.Render(MeshGatewayMode.Remote, indent: 4));
        Assert.Equal("mesh_gateway {\n  mode = \"a\\\"b\\\\\\n\\u0001\"\n}", MeshGatewayModeHcl.Render(MeshGatewayMode.FromConsul("a\"b\\\n\u0001")));
    }

    [Theory]
    [InlineData("mesh_gateway { mode = \"local\" }", MeshGatewayModeKind.Local)]
    [InlineData("mesh_gateway {\n  mode = \"remote\"\n}\n", MeshGatewayModeKind.Remote)]
    [InlineData("MeshGateway {\n  Mode = \"none\"\n}", MeshGatewayModeKind.None)]
    [InlineData("mesh_gateway = {\n  mode = \"local\",\n}", MeshGatewayModeKind.Local)]
    [InlineData("# agent config\nmesh_gateway { // inline\n  /* block\n comment */ mode = \"remote\" # trailing\n}\n// end", MeshGatewayModeKind.Remote)]
    [InlineData("mesh_gateway {}", MeshGatewayModeKind.Unset)]
    [InlineData("mesh_gateway { mode = \"\" }", MeshGatewayModeKind.Unset)]
    [InlineData("mesh_gateway { mode = \"\\u006cocal\" }", MeshGatewayModeKind.Local)]
    public void HclTryParse_ValidBlock_ReadsTheMode(string hcl, MeshGatewayModeKind kind)
    {
        Assert.True(MeshGatewayModeHcl.TryParse(hcl, out MeshGatewayMode mode, out string? error), error);
        Assert.Equal(kind, mode.Kind);
    }

    [Theory]
    [InlineData("mesh_gateway { mode = \"Remote\" }", "Invalid Mesh Gateway Mode: \"Remote\"")]
    [InlineData("mesh_gateway {\n  mode = \" local\"\n}", "Invalid Mesh Gateway Mode: \" local\"")]
    [InlineData("gateway { mode = \"local\" }", "line 1: expected mesh_gateway, found gateway")]
    [InlineData("", "line 1: expected mesh_gateway")]
    [InlineData("mesh_gateway mode = \"local\"", "line 1: expected '{'")]
    [InlineData("mesh_gateway {\n  mode = \"local\"\n", "line 3: missing '}'")]
    [InlineData("mesh_gateway {\n\n  kind = \"local\"\n}", "line 3: unknown key \"kind\" in mesh_gateway (only mode is allowed)")]
    [InlineData("mesh_gateway {\n  mode = \"local\"\n  mode = \"remote\"\n}", "line 3: mode is set twice")]
    [InlineData("mesh_gateway {\n  mode \"local\"\n}", "line 2: expected '=' after mode")]
    [InlineData("mesh_gateway {\n  mode = local\n}", "line 2: expected a quoted string")]
    [InlineData("mesh_gateway {\n  mode = \"local\n}", "line 2: unterminated string")]
    [InlineData("mesh_gateway { mode = \"lo\\qcal\" }", "line 1: invalid escape \\q")]
    [InlineData("mesh_gateway { mode = \"\\u12\" }", "line 1: invalid \\u escape")]
    [InlineData("mesh_gateway { mode = \"local\" }\nextra", "line 2: unexpected text after the mesh_gateway block")]
    [InlineData("mesh_gateway { 5 }", "line 1: expected an attribute or '}'")]
    public void HclTryParse_Invalid_FailsWithMessage(string hcl, string message)
    {
        Assert.False(MeshGatewayModeHcl.TryParse(hcl, out MeshGatewayMode mode, out string? error));
        Assert.Equal(message, error);
        Assert.Equal(MeshGatewayMode.Unset, mode);
    }

    [Theory]
    [InlineData("")]
    [InlineData("none")]
    [InlineData("local")]
    [InlineData("remote")]
    public void HclRenderThenParse_KnownModes_RoundTrip(string raw)
    {
        MeshGatewayMode mode = MeshGatewayMode.FromConsul(raw);
        Assert.True(MeshGatewayModeHcl.TryParse(MeshGatewayModeHcl.Render(mode, indent: 2), out MeshGatewayMode back, out _));
        Assert.Equal(mode, back);
    }
}
