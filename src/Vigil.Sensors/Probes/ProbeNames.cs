namespace Vigil.Sensors.Probes;

/// <summary>Names in bpf/probes.bpf.c (a string contract, like TcpNames).</summary>
public static class ProbeNames
{
    public const string Object = "probes.bpf.o";

    public const string Kprobe = "vigil_probe_kprobe";
    /// <summary>fentry on the x86-64 syscall wrapper <c>__x64_sys_getpid</c>.</summary>
    public const string Fentry = "vigil_probe_fentry";
    /// <summary>fentry on <c>__do_sys_getpid</c>, the syscall body (in BTF where the wrapper is not).</summary>
    public const string FentryDoSys = "vigil_probe_fentry_do";
    public const string TpBtf = "vigil_probe_tp_btf";
    public const string RawTp = "vigil_probe_raw_tp";
    public const string Tc = "vigil_probe_tc";
    public const string CgroupSkb = "vigil_probe_cgroup_skb";
    public const string Connect4 = "vigil_probe_connect4";
    public const string UprobeMulti = "vigil_probe_uprobe_multi";
    public const string Lsm = "vigil_probe_lsm";

    public static readonly string[] Programs =
        [Kprobe, Fentry, FentryDoSys, TpBtf, RawTp, Tc, CgroupSkb, Connect4, UprobeMulti, Lsm];

    /// <summary>Global: the doctor's process id (.rodata, set before load).</summary>
    public const string TgidGlobal = "vigil_probe_tgid";
    /// <summary>Global: runs counted for the doctor's process (.bss).</summary>
    public const string HitsGlobal = "vigil_probe_hits";

    /// <summary>Kernel functions the kprobe/fentry probes try, in order: both run the getpid
    /// syscall, which nothing depends on and which the doctor triggers itself.</summary>
    public const string SyscallWrapper = "__x64_sys_getpid", SyscallBody = "__do_sys_getpid";

    /// <summary>Tracepoint of the tp_btf and raw_tp probes (every syscall passes it).</summary>
    public const string Tracepoint = "sys_enter";
    public const string LsmHook = "file_open";
    /// <summary>The libc function the uprobe_multi probe attaches to, in the doctor's own process only.</summary>
    public const string LibcFunction = "getpid";
}
