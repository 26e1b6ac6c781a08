namespace Vigil.Sensors.Probes;

/// <summary>Hook types <c>vigil doctor</c> probes, in report order.</summary>
public enum ProbeHook { Kprobe, Fentry, TpBtf, RawTp, Tc, Tcx, CgroupSkb, CgroupSockAddr, UprobeMulti, Lsm }

public enum ProbeStatus
{
    /// <summary>Loaded and attached (then detached).</summary>
    Works,
    /// <summary>Loading or attaching failed; <see cref="HookProbeResult.Reason"/> says why.</summary>
    Unavailable,
    /// <summary>Loaded and run with BPF_PROG_TEST_RUN, but not attached (no safe place to attach it).</summary>
    LoadedOnly,
    /// <summary>Not tried: a precondition (libbpf, a cgroup v2 mount, a private namespace) was missing.</summary>
    NotProbed,
}

/// <summary>What probing one hook type found.</summary>
public sealed record HookProbeResult
{
    public required ProbeHook Hook { get; init; }
    public required ProbeStatus Status { get; init; }
    /// <summary>Where the probe attached or tried to (a function, tracepoint, "veth in a private netns", a cgroup).</summary>
    public string Target { get; init; } = "";
    /// <summary>The step that failed: setup, open, load, attach, trigger.</summary>
    public string? FailedStage { get; init; }
    public int? Errno { get; init; }
    public string? ErrnoName { get; init; }
    /// <summary>Why it is not available (or why only loaded), errno included.</summary>
    public string? Reason { get; init; }
    /// <summary>True/false when the probe triggered its program and counted its runs; null when not triggered.</summary>
    public bool? Fired { get; init; }
    /// <summary>What shows it works (runs counted, BPF_PROG_TEST_RUN result, attach kind).</summary>
    public string Evidence { get; init; } = "";
    /// <summary>The last libbpf warnings printed during the probe (diagnostics).</summary>
    public IReadOnlyList<string> LibbpfLog { get; init; } = [];
    public double Milliseconds { get; init; }

    public bool Works => Status == ProbeStatus.Works;
}

/// <summary>Facts about this system that are read, not probed.</summary>
public sealed record SystemFacts
{
    public required string KernelRelease { get; init; }
    public required string KernelVersion { get; init; }
    public required string Architecture { get; init; }
    public required bool BtfPresent { get; init; }
    public required string? CgroupV2Mount { get; init; }
    public required string? TracefsMount { get; init; }
    /// <summary>Where a bpf file system is mounted (the guard pins there), or null.</summary>
    public string? BpffsMount { get; init; }
    /// <summary>Active lockdown mode (none, integrity, confidentiality); null when it cannot be read.</summary>
    public required string? Lockdown { get; init; }
    public required string? LockdownNote { get; init; }
    /// <summary>"1.1", or null when libbpf could not be loaded.</summary>
    public required string? LibbpfVersion { get; init; }
    public required string? LibbpfPath { get; init; }
    public required string? LibbpfProblem { get; init; }
    public required ulong EffectiveCapabilities { get; init; }
    public required IReadOnlyList<string> CapabilitiesHeld { get; init; }
    /// <summary>Capabilities <c>vigil watch</c> needs that this process lacks.</summary>
    public required IReadOnlyList<string> CapabilitiesMissing { get; init; }
}

/// <summary>The whole doctor report.</summary>
public sealed record ProbeReport
{
    public required SystemFacts System { get; init; }
    public required IReadOnlyList<HookProbeResult> Hooks { get; init; }
    /// <summary>The hook <c>vigil watch tcp --hook auto</c> would choose (kprobe, fentry, tc, cgroup), or null.</summary>
    public required string? TcpAutoHook { get; init; }
    public required string TcpAutoReason { get; init; }
    /// <summary>Anything that could not be cleaned up (should always be empty).</summary>
    public IReadOnlyList<string> Leftovers { get; init; } = [];

    public HookProbeResult this[ProbeHook hook] => Hooks.First(h => h.Hook == hook);

    /// <summary>The report's name for a hook type (JSON values, table rows).</summary>
    public static string NameOf(ProbeHook hook) => hook switch
    {
        ProbeHook.Kprobe => "kprobe",
        ProbeHook.Fentry => "fentry",
        ProbeHook.TpBtf => "tp_btf",
        ProbeHook.RawTp => "raw_tp",
        ProbeHook.Tc => "tc",
        ProbeHook.Tcx => "tcx",
        ProbeHook.CgroupSkb => "cgroup_skb",
        ProbeHook.CgroupSockAddr => "cgroup_sock_addr",
        ProbeHook.UprobeMulti => "uprobe_multi",
        ProbeHook.Lsm => "lsm",
        _ => hook.ToString(),
    };

    public static string NameOf(ProbeStatus status) => status switch
    {
        ProbeStatus.Works => "works",
        ProbeStatus.Unavailable => "unavailable",
        ProbeStatus.LoadedOnly => "loaded-only",
        ProbeStatus.NotProbed => "not-probed",
        _ => status.ToString(),
    };
}
