using System.Diagnostics;
using System.Text.Json;
using Vigil.Interop;
using Vigil.Sensors.Probes;

namespace Vigil.Tests.Kernel.Doctor;

/// <summary>What the system looked like before and after one run of the whole probe suite.</summary>
public sealed class DoctorRun
{
    public ProbeReport Report { get; }
    public SystemSnapshot Before { get; }
    public SystemSnapshot After { get; }

    public DoctorRun()
    {
        Before = SystemSnapshot.Take();
        Report = FeatureProber.Run();
        After = SystemSnapshot.Take();
    }
}

/// <summary>Things a probe could leave behind, as seen from outside the prober.</summary>
public sealed record SystemSnapshot(string[] DoctorCgroups, string[] HostInterfaces, string[] NamedNetns, string[] DoctorThreads)
{
    public static SystemSnapshot Take()
    {
        var mount = Cgroups.FindV2Mount();
        var cgroups = mount is null ? [] : Directory.GetDirectories(mount, "vigil-doctor-*").Order().ToArray();
        var ifaces = NetworkNamespace.Interfaces().Select(i => i.Name).Order().ToArray();
        var netns = Directory.Exists("/run/netns") ? Directory.GetFiles("/run/netns").Order().ToArray() : [];
        return new SystemSnapshot(cgroups, ifaces, netns, DoctorThreadNames());
    }

    /// <summary>Probe threads are named ".doctor ..." (the private-namespace thread ".doctor netns").
    /// A joined thread may take a moment to leave /proc/self/task, so wait a little.</summary>
    public static string[] DoctorThreadNames()
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var names = ListDoctorThreads();
            if (names.Length == 0 || clock.Elapsed > TimeSpan.FromSeconds(2)) return names;
            Thread.Sleep(20);
        }
    }

    private static string[] ListDoctorThreads()
    {
        var names = new List<string>();
        foreach (var task in Directory.GetDirectories("/proc/self/task"))
        {
            try
            {
                var comm = File.ReadAllText(Path.Combine(task, "comm")).Trim();
                if (comm.StartsWith(".doctor", StringComparison.Ordinal)) names.Add(comm);
            }
            catch (IOException) { } // the thread exited meanwhile
        }
        return names.ToArray();
    }
}

public sealed class DoctorTests(DoctorRun run) : IClassFixture<DoctorRun>
{
    private ProbeReport Report => run.Report;

    /// <summary>Hook types this kernel (Linux 6.18, lockdown, no kprobes) truly has.</summary>
    public static TheoryData<ProbeHook> FeaturesThisKernelHas =>
        [ProbeHook.TpBtf, ProbeHook.RawTp, ProbeHook.Tc, ProbeHook.Tcx, ProbeHook.CgroupSkb, ProbeHook.CgroupSockAddr, ProbeHook.UprobeMulti];

    [Theory]
    [MemberData(nameof(FeaturesThisKernelHas))]
    public void Hooks_this_kernel_has_are_loaded_and_attached(ProbeHook hook)
    {
        var result = Report[hook];
        Assert.True(result.Status == ProbeStatus.Works,
            $"{ProbeReport.NameOf(hook)}: {ProbeReport.NameOf(result.Status)} — {result.Reason}");
        Assert.Null(result.Reason);
        Assert.Contains("attached", result.Evidence);
    }

    [Theory]
    [InlineData(ProbeHook.TpBtf)]
    [InlineData(ProbeHook.RawTp)]
    [InlineData(ProbeHook.UprobeMulti)]
    public void Triggered_probes_ran_for_the_doctors_own_calls(ProbeHook hook)
    {
        // Proof beyond "attach returned a link": the program ran, and only for this process.
        Assert.True(Report[hook].Fired, $"{ProbeReport.NameOf(hook)}: {Report[hook].Evidence}");
    }

    [Fact]
    public void Uprobe_multi_targets_getpid_in_the_mapped_libc()
    {
        var result = Report[ProbeHook.UprobeMulti];
        var libc = Vigil.Interop.Bpf.ElfSymbols.LoadedLibrary("libc.so");
        Assert.NotNull(libc);
        Assert.StartsWith($"{libc}:getpid (file offset 0x", result.Target);
        Assert.Contains("ran 3×", result.Evidence); // exactly the three getpid() calls, nothing else
    }

