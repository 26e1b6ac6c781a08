using System.Text.Json;
using Vigil.Tests.Kernel.Support;
using static Vigil.Tests.Kernel.Support.GuardBed;

namespace Vigil.Tests.Kernel.EndToEnd;

/// <summary>`vigil watch guard` enforcing policies against real clients (curl, python, raw sockets) run as
/// test uids in a test cgroup and a test namespace holding a fake metadata service.</summary>
public class GuardEndToEndTests
{
    // Numeric ids with no account behind them: setpriv needs none, and nothing in /etc changes.
    private const int AllowedUid = 47001, DeniedUid = 47002, AllowedGid = 47100, OtherGid = 47101;
    private static readonly string Python = "/usr/bin/python3";


    private static string Result(Proc.Result r)
    {
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length >= 2, $"client printed {r.Stdout} / {r.Stderr}");
        return lines[1];
    }

    private static int Pid(string clientOutput) => int.Parse(clientOutput.Split('\n')[0]["pid=".Length..]);

    /// <summary>Every guard hook, on the kernel it runs on, with one `vigil watch guard` (this is the guard's
    /// kernel-matrix test: keep it to one start, user space is ~15× slower in the VMs). Each kind of allowed
    /// principal connects over IPv4 and IPv6 (the supplementary-gid and executable checks are the CO-RE
    /// reads of cred->group_info and mm->exe_file); a denied uid gets EPERM from connect4/6 (IPv4-mapped
    /// IPv6 judged as IPv4) and sendmsg4/6; a raw socket with CAP_NET_RAW is stopped by the egress backstop;
    /// the deny event of one refused connect carries the caller's pid, uid, gid, comm, executable and cgroup.</summary>
    [Fact]
    [Trait("Matrix", "true")]
    [Trait(MatrixHooks.Trait, "guard/connect4 cgroup_sock_addr")]
    [Trait(MatrixHooks.Trait, "guard/connect6 cgroup_sock_addr")]
    [Trait(MatrixHooks.Trait, "guard/sendmsg4 cgroup_sock_addr")]
    [Trait(MatrixHooks.Trait, "guard/sendmsg6 cgroup_sock_addr")]
    [Trait(MatrixHooks.Trait, "guard/egress cgroup_skb")]
    public void EachHookAdmitsEachKindOfAllowedPrincipalAndRefusesEveryoneElse()
    {
        using var bed = new GuardBed();
        // A copy of python is another executable (another inode) than /usr/bin/python3.
        var pythonCopy = Path.Combine(bed.Dir, "allowed-python");
        File.Copy(Proc.Run("readlink", "-f", Python).Stdout.Trim(), pythonCopy);
        File.SetUnixFileMode(pythonCopy, (UnixFileMode)0x1ED);
        bed.StartVigil(bed.WritePolicy(MetadataPolicy("enforce", $"""
                  users: [{AllowedUid}]
                  groups: [{AllowedGid}]
                  executables: [{pythonCopy}]
                  cgroups: [{bed.CgroupRelative}/allowed]
            """)));

        // Clients first (one process per principal, both families each), then the checks per hook.
        var denied = new As(DeniedUid, OtherGid);
        string both = $"{MetadataV4},{MetadataV6}";
        var admitted = new (As Who, string Python, string What)[]
            {
                (new As(AllowedUid, OtherGid), Python, "uid"),
                (new As(DeniedUid, AllowedGid), Python, "primary gid"),
                (new As(DeniedUid, OtherGid, [OtherGid + 5, AllowedGid]), Python, "supplementary gid"),
                (denied, pythonCopy, "executable"),
                (denied with { InAllowedCgroup = true }, Python, "cgroup"),
            }
            .Select(p => (p.What, Results: Result(bed.Python(p.Who, p.Python, "tcp", both, "80")).Split(' ')))
            .ToList();
        // Lingers so vigil can read /proc/PID/exe for the event, and so can this test; 127.0.0.1 is not guarded.
        var refusedRun = bed.Start(denied, Python, bed.ClientScript, "tcp", $"{both},::ffff:{MetadataV4},127.0.0.1", "80", "1", "3.0");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (refusedRun.Stdout.Count(c => c == '\n') < 2 && !refusedRun.Process.HasExited) // "pid=N", then the results
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), "the client printed no results: " + refusedRun.Stderr);
            Thread.Sleep(20);
        }
        int refusedPid = Pid(refusedRun.Stdout);
        // /proc/PID/exe as vigil's mount namespace shows it (in the VMs, which chroot, with the chroot's prefix).
        var refusedExe = File.ResolveLinkTarget($"/proc/{refusedPid}/exe", returnFinalTarget: false)?.FullName;
        Assert.True(refusedRun.Process.WaitForExit(TimeSpan.FromSeconds(30)), "the client did not exit");
        var refused = Result(new Proc.Result(refusedRun.Process.ExitCode, refusedRun.Stdout, refusedRun.Stderr)).Split(' ');
        var started = DateTime.UtcNow;
        var curl = bed.Run(denied, "curl", "-sS", "-g", "-o", "/dev/null", "--max-time", "10", $"http://{MetadataV4}/");
        var curlTook = DateTime.UtcNow - started;
        var otherPort = Result(bed.Python(denied, Python, "tcp", MetadataV4, "81"));
        var udp = Result(bed.Python(denied, Python, "udp", both, "80")).Split(' ');
        var rawDenied = new As(DeniedUid, OtherGid, Caps: "net_raw");
        var raw = Result(bed.Python(rawDenied, Python, "raw", $"{MetadataV4},127.0.0.1", "80")).Split(' ');
        var rawOtherPort = Result(bed.Python(rawDenied, Python, "raw", MetadataV4, "443"));
        var rawAllowed = Result(bed.Python(rawDenied with { Uid = AllowedUid }, Python, "raw", MetadataV4, "80"));
        var (events, stats) = bed.StopVigil();
        List<JsonElement> Of(string hook) => events.Where(e => e.GetProperty("hook").GetString() == hook).ToList();

        var hooks = new MatrixHooks("guard");
        hooks.Check("connect4", () =>
        {
            foreach (var (what, results) in admitted) Assert.True(results[0] == "OK", $"allowed by {what} over IPv4: {results[0]}");
            Assert.Equal("EPERM", refused[0]);
            Assert.Equal("OK", refused[3]);                       // unguarded address
            Assert.Equal("ECONNREFUSED", otherPort);              // unguarded port of a guarded address
            Assert.Equal(7, curl.ExitCode);
            Assert.Contains("Couldn't connect to server", curl.Stderr);
            Assert.True(curlTook < TimeSpan.FromSeconds(5), $"a refused connect fails at once (curl took {curlTook})");
            var mine = Of("connect4");
            Assert.Equal(["python3", "curl"], mine.Select(e => e.GetProperty("comm").GetString()!).ToArray());
            AssertDenyEventOf(bed, refusedPid, refusedExe, mine[0]);
        });
        hooks.Check("connect6", () =>
        {
            foreach (var (what, results) in admitted) Assert.True(results[1] == "OK", $"allowed by {what} over IPv6: {results[1]}");
            Assert.Equal("EPERM", refused[1]);
            Assert.Equal("EPERM", refused[2]);                    // ::ffff:169.254.169.254 through AF_INET6
            var mine = Of("connect6");
            Assert.Equal(2, mine.Count);
            Assert.Equal(MetadataV6, mine[0].GetProperty("daddr").GetString());
            Assert.Equal(6, mine[0].GetProperty("family").GetInt32());
            Assert.Equal(MetadataV4, mine[1].GetProperty("daddr").GetString()); // judged as IPv4
            Assert.Equal(4, mine[1].GetProperty("family").GetInt32());
        });
        hooks.Check("sendmsg4", () =>
        {
            Assert.Equal("EPERM", udp[0]);
            Assert.Equal("udp", Assert.Single(Of("sendmsg4")).GetProperty("protocol").GetString());
        });
        hooks.Check("sendmsg6", () =>
        {
            Assert.Equal("EPERM", udp[1]);
            Assert.Equal(MetadataV6, Assert.Single(Of("sendmsg6")).GetProperty("daddr").GetString());
        });
        hooks.Check("egress", () =>
        {
            Assert.Equal(["EPERM", "OK"], raw);                   // guarded, then an unguarded address
            Assert.Equal("OK", rawOtherPort);
            Assert.Equal("OK", rawAllowed);
            var e = Assert.Single(Of("egress"));
            Assert.Equal(DeniedUid, e.GetProperty("uid").GetInt32());
            Assert.Equal(JsonValueKind.Null, e.GetProperty("pid").ValueKind); // no task context at egress: unknown, not guessed
            Assert.Equal(bed.CgroupRelative, e.GetProperty("cgroup").GetString());
            Assert.Equal(80, e.GetProperty("dport").GetInt32());
            Assert.Equal("tcp", e.GetProperty("protocol").GetString());
        });
        hooks.AssertAll();

        // Nothing else was reported; the counters agree: 10 admitted connects + 1 admitted raw packet.
        Assert.Equal(7, events.Count);
        Assert.All(events, e => Assert.Equal("deny", e.GetProperty("verdict").GetString()));
        Assert.All(events, e => Assert.Equal(DeniedUid, e.GetProperty("uid").GetInt32()));
        Assert.Equal(7UL, stats.GetProperty("kernel").GetProperty("denied").GetUInt64());
        Assert.Equal(11UL, stats.GetProperty("kernel").GetProperty("allowed").GetUInt64());
    }

    /// <summary>A connect4 deny event, field by field, against the client process that caused it.</summary>
    private static void AssertDenyEventOf(GuardBed bed, int pid, string? exe, JsonElement e)
    {
        Assert.Equal("deny", e.GetProperty("verdict").GetString());
        Assert.Equal(pid, e.GetProperty("pid").GetInt32());
        Assert.Equal(pid, e.GetProperty("tid").GetInt32());
        Assert.Equal(DeniedUid, e.GetProperty("uid").GetInt32());
        Assert.Equal(OtherGid, e.GetProperty("gid").GetInt32());
        Assert.Equal("python3", e.GetProperty("comm").GetString());
        var realPython = Proc.Run("readlink", "-f", Python).Stdout.Trim();
        Assert.Equal(ulong.Parse(Proc.Run("stat", "-L", "-c", "%i", realPython).Stdout.Trim()), e.GetProperty("exe_inode").GetUInt64());
        // The superblock's device, as mountinfo lists it: on overlayfs (the VMs' root) stat's st_dev differs.
        Assert.Equal(Proc.Run("findmnt", "-n", "-o", "MAJ:MIN", "-T", realPython).Stdout.Trim(), e.GetProperty("exe_dev").GetString());
        Assert.EndsWith(realPython, exe);
        // As this (the agent's) mount namespace names the file, even when /proc/PID/exe shows a chroot's
        // prefix (the VMs run the tests chrooted in another mount namespace: /newroot/usr/bin/...).
        Assert.Equal(realPython, e.GetProperty("exe").GetString());
        Assert.Equal(ulong.Parse(Proc.Run("stat", "-c", "%i", bed.Cgroup).Stdout.Trim()), e.GetProperty("cgroup_id").GetUInt64());
        Assert.Equal(bed.CgroupRelative, e.GetProperty("cgroup").GetString());
        Assert.Equal(JsonValueKind.Null, e.GetProperty("container_id").ValueKind);
        Assert.Equal("metadata-guard", e.GetProperty("rule").GetString());
        Assert.Equal(0, e.GetProperty("rule_id").GetInt32());
        Assert.Equal("tcp", e.GetProperty("protocol").GetString());
        Assert.Equal(MetadataV4, e.GetProperty("daddr").GetString());
        Assert.Equal(4, e.GetProperty("family").GetInt32());
        Assert.Equal(80, e.GetProperty("dport").GetInt32());
        Assert.Equal(1, e.GetProperty("policy_generation").GetInt32());
        Assert.Equal(0, e.GetProperty("suppressed").GetInt32());
    }

    [Fact]
    public void AuditModeAllowsTheConnectionAndReportsIt()
    {
        using var bed = new GuardBed();
        bed.StartVigil(bed.WritePolicy(MetadataPolicy("audit", $"      users: [{AllowedUid}]")));
        var denied = new As(DeniedUid, OtherGid);
        Assert.Equal("OK", Result(bed.Python(denied, Python, "tcp", MetadataV4, "80")));
        var curl = bed.Run(denied, "curl", "-sS", "-g", "-o", "/dev/null", "--max-time", "10", $"http://[{MetadataV6}]/");
        Assert.True(curl.ExitCode == 0, curl.Stderr);
        Assert.Equal("OK", Result(bed.Python(new As(AllowedUid, OtherGid), Python, "tcp", MetadataV4, "80")));
        var (events, stats) = bed.StopVigil();
        Assert.Equal(2, events.Count);
        Assert.All(events, e => Assert.Equal("audit", e.GetProperty("verdict").GetString()));
        Assert.Equal(["python3", "curl"], events.Select(e => e.GetProperty("comm").GetString()!).ToArray());
        Assert.Equal(MetadataV6, events[1].GetProperty("daddr").GetString());
        Assert.Equal(2UL, stats.GetProperty("kernel").GetProperty("audited").GetUInt64());
        Assert.Equal(0UL, stats.GetProperty("kernel").GetProperty("denied").GetUInt64());
    }

    [Fact]
    public void ATightRetryLoopIsRateLimitedAndTheSuppressedCountsAddUp()
    {
        using var bed = new GuardBed();
        bed.StartVigil(bed.WritePolicy(MetadataPolicy("enforce", $"      users: [{AllowedUid}]")), ["--rate-burst", "3"]);
        var denied = new As(DeniedUid, OtherGid);
        Assert.Equal("EPERM=300", Result(bed.Python(denied, Python, "tcp", MetadataV4, "80", "300")));
        Thread.Sleep(1200); // a new one-second window
        Assert.Equal("EPERM", Result(bed.Python(denied, Python, "tcp", MetadataV4, "80")));
        var (events, stats) = bed.StopVigil();
        long reported = events.Count, suppressed = events.Sum(e => e.GetProperty("suppressed").GetInt64());
        Assert.Equal(301, reported + suppressed); // every decision is either an event or counted in a later one
        Assert.InRange(reported, 4, 12);           // 3 per window: the loop spans one or two windows, then the last try
        Assert.True(events[^1].GetProperty("suppressed").GetInt64() > 0, "the next event carries the suppressed count");
        var kernel = stats.GetProperty("kernel");
        Assert.Equal(301UL, kernel.GetProperty("denied").GetUInt64());
        Assert.Equal(301UL, kernel.GetProperty("emitted").GetUInt64() + kernel.GetProperty("rate_limited").GetUInt64());
        Assert.Equal((ulong)suppressed, kernel.GetProperty("rate_limited").GetUInt64());
    }

    [Fact]
    public void ABadPolicyGetsThePolicyCheckErrorsExitTwoAndNothingIsAttached()
    {
        using var bed = new GuardBed();
        var policy = bed.WritePolicy("""
            version: 1
            endpoint_sets:
              - name: m
                addresses: [169.254.169.254/33]
            rules:
              - { name: r, endpoint_set: m, mode: block }
            """);
        var check = Proc.Run(Repo.Vigil, ["policy", "check", policy], TimeSpan.FromSeconds(30));
        var watch = Proc.Run(Repo.Vigil, ["watch", "guard", "--policy", policy, "--cgroup", bed.Cgroup, "--no-pin"], TimeSpan.FromSeconds(30));
        Assert.Equal(2, watch.ExitCode);
        Assert.Equal(2, check.ExitCode);
        Assert.Equal(check.Stderr, watch.Stderr);
        Assert.Contains("invalid prefix length '/33'", watch.Stderr);
        Assert.Contains("unknown mode 'block'", watch.Stderr);
        Assert.Empty(watch.Stdout);
        Assert.Equal("", Proc.Run("bpftool", "cgroup", "show", bed.Cgroup).Stdout.Trim());
    }

    [Fact]
    public void ProgramsAreDetachedWhenVigilExits()
    {
        using var bed = new GuardBed();
        bed.StartVigil(bed.WritePolicy(MetadataPolicy("enforce", $"      users: [{AllowedUid}]")));
        var attached = Proc.Run("bpftool", "cgroup", "show", bed.Cgroup).Stdout;
        foreach (var hook in new[] { "connect4", "connect6", "sendmsg4", "sendmsg6", "egress" })
            Assert.Contains(hook, attached);
        bed.StopVigil();
        Assert.Equal("", Proc.Run("bpftool", "cgroup", "show", bed.Cgroup).Stdout.Trim());
        Assert.Equal("OK", Result(bed.Python(new As(DeniedUid, OtherGid), Python, "tcp", MetadataV4, "80")));
    }
}

