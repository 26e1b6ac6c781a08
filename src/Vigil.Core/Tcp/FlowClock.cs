namespace Vigil.Core.Tcp;

/// <summary>"Now" for the kernel's flow times, which are jiffies: the kernel stamps flows with
/// bpf_jiffies64 because any clock helper would cost as much as the rest of the aggregation path.
/// Resolution is one tick (1 to 10 ms).</summary>
public readonly record struct FlowClock(ulong NowJiffies, uint Hz)
{
    /// <summary>Time from <paramref name="jiffies"/> to now; a stamp ahead of now reads as 0.</summary>
    public ulong NanosecondsSince(ulong jiffies) =>
        NowJiffies > jiffies ? (NowJiffies - jiffies) * 1_000_000_000UL / Hz : 0;
}
