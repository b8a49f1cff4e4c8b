using MeshGateway.Gateway;
using MeshGateway.Testing;
using Microsoft.Extensions.Time.Testing;

namespace MeshGateway.Core.Tests.Gateway;

/// <summary>One collection after a wave has drained and stayed drained; none for small peaks or a wave that comes back.</summary>
public sealed class WaveMemoryTrimmerTests
{
    [Fact]
    public void Wave_DrainedToAQuarterAndStaysDrained_CollectsOnce()
    {
        var time = new FakeTimeProvider();
        int active = 0;
        using var trimmer = new WaveMemoryTrimmer(time, () => active);
        for (active = 1; active <= 2_000; active++)
        {
            trimmer.OnOpened(active);
        }

        for (active = 2_000; active > 400; active--)
        {
            trimmer.OnEnded(active - 1);
        }

        time.Advance(WaveMemoryTrimmer.Delay - TimeSpan.FromMilliseconds(1));
        Assert.Equal(0, trimmer.Collections);
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, trimmer.Collections);

        // The peak is now what was left (400): closing those is no new wave.
        for (; active > 0; active--)
        {
            trimmer.OnEnded(active - 1);
        }

        time.Advance(WaveMemoryTrimmer.Delay * 2);
        Assert.Equal(1, trimmer.Collections);
    }

    [Fact]
    public void SmallPeak_NeverCollects()
    {
        var time = new FakeTimeProvider();
        int active = WaveMemoryTrimmer.MinimumWave - 1;
        using var trimmer = new WaveMemoryTrimmer(time, () => active);
        trimmer.OnOpened(active);
        active = 0;
        trimmer.OnEnded(active);
        time.Advance(WaveMemoryTrimmer.Delay * 2);
        Assert.Equal(0, trimmer.Collections);
    }

    [Fact]
    public void WaveThatComesBackBeforeTheDelay_DoesNotCollect()
    {
        var time = new FakeTimeProvider();
        int active = 4_000;
        using var trimmer = new WaveMemoryTrimmer(time, () => active);
        trimmer.OnOpened(active);
        active = 100;
        trimmer.OnEnded(active);
        active = 3_000;
        trimmer.OnOpened(active);
        time.Advance(WaveMemoryTrimmer.Delay);
        Assert.Equal(0, trimmer.Collections);
    }
}
