using System.Net;
using System.Text.RegularExpressions;

namespace MeshGateway.Peering.Tests;

/// <summary>
/// Route regular expressions are RE2 (Envoy's <c>safe_regex</c>): matched here with the same meaning (RE2's syntax
/// reference, github.com/google/re2/wiki/Syntax), in linear time.
/// </summary>
public sealed class Re2PatternTests
{
    public static TheoryData<string, string, bool> Matches => new()
    {
        // \d \s \w are ASCII in RE2 (.NET's are Unicode).
        { @"\d+", "123", true },
        { @"\d+", "\u0661\u0662", false },
        { @"\w+", "abc_1", true },
        { @"\w+", "\u00e9t\u00e9", false },
        { @"a\sb", "a\tb", true },
        { @"a\sb", "a\u000Bb", false },
        { @"a\Sb", "a-b", true },
        { @"[\d_]+", "1_2", true },
        // POSIX classes exist in RE2 only (.NET would read [[:alpha:]] as a class of '[', ':', 'a', ... and ']').
        { "[[:alpha:]]+", "abc", true },
        { "[[:alpha:]]+", "::", false },
        { "[[:digit:][:upper:]]+", "A1B2", true },
        { "[[:^digit:]]+", "abc", true },
        { "[[:^digit:]]+", "a1", false },
        { "[^[:^digit:]]+", "12", true },
        // RE2's named group, one-letter Unicode classes, literal text, \x{...}, octal.
        { "(?P<id>[0-9]+)/x", "12/x", true },
        { @"\pL+", "h\u00e9llo", true },
        { @"\PL", "1", true },
        { @"\Q.*+\E", ".*+", true },
        { @"\Q.*+\E", "ab", false },
        { @"\Q.*", ".*", true },
        { @"\x{41}\x42", "AB", true },
        { @"\101\0", "A\0", true },
        // $ is the end of the text (without the m flag), not also before a final newline as in .NET.
        { "a$", "a", true },
        { "a$", "a\n", false },
        { "a", "a\n", false },
        { "(?m)a$\n", "a\n", true },
        // What needs no translation keeps its meaning; whole-value match, as Envoy's safe_regex.
        { "(?i)abc", "ABC", true },
        { "a.c", "a\nc", false },
        { "(?s)a.c", "a\nc", true },
        { "[]a]+", "]a", true },
        { "[a-]+", "a-", true },
        { @"[\[\]]", "[", true },
        { "[a[]", "[", true },
        { "/api/v[0-9]+/.*", "/api/v2/users", true },
        { "/api/v[0-9]+/.*", "/x/api/v2/users", false },
        { "ab", "xaby", false },
    };

    [Theory]
    [MemberData(nameof(Matches))]
    public void CompileFullMatch_MatchesAsRe2Does(string re2, string input, bool expected) =>
        Assert.Equal(expected, Re2Pattern.CompileFullMatch(re2, "test").IsMatch(input));

    [Theory]
    [InlineData("(?U)a+", "ungreedy")]
    [InlineData(@"a\Cb", @"\C")]
    [InlineData(@"[a\D]", @"\D")]
    [InlineData("[a[:^digit:]]", "[:^digit:]")]
    [InlineData("[[:letters:]]", "[:letters:]")]
    [InlineData(@"(a)\8", @"\8")]
    [InlineData(@"\x{1F600}", "U+1F600")]
    [InlineData("[abc", "closing ]")]
    [InlineData("a(b", "a(b")]
    [InlineData("(?=a)a", "(?=a)a")]
    [InlineData("(?>a+)b", "(?>a+)b")]
    public void CompileFullMatch_WhatDotNetCannotMatchTheSameWay_IsRefusedAndNamed(string re2, string named)
    {
        ArgumentException ex = Assert.Throws<ArgumentException>(() => Re2Pattern.CompileFullMatch(re2, "PathRegex"));

        Assert.Contains("PathRegex", ex.Message, StringComparison.Ordinal);
        Assert.Contains(named, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CompileFullMatch_NestedQuantifiers_AnswerWithoutBacktracking()
    {
        // (a+)+ against a long run of a's that fails at the end: exponential for a backtracking engine (which, with the
        // 100 ms limit this code had before, threw on the request path), linear for RE2 and .NET's non-backtracking one.
        Regex regex = Re2Pattern.CompileFullMatch("(a+)+b", "PathRegex");

        Assert.True(regex.Options.HasFlag(RegexOptions.NonBacktracking));
        Assert.DoesNotMatch(regex, new string('a', 5000) + "!");
        Assert.Matches(regex, new string('a', 5000) + "b");
    }

    [Fact]
    public async Task Route_PathRegexWithAPosixClass_RoutesAsEnvoyWould()
    {
        HttpRouteRule[] rules =
        [
            new() { Match = new HttpRouteMatch { PathRegex = "/items/[[:digit:]]+" }, Splits = [new WeightedTarget(PeeringHarness.TargetB, 100)] },
            new() { Splits = [new WeightedTarget(PeeringHarness.TargetA, 100)] },
        ];
        await using PeeringHarness harness = await PeeringHarness.StartAsync(rules);
        using HttpClient client = harness.CreateClient(harness.PeerClient);

        using HttpResponseMessage digits = await client.SendAsync(PeeringHarness.Get("/items/42", HttpVersion.Version11));
        using HttpResponseMessage colons = await client.SendAsync(PeeringHarness.Get("/items/::", HttpVersion.Version11));

        Assert.Equal("web-b /items/42", await digits.Content.ReadAsStringAsync());
        Assert.Equal("web-a /items/::", await colons.Content.ReadAsStringAsync());
    }
}
