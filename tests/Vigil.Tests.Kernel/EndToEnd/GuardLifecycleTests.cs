using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Vigil.Tests.Kernel.Support;
using static Vigil.Tests.Kernel.Support.GuardBed;

namespace Vigil.Tests.Kernel.EndToEnd;

/// <summary>The guard's life in the kernel: pinned enforcement that survives `kill -9` and a restart with no
/// window, `vigil guard status/remove`, SIGHUP and `vigil policy apply` swapping policies atomically, and
/// refusals that leave what runs untouched. Pins go to a private bpffs of the test bed, never /sys/fs/bpf.</summary>
public partial class GuardLifecycleTests
{
    private const int AllowedUid = 47001, DeniedUid = 47002, SecondUid = 47003, Gid = 47101;
    private const string Python = "/usr/bin/python3";
    private const string ThreeCaps = "-all,+bpf,+perfmon,+net_admin";

    private static string Policy(string mode, string rule, params int[] uids) => $"""
        version: 1
        endpoint_sets:
          - name: metadata
            addresses: [{MetadataV4}, {MetadataV6}]
            ports: [80]
        rules:
          - name: {rule}
            endpoint_set: metadata
            mode: {mode}
            allow:
              users: [{string.Join(", ", uids)}]
        """;

    private static string Connect(GuardBed bed, int uid, string host = MetadataV4)
    {
        var r = bed.Python(new As(uid, Gid), Python, "tcp", host, "80");
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length >= 2, $"client printed {r.Stdout} / {r.Stderr}");
        return lines[1];
    }

    private static Proc.Result Vigil(params string[] args) => Proc.Run(Repo.Vigil, args, TimeSpan.FromSeconds(60));

    private static string[] AttachedHooks(GuardBed bed) =>
        Proc.Run("bpftool", "cgroup", "show", bed.Cgroup).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]).Order().ToArray();

    private static readonly string[] AllHooks = ["cgroup_inet4_connect", "cgroup_inet6_connect", "cgroup_inet_egress", "cgroup_udp4_sendmsg", "cgroup_udp6_sendmsg"];

    /// <summary>A connect loop as a denied uid, reporting its running totals every 50 ms.</summary>
    private const string ProbePy = """
        import errno, os, socket, sys, time
        host, port, stop, limit = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
        counts, start, last = {}, time.monotonic(), 0.0
        def report():
            print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "none", flush=True)
        while not os.path.exists(stop) and time.monotonic() - start < limit:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.settimeout(2)
            try:
                s.connect((host, port)); r = "OK"
            except OSError as e:
                r = errno.errorcode.get(e.errno, str(e.errno))
            finally:
                s.close()
            counts[r] = counts.get(r, 0) + 1
            if time.monotonic() - last > 0.05:
                report(); last = time.monotonic()
            time.sleep(0.002)
        report()
        print("done", flush=True)
        """;

    private static Dictionary<string, int> Totals(Proc.Running probe)
    {
        var line = probe.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault(l => l != "done") ?? "none";
        return line == "none" ? new() : line.Split(' ').Select(p => p.Split('=')).ToDictionary(p => p[0], p => int.Parse(p[1]));
    }

    private static int Count(Proc.Running probe, string result) => Totals(probe).GetValueOrDefault(result);

    private static void WaitForMore(Proc.Running probe, int than)
    {
        var sw = Stopwatch.StartNew();
        while (Count(probe, "EPERM") <= than + 100) // 100 attempts: a few hundred milliseconds
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), $"the probe loop stalled: {probe.Stdout}");
            Thread.Sleep(20);
        }
    }

    [Fact]
    [Trait("Matrix", "true")] // pinning, map reuse and BPF_LINK_UPDATE of cgroup links on every kernel of the matrix
    [Trait(MatrixHooks.Trait, "guard/pinned-links")] // a row of docs/kernels.md: pinned cgroup links adopted with BPF_LINK_UPDATE
    public void EnforcementSurvivesKill9AndARestartWithNoWindowWithOnlyThreeCapabilities()
    {
        using var bed = new GuardBed();
        var policy = bed.WritePolicy(Policy("enforce", "metadata-guard", AllowedUid));
        string[] launcher = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
            $"--inh-caps={ThreeCaps}", $"--ambient-caps={ThreeCaps}", $"--bounding-set={ThreeCaps}"];
        var vigil = PrivilegeAndHookTests.WorldReadableVigil();
        var first = bed.StartVigil(policy, launcher: launcher, vigil: vigil, pinned: true);
        Assert.Contains($"pinned in {bed.PinDir})", first.Stderr);

        var probePath = Path.Combine(bed.Dir, "probe.py");
        File.WriteAllText(probePath, ProbePy);
        File.SetUnixFileMode(probePath, (UnixFileMode)0x1A4);
        var stop = Path.Combine(bed.Dir, "stop-probe");
        var probe = bed.Start(new As(DeniedUid, Gid), Python, probePath, MetadataV4, "80", stop, "90");
        WaitForMore(probe, 0);

        // kill -9: the agent does nothing on its way out. The pinned links keep the programs attached.
        bed.KillVigil();
        var killedAt = DateTime.UtcNow;
        int atKill = Count(probe, "EPERM");
        WaitForMore(probe, atKill); // attempts while no agent runs at all
        Thread.Sleep(1200);         // and a new rate-limit window, so the kernel reports some of them
        Assert.Equal(AllHooks, AttachedHooks(bed));
        var restartedAt = DateTime.UtcNow;

        // A restart adopts the pins: same maps, each link's program replaced in place.
        var second = bed.StartVigil(policy, launcher: launcher, vigil: vigil, pinned: true);
        Assert.Contains("adopted 5 attached links", second.Stderr);
        Assert.Contains("generation 2", second.Stderr); // the restart swapped its policy in as a new generation
        int atRestart = Count(probe, "EPERM");
        WaitForMore(probe, atRestart);
        Assert.Equal("OK", Connect(bed, AllowedUid));

        // A clean stop in enforce mode also leaves the guard in the kernel.
        var (events, _) = bed.StopVigil();
        Assert.All(events, e => Assert.Equal(DeniedUid, e.GetProperty("uid").GetInt32()));
        // The pinned ring kept what the kernel reported while no agent ran: the restarted agent delivers it.
        Assert.Contains(events, e => e.GetProperty("time").GetDateTime() is var t && t > killedAt && t < restartedAt);
        int atStop = Count(probe, "EPERM");
        WaitForMore(probe, atStop);

        File.WriteAllText(stop, "");
        probe.WaitFor("done", TimeSpan.FromSeconds(20));
        var totals = Totals(probe);
        Assert.True(totals.Keys.All(k => k == "EPERM"), $"the denied probe loop saw {probe.Stdout.Split('\n')[^3]}");
        Assert.True(totals["EPERM"] > atStop, "attempts after the stop");

        var remove = Vigil("guard", "remove", "--pin-dir", bed.PinDir);
        Assert.True(remove.ExitCode == 0, remove.Stderr);
        Assert.Contains("detached vigil_guard_connect4, vigil_guard_connect6, vigil_guard_sendmsg4, vigil_guard_sendmsg6, vigil_guard_egress", remove.Stdout);
        Assert.Empty(AttachedHooks(bed));
        Assert.False(Directory.Exists(bed.PinDir), "the pin directory is gone");
        Assert.Equal("OK", Connect(bed, DeniedUid));
    }

    [Fact]
    public void StatusShowsThePinnedGuardAndRemoveRefusesWhileAnAgentRuns()
    {
        using var bed = new GuardBed();
        var policy = bed.WritePolicy(Policy("enforce", "metadata-guard", AllowedUid));
        bed.StartVigil(policy, pinned: true);
        Assert.Equal("EPERM", Connect(bed, DeniedUid));
        Assert.Equal("OK", Connect(bed, AllowedUid));

        var status = Vigil("guard", "status", "--pin-dir", bed.PinDir, "-o", "json");
        Assert.True(status.ExitCode == 0, status.Stderr);
        var s = JsonDocument.Parse(status.Stdout).RootElement;
        Assert.True(s.GetProperty("agent_running").GetBoolean());
        Assert.True(s.GetProperty("enforcing").GetBoolean());
        Assert.Equal(1, s.GetProperty("generation").GetInt32());
        var hooks = s.GetProperty("hooks").EnumerateArray().ToList();
        Assert.Equal(["connect4", "connect6", "sendmsg4", "sendmsg6", "cgroup_skb egress"], hooks.Select(h => h.GetProperty("hook").GetString()!).ToArray());
        Assert.All(hooks, h => Assert.Equal(bed.CgroupRelative, h.GetProperty("cgroup").GetString()));
        var p = s.GetProperty("policy");
        Assert.Equal(policy, p.GetProperty("source").GetString());
        Assert.StartsWith("vigil watch guard (pid ", p.GetProperty("applied_by").GetString());
        var rule = Assert.Single(p.GetProperty("rules").EnumerateArray().ToList());
        Assert.Equal("metadata-guard", rule.GetProperty("name").GetString());
        Assert.Equal("enforce", rule.GetProperty("mode").GetString());
        Assert.Equal(2, p.GetProperty("destination_entries").GetInt32());
        Assert.Equal(1, p.GetProperty("allow_entries").GetInt32());
        Assert.Equal(1, s.GetProperty("counters").GetProperty("denied").GetInt32());
        Assert.Equal(1, s.GetProperty("counters").GetProperty("allowed").GetInt32());

        var refused = Vigil("guard", "remove", "--pin-dir", bed.PinDir);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains($"a vigil is guarding with {bed.PinDir}: stop it first", refused.Stderr);
        Assert.Equal(AllHooks, AttachedHooks(bed));

        var (_, _) = bed.StopVigil();
        var table = Vigil("guard", "status", "--pin-dir", bed.PinDir);
        Assert.True(table.ExitCode == 0, table.Stderr);
        Assert.Contains("no agent running (the kernel enforces on its own)", table.Stdout);
        Assert.Contains("rule 0 metadata-guard: enforce metadata", table.Stdout);
        Assert.Equal("EPERM", Connect(bed, DeniedUid));
        Assert.Equal(0, Vigil("guard", "remove", "--pin-dir", bed.PinDir).ExitCode);
        Assert.Empty(AttachedHooks(bed));

        var none = Vigil("guard", "status", "--pin-dir", bed.PinDir);
        Assert.Equal(2, none.ExitCode);
        Assert.Contains($"no guard is pinned in {bed.PinDir}", none.Stderr);
    }

    [Fact]
    public void AnAuditGuardLeavesNothingPinnedWhenItStops()
    {
        using var bed = new GuardBed();
        bed.StartVigil(bed.WritePolicy(Policy("audit", "metadata-audit", AllowedUid)), pinned: true);
        Assert.True(File.Exists(Path.Combine(bed.PinDir, "vigil_guard_state")));
        Assert.Equal("OK", Connect(bed, DeniedUid));
        var (events, _) = bed.StopVigil();
        Assert.Equal("audit", Assert.Single(events).GetProperty("verdict").GetString());
        Assert.False(Directory.Exists(bed.PinDir), "an audit-only guard unpins on exit");
        Assert.Empty(AttachedHooks(bed));
    }

    [Fact]
    public void ASecondAgentAndAnAdoptionOnAnotherCgroupAreRefusedAndChangeNothing()
    {
        using var bed = new GuardBed();
        var policy = bed.WritePolicy(Policy("enforce", "metadata-guard", AllowedUid));
        bed.StartVigil(policy, pinned: true);
        var second = Vigil("watch", "guard", "--policy", policy, "--cgroup", bed.Cgroup, "--pin-dir", bed.PinDir, "--duration", "1s");
        Assert.Equal(1, second.ExitCode);
        Assert.Contains($"another vigil is guarding with {bed.PinDir}", second.Stderr);
        bed.StopVigil();

        var other = Vigil("watch", "guard", "--policy", policy, "--cgroup", bed.AllowedCgroup, "--pin-dir", bed.PinDir, "--duration", "1s");
        Assert.Equal(1, other.ExitCode);
        Assert.Contains($"the guard pinned in {bed.PinDir} is attached to another cgroup", other.Stderr);
        Assert.Equal(AllHooks, AttachedHooks(bed));
        Assert.Equal("EPERM", Connect(bed, DeniedUid));
        Assert.Empty(Proc.Run("bpftool", "cgroup", "show", bed.AllowedCgroup).Stdout.Trim());

        var notBpffs = Vigil("watch", "guard", "--policy", policy, "--cgroup", bed.AllowedCgroup, "--pin-dir", Path.Combine(bed.Dir, "plain"));
        Assert.Equal(2, notBpffs.ExitCode);
        Assert.Contains($"the pin directory {Path.Combine(bed.Dir, "plain")} is not on a bpf file system", notBpffs.Stderr);
        var both = Vigil("watch", "guard", "--policy", policy, "--no-pin", "--pin-dir", bed.PinDir);
        Assert.Equal(2, both.ExitCode);
        Assert.Contains("--no-pin and --pin-dir exclude each other", both.Stderr);
        Assert.Empty(Proc.Run("bpftool", "cgroup", "show", bed.AllowedCgroup).Stdout.Trim());
    }

    [Fact]
    public void RemoveDetachesOnlyTheGuardNotOtherProgramsOnTheSameCgroup()
    {
        using var bed = new GuardBed();
        bed.StartVigil(bed.WritePolicy(Policy("enforce", "metadata-guard", AllowedUid)), pinned: true);
        bed.StopVigil();
        // Another program on the same cgroup: the TCP sensor's cgroup_skb ingress hook.
        using var tcp = Proc.Start(Repo.Vigil, ["watch", "tcp", "--hook", "cgroup", "--cgroup", bed.Cgroup, "-o", "json"]);
        tcp.WaitFor(VigilRun.Ready, TimeSpan.FromSeconds(30));
        Assert.Contains("cgroup_inet_ingress", AttachedHooks(bed));

        var remove = Vigil("guard", "remove", "--pin-dir", bed.PinDir);
        Assert.True(remove.ExitCode == 0, remove.Stderr);
        Assert.Equal(["cgroup_inet_ingress"], AttachedHooks(bed));
        Assert.Equal("OK", Connect(bed, DeniedUid));
        Assert.Equal(0, tcp.Interrupt(TimeSpan.FromSeconds(20)));
        Assert.Empty(AttachedHooks(bed));
    }

    /// <summary>Connects as an allowed uid, waits for a file, then sends a request on the same connection.</summary>
    private const string HoldPy = """
        import os, socket, sys, time
        host, go = sys.argv[1], sys.argv[2]
        s = socket.create_connection((host, 80), timeout=5)
        print("connected", flush=True)
        deadline = time.monotonic() + 60
        while not os.path.exists(go) and time.monotonic() < deadline:
            time.sleep(0.02)
        s.sendall(b"GET / HTTP/1.0\r\nHost: metadata\r\n\r\n")
        print(s.recv(100).split(b"\r\n")[0].decode(), flush=True)
        """;

    [Fact]
    public void SighupSwapsInAValidPolicyKeepingConnectionsAndRefusesAnInvalidOne()
    {
        using var bed = new GuardBed();
        var policy = bed.WritePolicy(Policy("enforce", "first", AllowedUid));
        var vigil = bed.StartVigil(policy, pinned: true);
        Assert.Equal("EPERM", Connect(bed, SecondUid));

        var holdPath = Path.Combine(bed.Dir, "hold.py");
        File.WriteAllText(holdPath, HoldPy);
        File.SetUnixFileMode(holdPath, (UnixFileMode)0x1A4);
        var go = Path.Combine(bed.Dir, "go");
        var hold = bed.Start(new As(AllowedUid, Gid), Python, holdPath, MetadataV4, go);
        hold.WaitFor("connected", TimeSpan.FromSeconds(20));

        File.WriteAllText(policy, Policy("enforce", "second", AllowedUid, SecondUid));
        vigil.Signal(1);
        vigil.WaitFor("vigil: reloaded", TimeSpan.FromSeconds(20));
        Assert.Contains("generation 2: second (enforce: metadata)", vigil.Stderr);
        Assert.Equal("OK", Connect(bed, SecondUid));
        Assert.Equal("EPERM", Connect(bed, DeniedUid));

        File.WriteAllText(go, "");
        hold.WaitFor("HTTP/1.0 200", TimeSpan.FromSeconds(20)); // the allowed connection made before the reload still works

        File.WriteAllText(policy, Policy("enforce", "third", AllowedUid).Replace("mode: enforce", "mode: block"));
        vigil.Signal(1);
        vigil.WaitFor("vigil: reload refused", TimeSpan.FromSeconds(20));
        Assert.Matches(Regex.Escape(policy) + @":\d+:\d+: .*unknown mode 'block'", vigil.Stderr);
        Assert.Contains("generation 2 stays in force", vigil.Stderr);
        Assert.Equal("OK", Connect(bed, SecondUid));
        Assert.Equal("EPERM", Connect(bed, DeniedUid));

        var (events, _) = bed.StopVigil();
        Assert.Equal([1, 2, 2], events.Select(e => e.GetProperty("policy_generation").GetInt32()).ToArray());
        Assert.Equal(["first", "second", "second"], events.Select(e => e.GetProperty("rule").GetString()!).ToArray());
        Assert.Equal([SecondUid, DeniedUid, DeniedUid], events.Select(e => e.GetProperty("uid").GetInt32()).ToArray());
    }

    [Fact]
    public void PolicyApplySwapsIntoThePinnedGuardAndAnInvalidOneChangesNothing()
    {
        using var bed = new GuardBed();
        var vigil = bed.StartVigil(bed.WritePolicy(Policy("enforce", "first", AllowedUid)), pinned: true);

        var nothing = Vigil("policy", "apply", bed.WritePolicy(Policy("enforce", "x", AllowedUid)), "--pin-dir", Path.Combine(bed.Dir, "nowhere"));
        Assert.Equal(2, nothing.ExitCode);
        Assert.Contains("no guard is pinned in", nothing.Stderr);

        var next = bed.WritePolicy(Policy("enforce", "applied", AllowedUid, SecondUid));
        var apply = Vigil("policy", "apply", next, "--pin-dir", bed.PinDir);
        Assert.True(apply.ExitCode == 0, apply.Stderr);
        Assert.Contains("generation 2, 1 rule (applied: enforce)", apply.Stdout);
        Assert.Equal("OK", Connect(bed, SecondUid));
        Assert.Equal("EPERM", Connect(bed, DeniedUid));

        var bad = bed.WritePolicy(Policy("enforce", "bad", AllowedUid).Replace(MetadataV4 + ",", MetadataV4 + "/33,"));
        var refused = Vigil("policy", "apply", bad, "--pin-dir", bed.PinDir);
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("invalid prefix length '/33'", refused.Stderr);
        Assert.Empty(refused.Stdout);
        Assert.Equal("OK", Connect(bed, SecondUid));
        var status = JsonDocument.Parse(Vigil("guard", "status", "--pin-dir", bed.PinDir, "-o", "json").Stdout).RootElement;
        Assert.Equal(2, status.GetProperty("generation").GetInt32());
        Assert.Equal(next, status.GetProperty("policy").GetProperty("source").GetString());
        Assert.StartsWith("vigil policy apply (pid ", status.GetProperty("policy").GetProperty("applied_by").GetString());

        // The agent names the events of a generation it did not compile from the text kept with it.
        var (events, _) = bed.StopVigil();
        var e = Assert.Single(events);
        Assert.Equal("applied", e.GetProperty("rule").GetString());
        Assert.Equal(2, e.GetProperty("policy_generation").GetInt32());
        Assert.NotNull(vigil);
    }
}
