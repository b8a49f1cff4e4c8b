using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using MeshGateway.Gateway;

namespace MeshGateway.Hosting;

/// <summary>
/// Aggregates the gateway's <c>MeshGateway</c> meter in memory (a <see cref="MeterListener"/>) and renders it in the
/// Prometheus text exposition format 0.0.4, with OpenTelemetry's Prometheus name mapping (<c>.</c> to <c>_</c>, the
/// unit as a suffix: <c>By</c> to <c>_bytes</c>, <c>s</c> to <c>_seconds</c>, <c>{…}</c> units dropped; counters
/// end in <c>_total</c>; up-down counters are gauges).
/// </summary>
/// <remarks>
/// Why not the OpenTelemetry SDK's Prometheus exporter: see <see cref="AdminEndpoint"/> (it comes with its own
/// HttpListener on its own path and port and a beta package). Cost on the data path: a measurement finds its series
/// by its tag values in a <see cref="ConcurrentDictionary{TKey, TValue}"/> (lock-free read, no allocation once the
/// series exists: tags are compared by reference-equal cached strings) and adds with one interlocked operation.
/// Only instruments of the given meter factory's <c>MeshGateway</c> meters are listened to, so two gateways in one
/// process (each with its own host) do not mix.
/// </remarks>
internal sealed class AdminMetrics : IDisposable
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    // OpenTelemetry's default explicit bucket boundaries, for a histogram without advice.
    private static readonly double[] s_defaultBounds = [0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000];

    private static long s_recordErrors;

    private readonly MeterListener _listener;
    private readonly ConcurrentDictionary<Instrument, InstrumentState> _instruments = new();
    private readonly Lock _scrape = new();

    public AdminMetrics(IMeterFactory? meterFactory)
    {
        _listener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name.StartsWith(GatewayMetricNames.MeterName, StringComparison.Ordinal)
                    && ReferenceEquals(instrument.Meter.Scope, meterFactory))
                {
                    var state = new InstrumentState(instrument);
                    _instruments[instrument] = state;
                    listener.EnableMeasurementEvents(instrument, state);
                }
            },
            MeasurementsCompleted = (instrument, _) => _instruments.TryRemove(instrument, out InstrumentState? _),
        };
        _listener.SetMeasurementEventCallback<long>(static (_, value, tags, state) => ((InstrumentState)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<int>(static (_, value, tags, state) => ((InstrumentState)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<double>(static (_, value, tags, state) => ((InstrumentState)state!).Record(value, tags));
        _listener.Start();
    }

    /// <summary>Collects the observable instruments and renders every series.</summary>
    public byte[] Render()
    {
        var text = new StringBuilder(4096);
        lock (_scrape)
        {
            foreach (InstrumentState state in _instruments.Values)
            {
                if (state.Instrument.IsObservable)
                {
                    // Observable instruments report current values: series that were not reported again are gone.
                    state.Series.Clear();
                }
            }

            _listener.RecordObservableInstruments();
            var ordered = new List<InstrumentState>(_instruments.Values);
            ordered.Sort(static (a, b) => string.CompareOrdinal(a.Instrument.Name, b.Instrument.Name));
            foreach (InstrumentState state in ordered)
            {
                state.Write(text);
            }
        }

        return Encoding.UTF8.GetBytes(text.ToString());
    }

    /// <summary>Measurements that failed to aggregate (a bug; counted rather than thrown into the data path).</summary>
    internal static long RecordErrors => Interlocked.Read(ref s_recordErrors);

    public void Dispose() => _listener.Dispose();

    /// <summary>The Prometheus metric name for an instrument (OpenTelemetry's compatibility rules, simplified).</summary>
    internal static string PrometheusName(Instrument instrument)
    {
        var name = new StringBuilder(instrument.Name.Length + 16);
        foreach (char c in instrument.Name)
        {
            name.Append(char.IsAsciiLetterOrDigit(c) || c == '_' || c == ':' ? c : '_');
        }

        string? suffix = instrument.Unit switch
        {
            "s" => "seconds",
            "ms" => "milliseconds",
            "By" => "bytes",
            "1" when Kind(instrument) == MetricKind.Gauge => "ratio",
            _ => null,
        };
        if (suffix is not null && !name.ToString().EndsWith("_" + suffix, StringComparison.Ordinal))
        {
            name.Append('_').Append(suffix);
        }

        if (Kind(instrument) == MetricKind.Counter)
        {
            name.Append("_total");
        }

        return name.ToString();
    }

    private static MetricKind Kind(Instrument instrument) => instrument switch
    {
        Counter<long> or Counter<int> or Counter<double> or ObservableCounter<long> or ObservableCounter<int> or ObservableCounter<double> => MetricKind.Counter,
        Histogram<long> or Histogram<int> or Histogram<double> => MetricKind.Histogram,
        _ => MetricKind.Gauge,
    };

    /// <summary>Whether a measurement is the current value (observable instruments, gauges) rather than an increment.</summary>
    private static bool IsLastValue(Instrument instrument) => instrument.IsObservable || instrument is Gauge<long> or Gauge<int> or Gauge<double>;

    private static void AppendValue(StringBuilder text, double value)
    {
        if (double.IsPositiveInfinity(value))
        {
            text.Append("+Inf");
        }
        else if (double.IsNegativeInfinity(value))
        {
            text.Append("-Inf");
        }
        else if (double.IsNaN(value))
        {
            text.Append("NaN");
        }
        else
        {
            text.Append(value.ToString("R", CultureInfo.InvariantCulture));
        }
    }

    private static void AppendLabels(StringBuilder text, TagSet tags, string? le)
    {
        if (tags.Count == 0 && le is null)
        {
            return;
        }

        text.Append('{');
        bool first = true;
        for (int i = 0; i < tags.Count; i++)
        {
            KeyValuePair<string, object?> tag = tags[i];
            if (!first)
            {
                text.Append(',');
            }

            first = false;
            foreach (char c in tag.Key)
            {
                text.Append(char.IsAsciiLetterOrDigit(c) || c == '_' ? c : '_');
            }

            text.Append("=\"");
            string value = Convert.ToString(tag.Value, CultureInfo.InvariantCulture) ?? string.Empty;
            foreach (char c in value)
            {
                _ = c switch
                {
                    '\\' => text.Append("\\\\"),
                    '"' => text.Append("\\\""),
                    '\n' => text.Append("\\n"),
                    _ => text.Append(c),
                };
            }

            text.Append('"');
        }

        if (le is not null)
        {
            text.Append(first ? string.Empty : ",").Append("le=\"").Append(le).Append('"');
        }

        text.Append('}');
    }

    private enum MetricKind
    {
        Counter,
        Gauge,
        Histogram,
    }

    /// <summary>One instrument's series, keyed by tag values.</summary>
    private sealed class InstrumentState
    {
        private readonly MetricKind _kind;
        private readonly double[]? _bounds;
        private readonly bool _lastValue;

        public InstrumentState(Instrument instrument)
        {
            Instrument = instrument;
            _kind = Kind(instrument);
            _lastValue = IsLastValue(instrument);
            if (_kind == MetricKind.Histogram)
            {
                _bounds = instrument is Histogram<double> { Advice.HistogramBucketBoundaries: { Count: > 0 } advised }
                    ? [.. advised]
                    : s_defaultBounds;
            }
        }

        public Instrument Instrument { get; }

        public ConcurrentDictionary<TagSet, Series> Series { get; } = new();

        public void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            // Runs on the data path (the instrument's caller): it must never throw there.
            try
            {
                RecordCore(value, tags);
            }
            catch (Exception)
            {
                Interlocked.Increment(ref s_recordErrors);
            }
        }

        private void RecordCore(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var key = new TagSet(tags);
            if (!Series.TryGetValue(key, out Series? series))
            {
                series = Series.GetOrAdd(key, static (_, bounds) => new Series(bounds), _bounds);
            }

            if (_kind == MetricKind.Histogram)
            {
                series.Observe(value, _bounds!);
            }
            else if (_lastValue)
            {
                series.Set(value);
            }
            else
            {
                series.Add(value);
            }
        }

        public void Write(StringBuilder text)
        {
            if (Series.IsEmpty)
            {
                return;
            }

            string name = PrometheusName(Instrument);
            if (!string.IsNullOrEmpty(Instrument.Description))
            {
                text.Append("# HELP ").Append(name).Append(' ').Append(Instrument.Description.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)).Append('\n');
            }

            text.Append("# TYPE ").Append(name).Append(' ').Append(_kind switch { MetricKind.Counter => "counter", MetricKind.Histogram => "histogram", _ => "gauge" }).Append('\n');
            foreach (KeyValuePair<TagSet, Series> entry in Series)
            {
                Series series = entry.Value;
                if (_kind != MetricKind.Histogram)
                {
                    text.Append(name);
                    AppendLabels(text, entry.Key, null);
                    text.Append(' ');
                    AppendValue(text, series.Value);
                    text.Append('\n');
                    continue;
                }

                long cumulative = 0;
                for (int i = 0; i <= _bounds!.Length; i++)
                {
                    cumulative += Interlocked.Read(ref series.Buckets![i]);
                    text.Append(name).Append("_bucket");
                    AppendLabels(text, entry.Key, i < _bounds.Length ? _bounds[i].ToString("R", CultureInfo.InvariantCulture) : "+Inf");
                    text.Append(' ').Append(cumulative.ToString(CultureInfo.InvariantCulture)).Append('\n');
                }

                text.Append(name).Append("_sum");
                AppendLabels(text, entry.Key, null);
                text.Append(' ');
                AppendValue(text, series.Value);
                text.Append('\n').Append(name).Append("_count");
                AppendLabels(text, entry.Key, null);
                text.Append(' ').Append(Interlocked.Read(ref series.Count).ToString(CultureInfo.InvariantCulture)).Append('\n');
            }
        }
    }

    /// <summary>One series: a sum (counters, histograms), a last value (gauges) and histogram buckets.</summary>
    private sealed class Series
    {
        public readonly long[]? Buckets;
        public long Count;
        private long _valueBits;

        public Series(double[]? bounds) => Buckets = bounds is null ? null : new long[bounds.Length + 1];

        public double Value => BitConverter.Int64BitsToDouble(Interlocked.Read(ref _valueBits));

        public void Set(double value) => Interlocked.Exchange(ref _valueBits, BitConverter.DoubleToInt64Bits(value));

        public void Add(double value)
        {
            long current = Interlocked.Read(ref _valueBits);
            while (true)
            {
                long next = BitConverter.DoubleToInt64Bits(BitConverter.Int64BitsToDouble(current) + value);
                long seen = Interlocked.CompareExchange(ref _valueBits, next, current);
                if (seen == current)
                {
                    return;
                }

                current = seen;
            }
        }

        public void Observe(double value, double[] bounds)
        {
            // Prometheus buckets are upper-inclusive (le): the first bound the value does not exceed.
            int index = 0;
            while (index < bounds.Length && value > bounds[index])
            {
                index++;
            }

            Interlocked.Increment(ref Buckets![index]);
            Interlocked.Increment(ref Count);
            Add(value);
        }
    }

    /// <summary>
    /// A measurement's tags as a dictionary key without allocating: up to four inline (the gateway's instruments have at
    /// most three), more in an array.
    /// </summary>
    private readonly struct TagSet : IEquatable<TagSet>
    {
        private readonly KeyValuePair<string, object?> _t0;
        private readonly KeyValuePair<string, object?> _t1;
        private readonly KeyValuePair<string, object?> _t2;
        private readonly KeyValuePair<string, object?> _t3;
        private readonly KeyValuePair<string, object?>[]? _more;

        public TagSet(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            Count = tags.Length;
            if (tags.Length > 4)
            {
                _more = tags.ToArray();
                _t0 = _t1 = _t2 = _t3 = default;
                return;
            }

            _more = null;
            _t0 = tags.Length > 0 ? tags[0] : default;
            _t1 = tags.Length > 1 ? tags[1] : default;
            _t2 = tags.Length > 2 ? tags[2] : default;
            _t3 = tags.Length > 3 ? tags[3] : default;
        }

        public int Count { get; }

        public KeyValuePair<string, object?> this[int index] => _more is not null ? _more[index] : index switch { 0 => _t0, 1 => _t1, 2 => _t2, _ => _t3 };

        public bool Equals(TagSet other)
        {
            if (Count != other.Count)
            {
                return false;
            }

            for (int i = 0; i < Count; i++)
            {
                KeyValuePair<string, object?> a = this[i];
                KeyValuePair<string, object?> b = other[i];
                if (!string.Equals(a.Key, b.Key, StringComparison.Ordinal) || !Equals(a.Value, b.Value))
                {
                    return false;
                }
            }

            return true;
        }

        public override bool Equals(object? obj) => obj is TagSet other && Equals(other);

        public override int GetHashCode()
        {
            var hash = default(HashCode);
            for (int i = 0; i < Count; i++)
            {
                KeyValuePair<string, object?> tag = this[i];
                hash.Add(tag.Key, StringComparer.Ordinal);
                hash.Add(tag.Value);
            }

            return hash.ToHashCode();
        }
    }
}
