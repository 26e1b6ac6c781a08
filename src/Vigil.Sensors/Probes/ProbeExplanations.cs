using Vigil.Interop;

namespace Vigil.Sensors.Probes;

/// <summary>Turns a failed probe step into a sentence that says why, from what was observed
/// (errno, the step, capabilities held, what exists under /sys) — never from kernel versions.</summary>
internal static class ProbeExplanations
{
    public static string? Explain(ProbeHook hook, string stage, BpfException e, string target, SystemFacts facts)
    {
        int errno = e.Errno;
        if (e is BpfVerifierException verifier)
            return "the verifier rejected it: " + verifier.VerifierLog.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault(l => !l.StartsWith("--", StringComparison.Ordinal));

        if (errno is Errno.EPERM or Errno.EACCES)
        {
            var needed = NeededCapabilities(hook);
            var caps = new Capabilities(facts.EffectiveCapabilities);
            var missing = needed.Where(c => !Holds(caps, c)).Select(c => c.Name).ToList();
            if (missing.Count > 0) return $"needs {string.Join(" + ", missing)}";
            return $"refused although {string.Join(", ", needed.Select(c => c.Name))} are held, so a kernel policy forbids it " + PolicyHint(facts);
        }

        switch (hook, stage, errno)
        {
            case (ProbeHook.Fentry or ProbeHook.Lsm or ProbeHook.TpBtf, "load", Errno.ESRCH or Errno.ENOENT):
                return $"{target} is not in the kernel's BTF";
            case (ProbeHook.Kprobe, "attach", _) when !Directory.Exists("/sys/bus/event_source/devices/kprobe"):
                return "the kernel has no kprobe PMU (/sys/bus/event_source/devices/kprobe is missing: built without CONFIG_KPROBES)"
                    + (facts.TracefsMount is null ? "; the legacy kprobe_events interface needs tracefs, which is not mounted either" : "");
            case (ProbeHook.Kprobe, "attach", Errno.ENOENT or Errno.EINVAL):
                return $"{target} cannot be probed (not in /proc/kallsyms, inlined, or blacklisted for kprobes)";
            case (ProbeHook.Lsm, "attach" or "load", Errno.EINVAL or Errno.EOPNOTSUPP):
                return "BPF LSM is not active ('bpf' is missing from the lsm= boot parameter or CONFIG_LSM)";
            case (ProbeHook.Tcx, "attach", Errno.EINVAL or Errno.EOPNOTSUPP or Errno.ENOTSUPP):
                return "the kernel has no TCX links (Linux 6.6+); netlink clsact filters still work where the tc probe does";
            case (ProbeHook.UprobeMulti, "attach", Errno.EINVAL or Errno.EOPNOTSUPP or Errno.ENOTSUPP or Errno.ENOSYS):
                return "the kernel has no uprobe_multi links (Linux 6.6+ with CONFIG_UPROBES)";
            case (_, "attach", Errno.EOPNOTSUPP or Errno.ENOTSUPP or Errno.ENOSYS):
                return "the kernel does not support this attach type";
            case (_, "load", Errno.EINVAL):
                return "the kernel does not accept this program type or attach type";
        }
        return e.Hint is { } hint && !hint.StartsWith("needs ", StringComparison.Ordinal) ? hint : null;
    }

    private static string PolicyHint(SystemFacts facts) => facts.Lockdown switch
    {
        null => "(e.g. kernel lockdown, whose mode could not be read here)",
        "none" => "(lockdown is off: another LSM or sysctl refuses it)",
        var mode => $"(e.g. kernel lockdown, which is in {mode} mode)",
    };

    private static (int Bit, string Name)[] NeededCapabilities(ProbeHook hook) => hook switch
    {
        ProbeHook.Tc or ProbeHook.Tcx or ProbeHook.CgroupSkb or ProbeHook.CgroupSockAddr =>
            [(Capabilities.CAP_BPF, "CAP_BPF"), (Capabilities.CAP_NET_ADMIN, "CAP_NET_ADMIN")],
        _ => [(Capabilities.CAP_BPF, "CAP_BPF"), (Capabilities.CAP_PERFMON, "CAP_PERFMON")],
    };

    /// <summary>CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON.</summary>
    private static bool Holds(Capabilities caps, (int Bit, string Name) cap) =>
        caps.Has(cap.Bit) || (cap.Bit is Capabilities.CAP_BPF or Capabilities.CAP_PERFMON && caps.Has(Capabilities.CAP_SYS_ADMIN));
}
