namespace Vigil.Interop;

/// <summary>The effective capability set of this process, from /proc/self/status.</summary>
public sealed class Capabilities
{
    public const int CAP_NET_ADMIN = 12, CAP_NET_RAW = 13, CAP_SYS_ADMIN = 21, CAP_SYS_PTRACE = 19,
        CAP_DAC_READ_SEARCH = 2, CAP_PERFMON = 38, CAP_BPF = 39;

    private static readonly (int Bit, string Name)[] Known =
    [
        (CAP_DAC_READ_SEARCH, "CAP_DAC_READ_SEARCH"), (CAP_NET_ADMIN, "CAP_NET_ADMIN"), (CAP_NET_RAW, "CAP_NET_RAW"),
        (CAP_SYS_PTRACE, "CAP_SYS_PTRACE"), (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"), (CAP_PERFMON, "CAP_PERFMON"), (CAP_BPF, "CAP_BPF"),
    ];

    public ulong Effective { get; }

    public Capabilities(ulong effective) => Effective = effective;

    public static Capabilities Current => new(ReadEffective());

    public bool Has(int cap) => (Effective & (1UL << cap)) != 0;

    public IEnumerable<string> Names() => Known.Where(k => Has(k.Bit)).Select(k => k.Name);

    /// <summary>Names of the capabilities BPF work needs that this process lacks (CAP_SYS_ADMIN covers them on old kernels).</summary>
    public string MissingForBpf(bool netAdmin = false)
    {
        var missing = new List<string>();
        if (!Has(CAP_BPF) && !Has(CAP_SYS_ADMIN)) missing.Add("CAP_BPF");
        if (!Has(CAP_PERFMON) && !Has(CAP_SYS_ADMIN)) missing.Add("CAP_PERFMON");
        if (netAdmin && !Has(CAP_NET_ADMIN)) missing.Add("CAP_NET_ADMIN");
        return string.Join(" + ", missing);
    }

    private static ulong ReadEffective()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("CapEff:", StringComparison.Ordinal))
                return Convert.ToUInt64(line[7..].Trim(), 16);
        return 0;
    }
}