    [Theory]
    [InlineData(ProbeHook.Kprobe)]
    [InlineData(ProbeHook.Fentry)]
    [InlineData(ProbeHook.Lsm)]
    public void Hooks_that_fail_say_why_with_errno(ProbeHook hook)
    {
        var result = Report[hook];
        if (result.Works)
        {
            Assert.True(result.Fired, $"{ProbeReport.NameOf(hook)} attached but never ran: {result.Evidence}");
            return;
        }
        Assert.Equal(ProbeStatus.Unavailable, result.Status);
        Assert.NotNull(result.Errno);
        Assert.NotNull(result.ErrnoName);
        Assert.False(string.IsNullOrWhiteSpace(result.Reason));
        Assert.Contains($"{result.ErrnoName} ({result.Errno})", result.Reason);
        Assert.Contains(result.FailedStage!, new[] { "open", "load", "attach", "trigger" });
    }

    [Fact]
    public void Kprobe_failure_on_a_kernel_without_kprobes_names_the_cause()
    {
        // Only meaningful where the kprobe PMU is absent (CONFIG_KPROBES off, as on this machine).
        if (Directory.Exists("/sys/bus/event_source/devices/kprobe")) return;
        var result = Report[ProbeHook.Kprobe];
        Assert.Equal(ProbeStatus.Unavailable, result.Status);
        Assert.Contains("CONFIG_KPROBES", result.Reason);
    }

    [Fact]
    public void Auto_hook_is_the_first_of_the_chain_that_works()
    {
        bool Works(params ProbeHook[] hooks) => hooks.Any(h => Report[h].Works);
        string? expected =
            Works(ProbeHook.Kprobe) ? "kprobe" :
            Works(ProbeHook.Fentry) ? "fentry" :
            Works(ProbeHook.Tc, ProbeHook.Tcx) ? "tc" :
            Works(ProbeHook.CgroupSkb) ? "cgroup" : null;
        Assert.NotNull(expected); // this kernel has TC and cgroup_skb
        Assert.Equal(expected, Report.TcpAutoHook);
        Assert.Contains($"{expected} works", Report.TcpAutoReason);
    }

    [Fact]
    public void System_facts_match_the_machine()
    {
        var s = Report.System;
        Assert.Equal(File.ReadAllText("/proc/sys/kernel/osrelease").Trim(), s.KernelRelease);
        Assert.Equal(File.Exists("/sys/kernel/btf/vmlinux"), s.BtfPresent);
        Assert.Equal(Cgroups.FindV2Mount(), s.CgroupV2Mount);
        Assert.Equal("1.1", s.LibbpfVersion?[..3]);
        Assert.Contains("libbpf.so", s.LibbpfPath);
        Assert.Equal(Capabilities.Current.Effective, s.EffectiveCapabilities);
        Assert.Contains("CAP_BPF", s.CapabilitiesHeld); // the kernel tests run as root
        Assert.Empty(s.CapabilitiesMissing);
        Assert.True(s.Lockdown is not null || !string.IsNullOrEmpty(s.LockdownNote), "an unreadable lockdown mode must say why");
    }

