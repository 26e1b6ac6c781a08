using Vigil.Sensors.Probes;

namespace Vigil.Tests.Kernel.Support;

/// <summary>What this kernel offers the incoming-TCP sensor, found by probing (never from a version
/// table), and which hooks the run demands. eng/kernel-tests.sh sets VIGIL_REQUIRED_HOOKS (e.g.
/// "kprobe,fentry,tc,cgroup") inside the kernel-matrix VMs: there a missing hook fails the test
/// instead of skipping it.</summary>
public static class KernelHooks
{
    public const string RequiredVariable = "VIGIL_REQUIRED_HOOKS";

    private static readonly Lazy<ProbeReport> s_report = new(() => FeatureProber.Run(new ProbeOptions
    {
        Hooks = [ProbeHook.Kprobe, ProbeHook.Fentry, ProbeHook.Tc, ProbeHook.Tcx, ProbeHook.CgroupSkb],
    }));

    /// <summary>The doctor's probes of the chain's hook types on this kernel (run once per test process).</summary>
    public static ProbeReport Probed => s_report.Value;

    public static IReadOnlySet<string> Required { get; } =
        (Environment.GetEnvironmentVariable(RequiredVariable) ?? "")
        .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        .ToHashSet();

    private static ProbeHook[] ProbesOf(string hook) => hook switch
    {
        "kprobe" => [ProbeHook.Kprobe],
        "fentry" => [ProbeHook.Fentry],
        "tc" => [ProbeHook.Tcx, ProbeHook.Tc],
        "cgroup" => [ProbeHook.CgroupSkb],
        _ => throw new ArgumentOutOfRangeException(nameof(hook)),
    };

    /// <summary>Skips only a tracing hook (kprobe, fentry) the kernel truly lacks, and only when the run
    /// does not require it. TC and cgroup_skb exist on every kernel Vigil supports: never skipped.</summary>
    public static void SkipUnlessOffered(string hook)
    {
        if (Required.Contains(hook) || hook is "tc" or "cgroup") return;
        var probes = ProbesOf(hook).Select(h => Probed[h]).ToList();
        if (probes.Any(p => p.Works)) return;
        Assert.Skip($"this kernel ({Probed.System.KernelRelease}) has no {hook}: " +
                    string.Join("; ", probes.Select(p => p.Reason)));
    }
}
