using System.Net;
using MeshGateway.Routing;

namespace MeshGateway.Tests.Routing;

public sealed class RouteTableSourceTests
{
    private static Route Route(string pattern) => new(pattern, new UpstreamCluster(pattern, [new UpstreamEndpoint(new IPEndPoint(IPAddress.Loopback, 1))]));

    [Fact]
    public void Current_NoInitialTable_IsEmpty()
    {
        var source = new RouteTableSource();
        Assert.Same(RouteTable.Empty, source.Current);
        Assert.False(source.Current.TryMatch("a.b"u8, out _));
    }

    [Fact]
    public async Task WaitForAsync_ConditionAlreadyTrue_CompletesAtOnceWithTheCurrentTable()
    {
        var source = new RouteTableSource(RouteTable.Create([Route("a.b")]));
        Task<RouteTable> wait = source.WaitForAsync(t => t.TryMatch("a.b"u8, out _));
        Assert.True(wait.IsCompletedSuccessfully);
        Assert.Same(source.Current, await wait);
    }

    [Fact]
    public async Task WaitForAsync_CompletesAtTheFirstUpdateThatSatisfiesIt_NotBefore()
    {
        var source = new RouteTableSource();
        Task<RouteTable> wait = source.WaitForAsync(t => t.TryMatch("c.d"u8, out _));

        Assert.True(source.TryUpdate([Route("a.b")], out _));
        // A non-matching update wakes the waiter, which checks and waits again: still pending once that check is done.
        Assert.False(wait.IsCompleted);
        Assert.True(source.TryUpdate([Route("a.b"), Route("c.d")], out _));
        RouteTable table = await wait.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(table.TryMatch("c.d"u8, out _));
        Assert.Equal(2, source.Version);
    }

    [Fact]
    public async Task WaitForAsync_Cancelled_ThrowsAndLeavesTheSourceAlone()
    {
        var source = new RouteTableSource();
        using var cancel = new CancellationTokenSource();
        Task<RouteTable> wait = source.WaitForAsync(_ => false, cancel.Token);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait);
        Assert.True(source.TryUpdate([Route("a.b")], out _));
    }

    [Fact]
    public void TryUpdate_ValidRoutes_PublishesNewTable()
    {
        var source = new RouteTableSource();
        Assert.True(source.TryUpdate([Route("a.b")], out string? error));
        Assert.Null(error);
        Assert.Equal(1, source.Version);
        Assert.True(source.Current.TryMatch("a.b"u8, out _));
    }

    [Fact]
    public void TryUpdate_InvalidRoutes_KeepsLastGoodTable()
    {
        var source = new RouteTableSource(RouteTable.Create([Route("a.b")]));
        RouteTable before = source.Current;
        Assert.False(source.TryUpdate([Route("x.y"), Route("X.Y")], out string? error));
        Assert.Contains("x.y", error, StringComparison.Ordinal);
        Assert.Same(before, source.Current);
        Assert.Equal(0, source.Version);
    }

    [Fact]
    public async Task Current_ConcurrentSwaps_ReadersAlwaysSeeACompleteTable()
    {
        RouteTable even = RouteTable.Create([Route("a.b"), Route("c.d")]);
        RouteTable odd = RouteTable.Create([Route("a.b"), Route("e.f")]);
        var source = new RouteTableSource(even);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        Task writer = Task.Run(() =>
        {
            for (int i = 0; i < 20_000 && !stop.IsCancellationRequested; i++)
            {
                source.Update(i % 2 == 0 ? odd : even);
            }
        });
        int checks = 0;
        while (!writer.IsCompleted)
        {
            RouteTable table = source.Current;
            Assert.True(table.TryMatch("a.b"u8, out _));
            Assert.NotEqual(table.TryMatch("c.d"u8, out _), table.TryMatch("e.f"u8, out _));
            checks++;
        }

        await writer;
        Assert.True(checks > 0);
        Assert.Equal(20_000, source.Version);
    }
}