    [Fact]
    public void Json_output_is_one_object_with_the_documented_fields()
    {
        var text = new StringWriter();
        ProbeReportJson.Write(Report, text);
        var json = text.ToString();
        Assert.Single(json.Split('\n', StringSplitOptions.RemoveEmptyEntries)); // one line

        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        Assert.Equal(ProbeReportJson.SchemaVersion, root.GetProperty("schema").GetInt32());
        Assert.Equal(Report.System.KernelRelease, root.GetProperty("kernel").GetProperty("release").GetString());
        Assert.Equal(JsonValueKind.True, root.GetProperty("btf").ValueKind);
        Assert.Equal(Report.System.CgroupV2Mount, root.GetProperty("cgroup_v2_mount").GetString());
        Assert.Equal(Report.System.TracefsMount is not null, root.GetProperty("tracefs").GetBoolean());
        Assert.Equal(Vigil.Interop.Bpf.BpfFs.FindMount(), root.GetProperty("bpffs_mount").GetString());
        Assert.True(root.GetProperty("lockdown").TryGetProperty("mode", out _));
        Assert.True(root.GetProperty("lockdown").TryGetProperty("note", out _));
        Assert.Equal(Report.System.LibbpfVersion, root.GetProperty("libbpf").GetProperty("version").GetString());
        var caps = root.GetProperty("capabilities");
        Assert.Equal($"0x{Report.System.EffectiveCapabilities:x16}", caps.GetProperty("effective").GetString());
        Assert.Contains("CAP_BPF", caps.GetProperty("held").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(JsonValueKind.Array, caps.GetProperty("missing").ValueKind);

        var hooks = root.GetProperty("hooks").EnumerateArray().ToList();
        Assert.Equal(
            ["kprobe", "fentry", "tp_btf", "raw_tp", "tc", "tcx", "cgroup_skb", "cgroup_sock_addr", "uprobe_multi", "lsm"],
            hooks.Select(h => h.GetProperty("hook").GetString()!).ToArray());
        foreach (var h in hooks)
        {
            var name = h.GetProperty("hook").GetString()!;
            var result = Report.Hooks.Single(r => ProbeReport.NameOf(r.Hook) == name);
            Assert.Equal(ProbeReport.NameOf(result.Status), h.GetProperty("status").GetString());
            Assert.Equal(result.Works, h.GetProperty("works").GetBoolean());
            foreach (var field in new[] { "target", "failed_stage", "errno", "errno_name", "reason", "fired", "evidence", "libbpf_log", "ms" })
                Assert.True(h.TryGetProperty(field, out _), $"hook {name} lacks '{field}'");
            if (!result.Works && result.Errno is { } errno)
                Assert.Equal(errno, h.GetProperty("errno").GetInt32());
        }
        Assert.Equal("works", hooks.Single(h => h.GetProperty("hook").GetString() == "tcx").GetProperty("status").GetString());

        var auto = root.GetProperty("tcp_auto_hook");
        Assert.Equal(Report.TcpAutoHook, auto.GetProperty("hook").GetString());
        Assert.False(string.IsNullOrEmpty(auto.GetProperty("reason").GetString()));
        Assert.Empty(root.GetProperty("leftovers").EnumerateArray());
    }

    [Fact]
    public void Nothing_is_left_behind()
    {
        Assert.Empty(Report.Leftovers);
        Assert.Empty(run.After.DoctorCgroups);
        Assert.Equal(run.Before.NamedNetns, run.After.NamedNetns);
        Assert.DoesNotContain(run.After.HostInterfaces, i => i.StartsWith("vgd", StringComparison.Ordinal));
        Assert.Equal(run.Before.HostInterfaces, run.After.HostInterfaces);
        // The private-namespace threads have exited, so their namespaces (and veths) are gone.
        Assert.Empty(run.After.DoctorThreads);
        Assert.Empty(LoadedProbePrograms());
    }

    [Fact]
    public void A_probe_that_overruns_its_time_limit_still_cleans_up()
    {
        // 1 ms is shorter than any load: most probes are reported as timed out, then waited for.
        var report = FeatureProber.Run(new ProbeOptions { TimeoutPerProbe = TimeSpan.FromMilliseconds(1) });
        Assert.Contains(report.Hooks, h => h.FailedStage == "timeout");
        Assert.All(report.Hooks.Where(h => h.FailedStage == "timeout"), h => Assert.Contains("did not finish within", h.Reason));
        Assert.Empty(report.Leftovers);
        var after = SystemSnapshot.Take();
        Assert.Empty(after.DoctorCgroups);
        Assert.Empty(after.DoctorThreads);
        Assert.DoesNotContain(after.HostInterfaces, i => i.StartsWith("vgd", StringComparison.Ordinal));
        Assert.Empty(LoadedProbePrograms());
    }

    /// <summary>BPF programs of the probe object still loaded anywhere (the kernel frees them
    /// shortly after the last fd closes, so wait a little).</summary>
    private static List<string> LoadedProbePrograms()
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var names = BpfToolProgramNames().Where(n => n.StartsWith("vigil_probe", StringComparison.Ordinal)).ToList();
            if (names.Count == 0 || deadline.Elapsed > TimeSpan.FromSeconds(5)) return names;
            Thread.Sleep(100);
        }
    }

    private static IEnumerable<string> BpfToolProgramNames()
    {
        var psi = new ProcessStartInfo("bpftool", "-j prog show") { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(10_000), "bpftool did not finish");
        Assert.Equal(0, process.ExitCode);
        using var doc = JsonDocument.Parse(stdout);
        return doc.RootElement.EnumerateArray()
            .Select(p => p.TryGetProperty("name", out var n) ? n.GetString() ?? "" : "")
            .ToList();
    }
}
