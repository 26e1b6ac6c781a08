using System.Diagnostics;
using System.Text.Json;
using Vigil.Tests.Kernel.Support;
using static Vigil.Tests.Kernel.Support.GuardBed;

namespace Vigil.Tests.Kernel.EndToEnd;

/// <summary>`vigil watch guard --enforcer tc`: the TC egress enforcer on a veth of a test namespace, with the fake
/// metadata service in a second namespace behind it and a third namespace whose packets are forwarded through it.
/// A refused TCP SYN is answered with a RST, so connect() fails at once with ECONNREFUSED (EPERM only a connect hook
/// can give); a refused UDP or raw packet is dropped.</summary>
public class GuardTcEndToEndTests
{
    private const int AllowedUid = 47001, DeniedUid = 47002, AllowedGid = 47100, OtherGid = 47101;
    private const string Python = "/usr/bin/python3";
    private const string ThreeCaps = "-all,+bpf,+perfmon,+net_admin";
    private static readonly string[] LeastPrivilege = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
        $"--inh-caps={ThreeCaps}", $"--ambient-caps={ThreeCaps}", $"--bounding-set={ThreeCaps}"];


    /// <summary>The python client's results line, with a short connect timeout (nothing answers on the tun device).</summary>
    private static string[] Client(GuardBed bed, As who, string action, string hosts, string port = "80")
    {
        var r = bed.Run(who, "env", "VIGIL_CONNECT_TIMEOUT=1.5", Python, bed.ClientScript, action, hosts, port);
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length >= 2, $"client printed {r.Stdout} / {r.Stderr}");
        return lines[1].Split(' ');
    }

    private static bool NoTcHookLeft(GuardBed bed) =>
        TestNetwork.Exec(bed.Netns, "tc", "filter", "show", "dev", Uplink, "egress").Stdout.Trim().Length == 0 &&
        !Proc.Run("bpftool", "link", "show").Stdout.Contains("vigil_guard_tc", StringComparison.Ordinal);

    /// <summary>The TC enforcer on the kernel it runs on (its kernel-matrix test: one start). Each kind of allowed
    /// owner connects over IPv4 and IPv6 (the group checks read the socket's file credentials; the cgroup check,
    /// the socket's cgroup); a denied uid's TCP, UDP and raw packets are dropped and reported; an unguarded address
    /// stays reachable; a forwarded packet (no local socket) is judged as nobody's. Least privilege: the three
    /// capabilities, as uid 65534.</summary>
    [Fact]
    [Trait("Matrix", "true")]
    [Trait(MatrixHooks.Trait, "guard/tc-egress tc")]
    public void TheTcEnforcerAdmitsEachAllowedSocketAndDropsEveryOtherPacketToAGuardedDestination()
    {
        using var bed = new GuardBed(routed: true);
        var start = bed.StartTcVigil(bed.WritePolicy(MetadataPolicy("enforce", $"""
                  users: [{AllowedUid}]
                  groups: [{AllowedGid}]
                  cgroups: [{bed.CgroupRelative}/allowed]
            """)), launcher: LeastPrivilege, vigil: PrivilegeAndHookTests.WorldReadableVigil());
        Assert.Contains($"with tc egress of {Uplink} (", start.Stderr);
        Assert.Contains("no HTTP audit", start.Stderr);

        string both = $"{MetadataV4},{MetadataV6}";
        var denied = new As(DeniedUid, OtherGid);
        var admitted = new (As Who, string What)[]
        {
            (new As(AllowedUid, OtherGid), "uid"),
            (new As(DeniedUid, AllowedGid), "primary gid"),
            (new As(DeniedUid, OtherGid, [OtherGid + 5, AllowedGid]), "supplementary gid"),
            (denied with { InAllowedCgroup = true }, "cgroup"),
        }.Select(a => (a.What, Results: Client(bed, a.Who, "tcp", both))).ToList();
        var refusedStarted = Stopwatch.StartNew();
        var refused = Client(bed, denied, "tcp", both);
        var refusedTook = refusedStarted.Elapsed;
        var unguarded = Client(bed, denied, "tcp", $"{UnguardedV4},{UnguardedV6}");
        var udp = Client(bed, denied, "udp", both);
        var raw = Client(bed, new As(DeniedUid, OtherGid, Caps: "net_raw"), "raw", MetadataV4);
        var forwarded = bed.RunForwarded("curl", "-sS", "-o", "/dev/null", "--max-time", "2", $"http://{MetadataV4}/");
        var forwardedUnguarded = bed.RunForwarded("curl", "-sS", "-o", "/dev/null", "--max-time", "5", $"http://{UnguardedV4}/");
        var (events, stats) = bed.StopVigil();
        Assert.True(NoTcHookLeft(bed), "an unpinned vigil leaves no TC hook behind");

        // Every decision in the test's output: what a kernel of the matrix did differently is read there.
        foreach (var e in events) TestContext.Current.TestOutputHelper?.WriteLine(e.GetRawText());
        var hooks = new MatrixHooks("guard");
        hooks.Check("tc-egress", () =>
        {
            foreach (var (what, results) in admitted) Assert.True(results is ["OK", "OK"], $"allowed by {what}: {string.Join(' ', results)}");
            Assert.Equal(["ECONNREFUSED", "ECONNREFUSED"], refused); // the RST the enforcer answered the SYN with
            Assert.True(refusedTook < TimeSpan.FromSeconds(1.5), $"a refused connect fails at once (took {refusedTook})");
            Assert.Equal(["OK", "OK"], unguarded);
            Assert.Equal(7, forwarded.ExitCode);                  // curl: couldn't connect (the RST went back to it)
            Assert.True(forwardedUnguarded.ExitCode == 0, forwardedUnguarded.Stderr);
            Assert.All(events, e => Assert.Equal("tc-egress", e.GetProperty("hook").GetString()));
            Assert.All(events, e => Assert.Equal("deny", e.GetProperty("verdict").GetString()));

            // A refused connect, reported with the socket's owner; no task is known at a packet hook.
            var tcp = events.First(e => e.GetProperty("protocol").GetString() == "tcp" && e.GetProperty("daddr").GetString() == MetadataV4 &&
                                        e.GetProperty("uid").ValueKind == JsonValueKind.Number);
            Assert.Equal(DeniedUid, tcp.GetProperty("uid").GetInt32());
            Assert.Equal(OtherGid, tcp.GetProperty("gid").GetInt32()); // from the socket's file credentials
            foreach (var field in new[] { "pid", "tid", "comm", "exe" })
                Assert.Equal(JsonValueKind.Null, tcp.GetProperty(field).ValueKind);
            Assert.Equal(ulong.Parse(Proc.Run("stat", "-c", "%i", bed.Cgroup).Stdout.Trim()), tcp.GetProperty("cgroup_id").GetUInt64());
            Assert.Equal(bed.CgroupRelative, tcp.GetProperty("cgroup").GetString());
            Assert.Equal(80, tcp.GetProperty("dport").GetInt32());
            Assert.Contains(events, e => e.GetProperty("daddr").GetString() == MetadataV6 && e.GetProperty("family").GetInt32() == 6);

            // UDP and raw packets: the senders see no error (the drop is after the socket), the kernel reports them.
            Assert.Equal(["OK", "OK"], udp);
            Assert.Equal(2, events.Count(e => e.GetProperty("protocol").GetString() == "udp"));
            Assert.Equal(["OK"], raw);

            // The forwarded packet: no local socket, so no owner at all.
            var unowned = events.Where(e => e.GetProperty("uid").ValueKind == JsonValueKind.Null).ToList();
            Assert.NotEmpty(unowned);
            Assert.All(unowned, e => Assert.Equal(JsonValueKind.Null, e.GetProperty("cgroup_id").ValueKind));
            var k = stats.GetProperty("kernel");
            Assert.True(k.GetProperty("unowned").GetUInt64() >= 1);
            Assert.True(k.GetProperty("tc_resets").GetUInt64() >= 3, "the refused SYNs (IPv4, IPv6, forwarded) were answered");
            Assert.True(k.GetProperty("tc_packets").GetUInt64() > k.GetProperty("checked").GetUInt64() / 2);
            Assert.Equal(k.GetProperty("checked").GetUInt64(), k.GetProperty("unguarded").GetUInt64() + k.GetProperty("guarded").GetUInt64());
            Assert.Equal(k.GetProperty("guarded").GetUInt64(),
                k.GetProperty("allowed").GetUInt64() + k.GetProperty("audited").GetUInt64() + k.GetProperty("denied").GetUInt64());
            // Only owners of refused packets were reported (a raw socket of the denied uid included): none of the
            // admitted connections, not even their last segments after close(), when the socket has no file and
            // so no credentials left (a TCP connection is judged at its SYN).
            Assert.All(events.Where(e => e.GetProperty("uid").ValueKind == JsonValueKind.Number),
                e => Assert.Equal((DeniedUid, OtherGid), (e.GetProperty("uid").GetInt32(), e.GetProperty("gid").GetInt32())));
        });
        hooks.AssertAll();
    }

    /// <summary>The IP-only program (interfaces without a link-layer header) on a tun device: the test reads
    /// what leaves it, so it sees the allowed SYN arrive and the refused one never.</summary>
    [Fact]
    [Trait("Matrix", "true")]
    [Trait(MatrixHooks.Trait, "guard/tc-egress-ip tc")]
    public void AnInterfaceWithoutALinkHeaderIsGuardedFromItsIpHeader()
    {
        using var bed = new GuardBed(routed: true);
        const string Tun = "vgtun", Target = "169.254.170.23"; // reached through the tun device only
        // Debian builds tun as a module, and devtmpfs has no /dev/net/tun until it is loaded (the matrix VMs run
        // no udev or kmod static-nodes): make the standard node, whose first open loads the module.
        if (!File.Exists("/dev/net/tun"))
        {
            Directory.CreateDirectory("/dev/net");
            Proc.Run("mknod", "-m", "0666", "/dev/net/tun", "c", "10", "200").EnsureSuccess("creating /dev/net/tun");
        }
        var readerPath = Path.Combine(bed.Dir, "tun_reader.py");
        File.WriteAllText(readerPath, TunReaderPy);
        var reader = TestNetwork.StartIn(bed.Netns, Python, "-u", readerPath, Tun);
        try
        {
            reader.WaitFor("ready", TimeSpan.FromSeconds(15));
            foreach (var args in new[] { new[] { "link", "set", Tun, "up" }, ["addr", "add", "10.79.0.1/24", "dev", Tun], ["route", "add", Target + "/32", "dev", Tun] })
                TestNetwork.Exec(bed.Netns, ["ip", .. args]).EnsureSuccess("ip " + string.Join(' ', args));
            bed.StartTcVigil(bed.WritePolicy(MetadataPolicy("enforce", $"      users: [{AllowedUid}]", Target)), iface: Tun);

            // The refused SYN is answered with a RST turned back in through the device (no link header to swap;
            // tun has no checksum offload, so the stack checks the RST's checksums); only the allowed SYN leaves
            // the device, and nothing answers it there.
            Assert.Equal(["ECONNREFUSED"], Client(bed, new As(DeniedUid, OtherGid), "tcp", Target));
            Thread.Sleep(300);
            Assert.DoesNotContain($"SYN {Target}:80", reader.Stdout);
            Assert.Equal(["TIMEOUT"], Client(bed, new As(AllowedUid, OtherGid), "tcp", Target));
            reader.WaitFor($"SYN {Target}:80", TimeSpan.FromSeconds(10));
            var (events, _) = bed.StopVigil();
            Assert.NotEmpty(events);
            Assert.All(events, e => Assert.Equal((DeniedUid, "tc-egress"), (e.GetProperty("uid").GetInt32(), e.GetProperty("hook").GetString())));
        }
        finally { reader.Dispose(); }
    }

    /// <summary>Opens the tun device (so it has a carrier) and prints every TCP SYN that leaves it.</summary>
    private const string TunReaderPy = """
        import fcntl, os, select, socket, struct, sys
        fd = os.open("/dev/net/tun", os.O_RDWR)
        fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH", sys.argv[1].encode(), 0x0001 | 0x1000))  # TUNSETIFF: IFF_TUN | IFF_NO_PI
        print("ready", flush=True)
        while True:
            if not select.select([fd], [], [], 60)[0]: break
            p = os.read(fd, 65535)
            if len(p) >= 40 and p[0] >> 4 == 4 and p[9] == 6:
                ihl = (p[0] & 15) * 4
                if p[ihl + 13] & 0x02:
                    print(f"SYN {socket.inet_ntoa(p[16:20])}:{struct.unpack('!H', p[ihl + 2:ihl + 4])[0]}", flush=True)
        """;

    /// <summary>A pinned TC enforcer outlives `kill -9`, is adopted in place by a restart, shows in `vigil guard
    /// status` and is removed by `vigil guard remove` (TCX links on 6.6+, Vigil's netlink filter before).</summary>
    [Fact]
    [Trait("Matrix", "true")]
    [Trait(MatrixHooks.Trait, "guard/tc-pinned tc")]
    public void APinnedTcEnforcerSurvivesKill9IsAdoptedAndRemoved()
    {
        using var bed = new GuardBed(routed: true);
        var policy = bed.WritePolicy(MetadataPolicy("enforce", $"      users: [{AllowedUid}]"));
        var denied = new As(DeniedUid, OtherGid);
        bed.StartTcVigil(policy, pinned: true);
        Assert.Equal(["ECONNREFUSED"], Client(bed, denied, "tcp", MetadataV4));

        bed.KillVigil();
        Assert.Equal(["ECONNREFUSED"], Client(bed, denied, "tcp", MetadataV4)); // no agent runs: the kernel still enforces
        Assert.Equal(["OK"], Client(bed, new As(AllowedUid, OtherGid), "tcp", MetadataV4));

        var second = bed.StartTcVigil(policy, pinned: true);
        Assert.Contains("adopted 1 attached links", second.Stderr);
        Assert.Equal(["ECONNREFUSED"], Client(bed, denied, "tcp", MetadataV6));
        bed.StopVigil(); // enforce: stays pinned

        var status = bed.VigilInNetns("guard", "status", "--pin-dir", bed.PinDir, "-o", "json");
        Assert.True(status.ExitCode == 0, status.Stderr);
        var s = JsonDocument.Parse(status.Stdout).RootElement;
        Assert.Equal("tc", s.GetProperty("enforcer").GetString());
        Assert.True(s.GetProperty("enforcing").GetBoolean());
        var hook = Assert.Single(s.GetProperty("hooks").EnumerateArray().ToList());
        Assert.Equal((Uplink, true), (hook.GetProperty("interface").GetString(), hook.GetProperty("attached").GetBoolean()));
        var kind = hook.GetProperty("kind").GetString();
        Assert.Contains(kind, new[] { "tcx", "netlink clsact" });

        // Adopting it with the other enforcer is refused before anything is attached (on the test cgroup, never the root).
        var other = bed.VigilInNetns("watch", "guard", "--policy", policy, "--pin-dir", bed.PinDir, "--cgroup", bed.CgroupRelative, "--duration", "1s");
        Assert.NotEqual(0, other.ExitCode);
        Assert.Contains("uses the tc enforcer, not cgroup", other.Stderr);
        Assert.Equal("", Proc.Run("bpftool", "cgroup", "show", bed.Cgroup).Stdout.Trim());
        Assert.Equal(["ECONNREFUSED"], Client(bed, denied, "tcp", MetadataV4));

        var remove = bed.VigilInNetns("guard", "remove", "--pin-dir", bed.PinDir);
        Assert.True(remove.ExitCode == 0, remove.Stderr);
        Assert.Contains($"({kind})", remove.Stdout);
        Assert.True(NoTcHookLeft(bed), "remove detached the TC hook");
        Assert.Equal(["OK"], Client(bed, denied, "tcp", MetadataV4));
    }

    [Fact]
    public void AuditModeLetsEveryPacketThroughAndReportsTheRefusedOwners()
    {
        using var bed = new GuardBed(routed: true);
        bed.StartTcVigil(bed.WritePolicy(MetadataPolicy("audit", $"      users: [{AllowedUid}]")));
        Assert.Equal(["OK", "OK"], Client(bed, new As(DeniedUid, OtherGid), "tcp", $"{MetadataV4},{MetadataV6}"));
        var (events, stats) = bed.StopVigil();
        Assert.NotEmpty(events);
        Assert.All(events, e => Assert.Equal(("audit", "tc-egress", DeniedUid), (e.GetProperty("verdict").GetString(), e.GetProperty("hook").GetString(), e.GetProperty("uid").GetInt32())));
        Assert.Equal(0UL, stats.GetProperty("kernel").GetProperty("denied").GetUInt64());
    }

    [Fact]
    public void BadTcInvocationsAreRefusedBeforeAnythingIsAttached()
    {
        using var bed = new GuardBed(routed: true);
        var policy = bed.WritePolicy(MetadataPolicy("enforce", $"      users: [{AllowedUid}]"));
        Proc.Result Vigil(params string[] args) => TestNetwork.Exec(bed.Netns, [Repo.Vigil, "watch", "guard", "--no-pin", "--policy", policy, .. args]);

        var noIface = Vigil("--enforcer", "tc");
        Assert.Equal(2, noIface.ExitCode);
        Assert.Contains("--enforcer tc needs at least one --iface NAME", noIface.Stderr);

        var unknown = Vigil("--enforcer", "tc", "--iface", "nosuch0");
        Assert.NotEqual(0, unknown.ExitCode);
        Assert.Contains("unknown interface 'nosuch0'", unknown.Stderr);

        var withCgroup = Vigil("--enforcer", "tc", "--iface", Uplink, "--cgroup", bed.Cgroup);
        Assert.Equal(2, withCgroup.ExitCode);

        // A policy allowing an executable: the enforcer cannot see one, so the policy is refused, with its place.
        var exePolicy = bed.WritePolicy(MetadataPolicy("enforce", $"      executables: [{Proc.Run("readlink", "-f", Python).Stdout.Trim()}]"));
        var exe = TestNetwork.Exec(bed.Netns, Repo.Vigil, "watch", "guard", "--no-pin", "--policy", exePolicy, "--enforcer", "tc", "--iface", Uplink);
        Assert.Equal(2, exe.ExitCode);
        Assert.Matches($@"{System.Text.RegularExpressions.Regex.Escape(exePolicy)}:\d+:\d+: rules\[0\]\.allow\.executables\[0\]: the tc enforcer cannot judge executables", exe.Stderr);
        Assert.True(NoTcHookLeft(bed), "nothing was attached");
    }
}
