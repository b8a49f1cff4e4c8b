using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MeshGateway.Model;

namespace MeshGateway.Tests.Model;

/// <summary>docs/consul-behaviour.md §5.1: the six dialing-side levels, the destination's service-defaults and the documented four-level view.</summary>
public sealed class MeshGatewayModeResolverTests
{
    private static readonly MeshGatewayMode s_none = MeshGatewayMode.None;
    private static readonly MeshGatewayMode s_local = MeshGatewayMode.Local;
    private static readonly MeshGatewayMode s_remote = MeshGatewayMode.Remote;
    private static readonly MeshGatewayMode s_bogus = MeshGatewayMode.FromConsul("bogus");

    private static MeshUpstream Api(MeshGatewayMode mode = default, string? peer = null) => new() { Name = "api", Peer = peer, MeshGateway = mode };

    private static MeshGatewayModeInputs Levels(MeshGatewayMode[] six, MeshGatewayMode destination = default) => new()
    {
        ProxyDefaults = six[0],
        ServiceDefaults = six[1],
        UpstreamDefaults = six[2],
        ProxyRegistration = six[3],
        UpstreamOverrides = [new UpstreamModeOverride { Name = "api", MeshGateway = six[4] }],
        DestinationServiceDefaults = destination,
    };

    public static TheoryData<MeshGatewayModeLevel> SixLevels => new()
    {
        MeshGatewayModeLevel.ProxyDefaults,
        MeshGatewayModeLevel.ServiceDefaults,
        MeshGatewayModeLevel.UpstreamDefaults,
        MeshGatewayModeLevel.ProxyRegistration,
        MeshGatewayModeLevel.UpstreamOverride,
        MeshGatewayModeLevel.Upstream,
    };

    [Theory]
    [MemberData(nameof(SixLevels))]
    public void Resolve_OnlyOneLevelSet_ThatLevelDecides(MeshGatewayModeLevel level)
    {
        var six = new MeshGatewayMode[6];
        six[(int)level - 1] = s_local;
        MeshGatewayModeResolution result = MeshGatewayModeResolver.Resolve(Levels(six), Api(six[5]));
        Assert.Equal(level, result.DecidedBy);
        Assert.Equal(s_local, result.Mode);
        Assert.Equal(MeshGatewayModeKind.Local, result.EffectiveMode);
        Assert.False(result.DecidedByUnknownValue);
    }

    [Theory]
    [MemberData(nameof(SixLevels))]
    public void Resolve_LevelSetAndAllLowerSetDifferently_ThatLevelWins(MeshGatewayModeLevel level)
    {
        var six = new MeshGatewayMode[6];
        for (int i = 0; i < (int)level - 1; i++)
        {
            six[i] = i % 2 == 0 ? s_remote : s_none;
        }

        six[(int)level - 1] = s_local;
        MeshGatewayModeResolution result = MeshGatewayModeResolver.Resolve(Levels(six, destination: s_remote), Api(six[5]));
        Assert.Equal(level, result.DecidedBy);
        Assert.Equal(s_local, result.Mode);
    }

    [Theory]
    [MemberData(nameof(SixLevels))]
    public void Resolve_HigherLevelUnset_DefersToThisLevel(MeshGatewayModeLevel level)
    {
        var six = new MeshGatewayMode[6];
        six[(int)level - 1] = s_remote;
        for (int i = 0; i < (int)level - 1; i++)
        {
            six[i] = s_none;
        }

        // Every level above is explicitly unset ("").
        for (int i = (int)level; i < 6; i++)
        {
            six[i] = MeshGatewayMode.FromConsul(string.Empty);
        }

        MeshGatewayModeResolution result = MeshGatewayModeResolver.Resolve(Levels(six), Api(six[5]));
        Assert.Equal(level, result.DecidedBy);
        Assert.Equal(MeshGatewayModeKind.Remote, result.EffectiveMode);
    }

