using System.Text.Json;

namespace MeshGateway.Consul.Tests.Http;

/// <summary>The catalog watcher's check list (<c>/v1/health/state/any</c>) read straight into compact records.</summary>
public sealed class CheckListJsonConverterTests
{
    // The shape a 1.8.7 agent writes (curl /v1/health/state/any): a service check and a node check, plus an escaped check ID
    // and a long one that does not fit the reader's stack buffer.
    private const string Body = """
        [
          {"Node": "n1", "CheckID": "serfHealth", "Name": "Serf Health Status", "Status": "passing", "Notes": "", "Output": "Agent alive and reachable",
           "ServiceID": "", "ServiceName": "", "ServiceTags": [], "Type": "", "Definition": {}, "CreateIndex": 11, "ModifyIndex": 11},
          {"Node": "n1", "CheckID": "c1", "Name": "c", "Status": "critical", "Notes": "", "Output": "",
           "ServiceID": "api1", "ServiceName": "api", "ServiceTags": ["v1"], "Type": "http",
           "Definition": {"Interval": "10s", "Header": {"X": ["y"]}}, "CreateIndex": 11, "ModifyIndex": 16},
          {"Node": "n\u0032", "CheckID": "service:web\u002D1", "Status": "warning", "ServiceName": "web", "ModifyIndex": 20},
          {"Node": "n2", "CheckID": "LONGID", "Status": "passing", "ServiceName": null, "ModifyIndex": 21}
        ]
        """;

    private static readonly string LongId = new('x', 300);

    private static CheckList Parse(string json) => JsonSerializer.Deserialize(json, ConsulJsonContext.Default.CheckList)!;

    [Fact]
    public void Read_ConsulShape_KeysAndRecordsMatchTheGeneratedReader()
    {
        string json = Body.Replace("LONGID", LongId, StringComparison.Ordinal);
        CheckList list = Parse(json);
        List<ConsulCheckState> reference = JsonSerializer.Deserialize(json, ConsulJsonContext.Default.ListConsulCheckState)!;

        Assert.Equal(reference.Count, list.Records.Count);
        foreach (ConsulCheckState check in reference)
        {
            CheckRecord record = list.Records[CheckList.Key(check.Node!, check.CheckID)];
            Assert.Equal(check.Node, record.Node);
            Assert.Equal(string.IsNullOrEmpty(check.ServiceName) ? null : check.ServiceName, record.ServiceName);
            Assert.Equal(check.Status, record.Status);
            Assert.Equal(check.ModifyIndex, record.ModifyIndex);
        }

        Assert.Equal("web", list.Records[CheckList.Key("n2", "service:web-1")].ServiceName);
        Assert.Null(list.Records[CheckList.Key("n1", "serfHealth")].ServiceName);
    }

    [Fact]
    public void Read_RepeatedNamesAndStatuses_AreShared()
    {
        CheckList list = Parse("""
            [{"Node": "node-a", "CheckID": "a", "Status": "passing", "ServiceName": "svc", "ModifyIndex": 1},
             {"Node": "node-a", "CheckID": "b", "Status": "passing", "ServiceName": "svc", "ModifyIndex": 2}]
            """);
        CheckRecord a = list.Records[CheckList.Key("node-a", "a")];
        CheckRecord b = list.Records[CheckList.Key("node-a", "b")];
        Assert.Same(a.Node, b.Node);
        Assert.Same(a.ServiceName, b.ServiceName);
        Assert.Same(a.Status, b.Status);
    }

    [Theory]
    [InlineData("null", 0)]
    [InlineData("[]", 0)]
    public void Read_NullOrEmpty_IsAnEmptyList(string json, int count) => Assert.Equal(count, Parse(json).Records.Count);

    [Theory]
    [InlineData("{}", "Expected an array for the check list but found an object")]
    [InlineData("[1]", "Expected an object for a check but found a number")]
    [InlineData("""[{"CheckID": 5}]""", "Expected a string for CheckID but found a number")]
    [InlineData("""[{"Node": 5}]""", "Expected a string for Node but found a number")]
    [InlineData("""[{"ModifyIndex": "7"}]""", "Expected an unsigned integer for ModifyIndex but found a string")]
    public void Read_WrongShapes_ClearJsonError(string json, string message)
    {
        JsonException error = Assert.Throws<JsonException>(() => Parse(json));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }
}
