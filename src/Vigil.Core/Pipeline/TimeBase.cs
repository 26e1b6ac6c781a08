using System.Diagnostics;

namespace Vigil.Core.Pipeline;

/// <summary>Converts kernel CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns) to wall-clock time.
/// On Linux <see cref="Stopwatch"/> reads CLOCK_MONOTONIC in nanoseconds, so one offset suffices.</summary>
public sealed class TimeBase
{
    private readonly long _unixNsAtZero;

    public TimeBase(long unixNsAtMonotonicZero) => _unixNsAtZero = unixNsAtMonotonicZero;

    public static TimeBase Now()
    {
        long mono = (long)(Stopwatch.GetTimestamp() * (1_000_000_000.0 / Stopwatch.Frequency));
        long unix = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
        return new TimeBase(unix - mono);
    }

    public long ToUnixNanoseconds(ulong monotonicNs) => _unixNsAtZero + (long)monotonicNs;

    public DateTime ToUtc(ulong monotonicNs) => DateTime.UnixEpoch.AddTicks(ToUnixNanoseconds(monotonicNs) / 100);
}
