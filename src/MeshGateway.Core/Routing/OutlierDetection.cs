namespace MeshGateway.Routing;

/// <summary>
/// When an <see cref="UpstreamCluster"/> leaves an endpoint out after failed connects (passive health checking), with
/// Envoy's outlier-detection defaults: consecutive failures before an ejection, an ejection time that grows with the
/// number of ejections in a row, and a cap on the share of the cluster that may be ejected at once.
/// </summary>
/// <remarks>
/// <para>
/// <b>Algorithm</b> (Envoy's <c>outlier_detection</c> as its TCP proxy uses it, where a failed or timed-out connect is a
/// <c>consecutive_5xx</c> error; <c>envoy: docs/root/intro/arch_overview/upstream/outlier.rst</c>):
/// </para>
/// <list type="number">
/// <item>Every failed or timed-out connect counts one consecutive failure on the endpoint; a successful connect resets
/// the count to zero (and ends an ejection in progress: the endpoint proved it answers).</item>
/// <item>At <see cref="ConsecutiveFailures"/> the endpoint is ejected, unless the cluster already has as many ejected
/// endpoints as <see cref="MaxEjectionPercent"/> allows; one endpoint may always be ejected, whatever the percentage
/// (Envoy: "defaults to 10% but will eject at least one host regardless of the value"). An endpoint that is not ejected
/// for lack of room keeps its count, so it is ejected at its next failure once there is room. An ejection resets the count.</item>
/// <item>The ejection lasts <see cref="BaseEjectionTime"/> × the number of times the endpoint was ejected in a row,
/// at most <see cref="MaxEjectionTime"/>. The multiplier goes down by one for every <see cref="Interval"/> the
/// endpoint spends outside an ejection (Envoy decrements it at each interval sweep that finds the host healthy; here
/// the same count is taken when the next ejection is computed, so no timer runs).</item>
/// <item>An ejected endpoint is not chosen, except in panic mode (no healthy, non-ejected endpoint left), as in Envoy.</item>
/// </list>
/// <para>
/// Counters per endpoint: <see cref="EndpointState.ConnectFailures"/>, <see cref="EndpointState.ConsecutiveFailures"/>,
/// <see cref="EndpointState.Ejections"/>. The state survives routing-table swaps (see <see cref="EndpointState"/>).
/// A <see cref="BaseEjectionTime"/> of zero turns ejection off (failures are still counted).
/// </para>
/// </remarks>
public sealed record OutlierDetection
{
    /// <summary>The default <see cref="ConsecutiveFailures"/>: 5, Envoy's <c>consecutive_5xx</c> default.</summary>
    public const int DefaultConsecutiveFailures = 5;

    /// <summary>The default <see cref="MaxEjectionPercent"/>: 10, Envoy's <c>max_ejection_percent</c> default.</summary>
    public const int DefaultMaxEjectionPercent = 10;

    /// <summary>The largest <see cref="ConsecutiveFailures"/> accepted.</summary>
    public const int MaxAllowedConsecutiveFailures = 1000;

    /// <summary>The default <see cref="BaseEjectionTime"/>: 30 s, Envoy's <c>base_ejection_time</c> default.</summary>
    public static readonly TimeSpan DefaultBaseEjectionTime = TimeSpan.FromSeconds(30);

    /// <summary>The default <see cref="MaxEjectionTime"/>: 300 s, Envoy's <c>max_ejection_time</c> default.</summary>
    public static readonly TimeSpan DefaultMaxEjectionTime = TimeSpan.FromSeconds(300);

    /// <summary>The default <see cref="Interval"/>: 10 s, Envoy's <c>interval</c> default.</summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(10);

    /// <summary>Envoy's defaults (5 consecutive failures, 30 s base, 300 s at most, 10 % of the cluster, 10 s interval).</summary>
    public static OutlierDetection Default { get; } = new();

    /// <summary>No ejection at all (failures are still counted).</summary>
    public static OutlierDetection Disabled { get; } = new() { BaseEjectionTime = TimeSpan.Zero };