    [Fact]
    public void Resolve_NothingSet_BuiltInDefaultNoneForOtherDatacenters()
    {
        MeshGatewayModeResolution result = MeshGatewayModeResolver.Resolve(new MeshGatewayModeInputs(), Api());
        Assert.Equal(MeshGatewayModeLevel.BuiltInDefault, result.DecidedBy);
        Assert.Equal(MeshGatewayMode.Unset, result.Mode);
        Assert.Equal(MeshGatewayModeKind.None, result.EffectiveMode);
        Assert.Contains("default to none", result.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Resolve_NothingSetPeered_BuiltInDefaultRemote()
    {
        MeshGatewayModeResolution result = MeshGatewayModeResolver.Resolve(new MeshGatewayModeInputs(), Api(peer: "cluster-02"));
        Assert.Equal(MeshGatewayModeLevel.BuiltInDefault, result.DecidedBy);
        Assert.Equal(MeshGatewayModeKind.Remote, result.EffectiveMode);
        Assert.True(result.IsPeered);
        Assert.Contains("Peers default to remote", result.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Resolve_PeeredNone_TreatedAsRemote()
    {
        MeshGatewayModeResolution result = MeshGatewayModeResolver.Resolve(new MeshGatewayModeInputs { ProxyDefaults = s_none }, Api(peer: "p"));
        Assert.Equal(s_none, result.Mode);
        Assert.Equal(MeshGatewayModeKind.Remote, result.EffectiveMode);
        Assert.Contains("treats none as remote", result.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Resolve_AllSixUnset_DestinationServiceDefaultsDecides()
    {
        MeshGatewayModeResolution result = MeshGatewayModeResolver.Resolve(new MeshGatewayModeInputs { DestinationServiceDefaults = s_remote }, Api());
        Assert.Equal(MeshGatewayModeLevel.DestinationServiceDefaults, result.DecidedBy);
        Assert.Equal(s_remote, result.Mode);
        Assert.Contains("destination service", result.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Resolve_AnyDialingLevelSet_DestinationServiceDefaultsIgnored()
    {
        MeshGatewayModeResolution result = MeshGatewayModeResolver.Resolve(
            new MeshGatewayModeInputs { ProxyDefaults = s_none, DestinationServiceDefaults = s_remote }, Api());
        Assert.Equal(MeshGatewayModeLevel.ProxyDefaults, result.DecidedBy);
        Assert.Equal(s_none, result.Mode);
    }

    [Fact]
    public void Resolve_Peered_DestinationServiceDefaultsNeverCounts()
    {
        MeshGatewayModeResolution result = MeshGatewayModeResolver.Resolve(new MeshGatewayModeInputs { DestinationServiceDefaults = s_local }, Api(peer: "p"));
        Assert.Equal(MeshGatewayModeLevel.BuiltInDefault, result.DecidedBy);
        Assert.Equal(MeshGatewayModeKind.Remote, result.EffectiveMode);
    }

    public static TheoryData<string, UpstreamModeOverride[], MeshUpstream, int?> OverrideCases => new()
    {
        { "name matches", [new() { Name = "web", MeshGateway = s_remote }, new() { Name = "api", MeshGateway = s_local }], Api(), 1 },
        { "name is case-sensitive", [new() { Name = "API", MeshGateway = s_local }], Api(), null },
        { "empty name is skipped", [new() { Name = "", MeshGateway = s_local }], Api(), null },
        { "namespace defaults to default", [new() { Name = "api", Namespace = "default", MeshGateway = s_local }], Api(), 0 },
        { "other namespace", [new() { Name = "api", Namespace = "ns1", MeshGateway = s_local }], Api(), null },
        { "other partition", [new() { Name = "api", Partition = "part1", MeshGateway = s_local }], Api(), null },
        { "same named partition", [new() { Name = "api", Partition = "part1", MeshGateway = s_local }], Api() with { Partition = "part1" }, 0 },
        { "last duplicate wins", [new() { Name = "api", MeshGateway = s_local }, new() { Name = "api", MeshGateway = s_remote }], Api(), 1 },
        { "peerless override applies to a peer when no override names a peer (1.14 compatibility)", [new() { Name = "api", MeshGateway = s_local }], Api(peer: "p1"), 0 },
        { "peerless override does not apply to a peer once an override names a peer", [new() { Name = "api", MeshGateway = s_local }, new() { Name = "other", Peer = "p9", MeshGateway = s_remote }], Api(peer: "p1"), null },
        { "override naming the upstream's peer", [new() { Name = "api", MeshGateway = s_remote }, new() { Name = "api", Peer = "p1", MeshGateway = s_local }], Api(peer: "p1"), 1 },
        { "override naming another peer", [new() { Name = "api", Peer = "p2", MeshGateway = s_local }], Api(peer: "p1"), null },
        { "peer override does not apply to the local service", [new() { Name = "api", Peer = "p1", MeshGateway = s_local }], Api(), null },
    };

    [Theory]
    [MemberData(nameof(OverrideCases))]
    public void Resolve_UpstreamOverrides_MatchLikeConsul(string description, UpstreamModeOverride[] overrides, MeshUpstream upstream, int? expectedIndex)
    {
        MeshGatewayModeResolution result = MeshGatewayModeResolver.Resolve(new MeshGatewayModeInputs { UpstreamOverrides = overrides }, upstream);
        Assert.True(expectedIndex == result.MatchedOverrideIndex, description);
        if (expectedIndex is int index)
        {
            Assert.Equal(MeshGatewayModeLevel.UpstreamOverride, result.DecidedBy);
            Assert.Equal(overrides[index].MeshGateway, result.Mode);
            Assert.Contains($"Overrides[{index}]", result.Explanation, StringComparison.Ordinal);
        }
        else
        {
            Assert.Equal(MeshGatewayModeLevel.BuiltInDefault, result.DecidedBy);
        }
    }

    [Fact]
    public void Resolve_LastMatchingOverrideUnset_EarlierOneIgnored()
    {
        MeshGatewayModeResolution result = MeshGatewayModeResolver.Resolve(
            new MeshGatewayModeInputs
            {
                ProxyRegistration = s_none,
                UpstreamOverrides = [new() { Name = "api", MeshGateway = s_local }, new() { Name = "api" }],
            },
            Api());
        Assert.Equal(1, result.MatchedOverrideIndex);
        Assert.Equal(MeshGatewayModeLevel.ProxyRegistration, result.DecidedBy);
    }

    [Fact]
    public void Resolve_PeeredUpstream_OverrideMatchedInCallersPartition()
    {
        var overrides = new UpstreamModeOverride[] { new() { Name = "api", Partition = "part1", Peer = "p1", MeshGateway = s_local } };
        MeshUpstream upstream = Api(peer: "p1") with { Partition = "elsewhere" };
        Assert.Equal(0, MeshGatewayModeResolver.Resolve(new MeshGatewayModeInputs { UpstreamOverrides = overrides, CallerPartition = "part1" }, upstream).MatchedOverrideIndex);
        Assert.Null(MeshGatewayModeResolver.Resolve(new MeshGatewayModeInputs { UpstreamOverrides = overrides }, upstream).MatchedOverrideIndex);
    }

    [Fact]
    public void Resolve_UnknownValueAtHighestSetLevel_WinsAndIsFlagged()
    {
        MeshGatewayModeResolution result = MeshGatewayModeResolver.Resolve(
            new MeshGatewayModeInputs { ProxyDefaults = s_remote, ProxyRegistration = s_bogus }, Api());
        Assert.Equal(MeshGatewayModeLevel.ProxyRegistration, result.DecidedBy);
        Assert.Equal("bogus", result.Mode.RawValue);
        Assert.True(result.DecidedByUnknownValue);
        Assert.Equal([MeshGatewayModeLevel.ProxyRegistration], result.LevelsWithUnknownValues);
        Assert.Equal(MeshGatewayModeKind.None, result.EffectiveMode);
        Assert.Contains("\"bogus\" is not a valid mode", result.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Resolve_UnknownValueOverridden_StillReported()
    {
        MeshGatewayModeResolution result = MeshGatewayModeResolver.Resolve(
            new MeshGatewayModeInputs { ServiceDefaults = MeshGatewayMode.FromConsul("LOCAL") }, Api(s_local));
        Assert.Equal(MeshGatewayModeLevel.Upstream, result.DecidedBy);
        Assert.False(result.DecidedByUnknownValue);
        Assert.Equal([MeshGatewayModeLevel.ServiceDefaults], result.LevelsWithUnknownValues);
    }

    [Fact]
    public void Resolve_UnknownValuePeered_ActsAsRemote()
    {
        MeshGatewayModeResolution result = MeshGatewayModeResolver.Resolve(new MeshGatewayModeInputs(), Api(MeshGatewayMode.FromConsul(" local"), "p"));
        Assert.Equal(MeshGatewayModeKind.Remote, result.EffectiveMode);
        Assert.True(result.DecidedByUnknownValue);
    }

    [Fact]
    public void Resolve_UnknownDestinationServiceDefaults_Flagged()
    {
        MeshGatewayModeResolution result = MeshGatewayModeResolver.Resolve(new MeshGatewayModeInputs { DestinationServiceDefaults = s_bogus }, Api());
        Assert.Equal(MeshGatewayModeLevel.DestinationServiceDefaults, result.DecidedBy);
        Assert.Equal([MeshGatewayModeLevel.DestinationServiceDefaults], result.LevelsWithUnknownValues);
    }

    [Theory]
    [InlineData("local", "remote", "none", "remote", "local", MeshGatewayModeLevel.Upstream)]
    [InlineData("", "remote", "none", "local", "remote", MeshGatewayModeLevel.ProxyRegistration)]
    [InlineData("", "", "none", "local", "none", MeshGatewayModeLevel.ServiceDefaults)]
    [InlineData("", "", "", "local", "local", MeshGatewayModeLevel.ProxyDefaults)]
    [InlineData("", "", "", "", "", MeshGatewayModeLevel.BuiltInDefault)]
    public void ResolveDocumented_FourLevels_FirstNonEmptyWins(string upstream, string instance, string serviceDefaults, string proxyDefaults, string expected, MeshGatewayModeLevel level)
    {
        MeshGatewayModeResolution result = MeshGatewayModeResolver.ResolveDocumented(
            MeshGatewayMode.FromConsul(upstream), MeshGatewayMode.FromConsul(instance), MeshGatewayMode.FromConsul(serviceDefaults), MeshGatewayMode.FromConsul(proxyDefaults));
        Assert.Equal(expected, result.Mode.RawValue);
        Assert.Equal(level, result.DecidedBy);
    }

    private static readonly Gen<MeshGatewayMode> s_anyMode =
        Gen.Elements(MeshGatewayMode.Unset, s_none, s_local, s_remote, s_bogus, MeshGatewayMode.FromConsul("Remote"));

    [Property]
    public Property Resolve_RandomLevels_MostSpecificNonUnsetWins()
    {
        return Prop.ForAll(
            (from six in s_anyMode.ArrayOf(6)
             from destination in s_anyMode
             from peered in Gen.Elements(false, true)
             select (six, destination, peered)).ToArbitrary(),
            t =>
            {
                MeshGatewayModeResolution result = MeshGatewayModeResolver.Resolve(Levels(t.six, t.destination), Api(t.six[5], t.peered ? "p" : null));
                int highest = Array.FindLastIndex(t.six, m => m.IsSet);
                (MeshGatewayModeLevel level, MeshGatewayMode mode) expected = highest >= 0
                    ? ((MeshGatewayModeLevel)(highest + 1), t.six[highest])
                    : !t.peered && t.destination.IsSet
                        ? (MeshGatewayModeLevel.DestinationServiceDefaults, t.destination)
                        : (MeshGatewayModeLevel.BuiltInDefault, MeshGatewayMode.Unset);
                int unknownCount = t.six.Count(m => !m.IsKnown) + (expected.level == MeshGatewayModeLevel.DestinationServiceDefaults && !t.destination.IsKnown ? 1 : 0);
                return result.DecidedBy == expected.level
                    && result.Mode == expected.mode
                    && result.LevelsWithUnknownValues.Count == unknownCount
                    && result.EffectiveMode is MeshGatewayModeKind.None or MeshGatewayModeKind.Local or MeshGatewayModeKind.Remote;
            });
    }

    [Property]
    public Property ResolveDocumented_AgreesWithResolve_WhenExtraLevelsUnset()
    {
        return Prop.ForAll(
            s_anyMode.ArrayOf(4).ToArbitrary(),
            four =>
            {
                MeshGatewayModeResolution documented = MeshGatewayModeResolver.ResolveDocumented(four[0], four[1], four[2], four[3]);
                MeshGatewayModeResolution full = MeshGatewayModeResolver.Resolve(
                    new MeshGatewayModeInputs { ProxyDefaults = four[3], ServiceDefaults = four[2], ProxyRegistration = four[1] }, Api(four[0]));
                return documented.Mode == full.Mode && documented.DecidedBy == full.DecidedBy;
            });
    }
}