/// <summary>The guard with only CAP_BPF + CAP_PERFMON + CAP_NET_ADMIN, as an unprivileged uid.</summary>
public class GuardPrivilegeTests
{
    private const string ThreeCaps = "-all,+bpf,+perfmon,+net_admin";

    [Theory]
    [InlineData(ThreeCaps, null)]
    [InlineData("-all,+bpf,+net_admin", "CAP_PERFMON")] // bpf_get_current_task and probe reads of the caller's cred/exe
    [InlineData("-all,+bpf,+perfmon", "CAP_NET_ADMIN")] // cgroup_skb and cgroup sock_addr program types
    public void EnforcesWithCapBpfCapPerfmonAndCapNetAdminOnly(string caps, string? missing)
    {
        using var bed = new GuardBed();
        var policy = bed.WritePolicy($$"""
            version: 1
            endpoint_sets:
              - { name: metadata, addresses: [{{GuardBed.MetadataV4}}], ports: [80] }
            rules:
              - { name: r, endpoint_set: metadata, mode: enforce, allow: { users: [47001] } }
            """);
        string[] launcher = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
            $"--inh-caps={caps}", $"--ambient-caps={caps}", $"--bounding-set={caps}"];
        var vigil = PrivilegeAndHookTests.WorldReadableVigil();
        if (missing is not null)
        {
            var r = Proc.Run(launcher[0], [.. launcher.Skip(1), vigil, "watch", "guard", "--policy", policy, "--cgroup", bed.Cgroup, "--no-pin"], TimeSpan.FromSeconds(30));
            Assert.Equal(1, r.ExitCode);
            Assert.Equal($"vigil: loading the guard (cgroup sock_addr and cgroup_skb programs that read the caller's credentials) failed: EPERM (1): Operation not permitted — needs {missing} (run as root or grant it, e.g. setcap or systemd AmbientCapabilities)",
                Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
            Assert.Equal("", Proc.Run("bpftool", "cgroup", "show", bed.Cgroup).Stdout.Trim());
            return;
        }
        bed.StartVigil(policy, launcher: launcher, vigil: vigil);
        var denied = bed.Python(new GuardBed.As(47002, 47002), "/usr/bin/python3", "tcp", GuardBed.MetadataV4, "80");
        Assert.EndsWith("EPERM", denied.Stdout.Trim());
        Assert.EndsWith("OK", bed.Python(new GuardBed.As(47001, 47002), "/usr/bin/python3", "tcp", GuardBed.MetadataV4, "80").Stdout.Trim());
        var (events, _) = bed.StopVigil();
        Assert.Equal(47002, Assert.Single(events).GetProperty("uid").GetInt32());
    }
}