    private readonly int _consecutiveFailures = DefaultConsecutiveFailures;
    private readonly TimeSpan _baseEjectionTime = DefaultBaseEjectionTime;
    private readonly TimeSpan _maxEjectionTime = DefaultMaxEjectionTime;
    private readonly int _maxEjectionPercent = DefaultMaxEjectionPercent;
    private readonly TimeSpan _interval = DefaultInterval;

    /// <summary>
    /// Failed or timed-out connects in a row that eject an endpoint (Envoy <c>consecutive_5xx</c>, which its TCP proxy
    /// maps connect failures to). Default <see cref="DefaultConsecutiveFailures"/>; 1 to <see cref="MaxAllowedConsecutiveFailures"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is outside 1 to <see cref="MaxAllowedConsecutiveFailures"/>.</exception>
    public int ConsecutiveFailures
    {
        get => _consecutiveFailures;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, MaxAllowedConsecutiveFailures);
            _consecutiveFailures = value;
        }
    }

    /// <summary>
    /// The length of a first ejection; the n-th ejection in a row lasts n times as long (Envoy <c>base_ejection_time</c>).
    /// Default <see cref="DefaultBaseEjectionTime"/>; zero turns ejection off.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
    public TimeSpan BaseEjectionTime
    {
        get => _baseEjectionTime;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, TimeSpan.Zero);
            _baseEjectionTime = value;
        }
    }

    /// <summary>
    /// The longest one ejection lasts, however many came before (Envoy <c>max_ejection_time</c>). Default
    /// <see cref="DefaultMaxEjectionTime"/>; a value below <see cref="BaseEjectionTime"/> caps every ejection at it.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
    public TimeSpan MaxEjectionTime
    {
        get => _maxEjectionTime;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, TimeSpan.Zero);
            _maxEjectionTime = value;
        }
    }

    /// <summary>
    /// The largest share of a cluster's endpoints ejected at once, in percent (Envoy <c>max_ejection_percent</c>); one
    /// endpoint may always be ejected. Default <see cref="DefaultMaxEjectionPercent"/>; 0 to 100.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is outside 0 to 100.</exception>
    public int MaxEjectionPercent
    {
        get => _maxEjectionPercent;
        init
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, 100);
            _maxEjectionPercent = value;
        }
    }

    /// <summary>
    /// Each whole interval an endpoint spends outside an ejection takes one off its ejection multiplier (Envoy
    /// <c>interval</c>). Default <see cref="DefaultInterval"/>; positive.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not positive.</exception>
    public TimeSpan Interval
    {
        get => _interval;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(value, TimeSpan.Zero);
            _interval = value;
        }
    }

    /// <summary>Whether endpoints are ejected at all (<see cref="BaseEjectionTime"/> is positive).</summary>
    public bool IsEnabled => _baseEjectionTime > TimeSpan.Zero;

    /// <summary>How many of <paramref name="endpoints"/> endpoints may be ejected at once: <see cref="MaxEjectionPercent"/> of them, rounded down, at least one.</summary>
    /// <param name="endpoints">The cluster's endpoint count.</param>
    /// <returns>The cap.</returns>
    public int MaxEjected(int endpoints) => Math.Max(1, (int)((long)endpoints * _maxEjectionPercent / 100));

    /// <summary>The length of the <paramref name="ejections"/>-th ejection in a row: <see cref="BaseEjectionTime"/> × <paramref name="ejections"/>, at most <see cref="MaxEjectionTime"/>.</summary>
    /// <param name="ejections">The multiplier, 1 or more.</param>
    /// <returns>The ejection time.</returns>
    public TimeSpan EjectionTime(int ejections)
    {
        double ticks = (double)_baseEjectionTime.Ticks * Math.Max(1, ejections);
        return ticks >= _maxEjectionTime.Ticks ? _maxEjectionTime : TimeSpan.FromTicks((long)ticks);
    }
}
