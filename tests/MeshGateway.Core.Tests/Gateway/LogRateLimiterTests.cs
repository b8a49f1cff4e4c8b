using MeshGateway.Gateway;
using MeshGateway.Testing;
using Microsoft.Extensions.Time.Testing;

namespace MeshGateway.Tests.Gateway;

public sealed class LogRateLimiterTests
{
    [Fact]
    public void TryAcquire_FloodWithinOneInterval_LetsTheFirstNThroughAndCountsTheRest()
    {
        var time = new FakeTimeProvider();
        var limiter = new LogRateLimiter(3, TimeSpan.FromSeconds(1), time);
        int allowed = 0;
        for (int i = 0; i < 1000; i++)
        {
            if (limiter.TryAcquire(out long suppressed))
            {
                allowed++;
                Assert.Equal(0, suppressed);
            }
        }

        Assert.Equal(3, allowed);
        Assert.Equal(997, limiter.PendingSuppressed);
    }

    [Fact]
    public void TryAcquire_WithPeriod_SaysHowLongTheSummaryCovers()
    {
        // The period a "K left out in the last S s" line covers: from the last event let through (or the limiter's
        // creation) to the one now let through; held-back events report none.
        var time = new FakeTimeProvider();
        var limiter = new LogRateLimiter(1, TimeSpan.FromSeconds(1), time);
        time.Advance(TimeSpan.FromMilliseconds(300));

        Assert.True(limiter.TryAcquire(out long suppressed, out TimeSpan since));
        Assert.Equal((0, TimeSpan.FromMilliseconds(300)), (suppressed, since));
        time.Advance(TimeSpan.FromMilliseconds(200));
        Assert.False(limiter.TryAcquire(out suppressed, out since));
        Assert.Equal((0, TimeSpan.Zero), (suppressed, since));
        time.Advance(TimeSpan.FromMilliseconds(2500));
        Assert.True(limiter.TryAcquire(out suppressed, out since));
        Assert.Equal((1, TimeSpan.FromMilliseconds(2700)), (suppressed, since));
    }

    [Fact]
    public void TryAcquire_NextInterval_FirstEventCarriesTheSuppressedCountOnce()
    {
        var time = new FakeTimeProvider();
        var limiter = new LogRateLimiter(2, TimeSpan.FromSeconds(1), time);
        for (int i = 0; i < 10; i++)
        {
            limiter.TryAcquire(out _);
        }

        time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.False(limiter.TryAcquire(out _));

        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(limiter.TryAcquire(out long suppressed));
        Assert.Equal(9, suppressed);
        Assert.True(limiter.TryAcquire(out suppressed));
        Assert.Equal(0, suppressed);
        Assert.Equal(0, limiter.PendingSuppressed);
    }

    [Fact]
    public void TryAcquire_ManyIntervals_NeverMoreThanLimitPerIntervalAndEveryEventAccountedFor()
    {
        var time = new FakeTimeProvider();
        var limiter = new LogRateLimiter(5, TimeSpan.FromSeconds(1), time);
        long logged = 0, reported = 0;
        for (int second = 0; second < 20; second++)
        {
            int inSecond = 0;
            for (int i = 0; i < 100 * (second % 3); i++)
            {
                if (limiter.TryAcquire(out long suppressed))
                {
                    logged++;
                    inSecond++;
                    reported += suppressed;
                }
            }

            Assert.InRange(inSecond, 0, 5);
            time.Advance(TimeSpan.FromSeconds(1));
        }

        long total = Enumerable.Range(0, 20).Sum(s => 100L * (s % 3));
        Assert.Equal(total, logged + reported + limiter.PendingSuppressed);
    }

    [Fact]
    public void Constructor_InvalidArguments_Throw()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new LogRateLimiter(-1, TimeSpan.FromSeconds(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LogRateLimiter(1, TimeSpan.Zero));
    }
}
