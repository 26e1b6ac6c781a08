using System.Diagnostics;
using System.Text.Json;

namespace Vigil.Tests.Kernel.Support;

/// <summary>A fake metadata service and a guarded test cgroup, created for one test and always removed.
/// One network namespace holds 169.254.169.254 and fd00:ec2::254 on its loopback with a python HTTP server
/// on port 80 (dual stack), so no packet leaves it. Clients join the test cgroup (or its child
/// <c>allowed</c>) first, then enter the namespace (ip netns exec hides cgroup2), then switch to a test
/// uid with setpriv. `vigil watch guard` is attached to the test cgroup only, never the root.
/// Routed (the TC enforcer's bed): the metadata service lives in a second namespace behind a veth pair,
/// <see cref="Uplink"/>, whose egress the enforcer guards; a third namespace, <see cref="ForwardedNetns"/>,
/// reaches it through the clients' namespace, which forwards (a container behind a host, as the host sees it).</summary>
public sealed class GuardBed : IDisposable
{
    private static int _counter;
    public const string MetadataV4 = "169.254.169.254";
    public const string MetadataV6 = "fd00:ec2::254";

    public string Netns { get; }
    /// <summary>Routed: where the metadata service runs (else <see cref="Netns"/>).</summary>
    public string ServerNetns { get; }
    /// <summary>Routed: a client namespace whose packets <see cref="Netns"/> forwards.</summary>
    public string ForwardedNetns { get; }
    /// <summary>Routed: the clients' interface towards the metadata service (the TC enforcer's).</summary>
    public const string Uplink = "vgup";
    /// <summary>Routed: an address of the server namespace that no policy guards (the server answers there too).</summary>
    public const string UnguardedV4 = "10.77.0.2", UnguardedV6 = "fd77::2";
    public string Cgroup { get; }
    public string AllowedCgroup { get; }
    /// <summary>The cgroup path relative to the mount, as policies and events write it.</summary>
    public string CgroupRelative { get; }
    public string Dir { get; }
    public string ClientScript { get; }
    private readonly List<Proc.Running> _processes = new();
    private Proc.Running? _vigil;
    private string? _bpffs;

    /// <summary>A pin directory on a private bpffs mounted for this bed (never the host's /sys/fs/bpf),
    /// writable by uid 65534 for the least-privilege tests. Unmounting it at the end drops every pin.</summary>
    public string PinDir
    {
        get
        {
            if (_bpffs is null)
            {
                var mount = Path.Combine(Dir, "bpffs");
                Directory.CreateDirectory(mount);
                Proc.Run("mount", "-t", "bpf", "vigil-test-bpffs", mount).EnsureSuccess("mounting a private bpffs");
                _bpffs = mount;
                Proc.Run("chmod", "0777", mount).EnsureSuccess("chmod bpffs");
            }
            return Path.Combine(_bpffs, "guard");
        }
    }

    /// <summary>The token the fake IMDS issues (<see cref="GuardBed(bool)"/> with imds): unique per bed, so a
    /// test can assert it appears in no output.</summary>
    public string ImdsToken { get; } = "VIGILTOKEN" + Guid.NewGuid().ToString("N");

    /// <summary><paramref name="imds"/>: the server is Support/servers/fake_imds.py (the IMDSv2 token flow)
    /// instead of python's http.server.</summary>
    public GuardBed(bool imds = false, bool routed = false)
    {
        int n = Interlocked.Increment(ref _counter);
        int pid = Environment.ProcessId;
        Netns = $"vgg{pid}x{n}";
        ServerNetns = routed ? Netns + "s" : Netns;
        ForwardedNetns = routed ? Netns + "f" : "";
        var mount = Vigil.Interop.Cgroups.FindV2Mount() ?? throw new InvalidOperationException("no cgroup v2 mount on this machine");
        CgroupRelative = $"/vigil-guard-{pid}-{n}";
        Cgroup = mount + CgroupRelative;
        AllowedCgroup = Path.Combine(Cgroup, "allowed");
        // On the root file system, not the /tmp tmpfs: in the matrix VMs that is overlayfs, whose stat() device
        // is not the superblock device the kernel reports (an executable copied here must still match).
        Dir = Path.Combine("/var/tmp", $"vigil-guard-{pid}-{n}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Dir);
        File.SetUnixFileMode(Dir, (UnixFileMode)0x1ED);
        ClientScript = Path.Combine(Dir, "client.py");
        File.WriteAllText(ClientScript, ClientPy);
        File.SetUnixFileMode(ClientScript, (UnixFileMode)0x1A4);
        try
        {
            Directory.CreateDirectory(Cgroup);
            Directory.CreateDirectory(AllowedCgroup);
            Ip("netns", "add", Netns);
            Ip("-n", Netns, "link", "set", "lo", "up");
            if (routed) Route();
            Ip("-n", ServerNetns, "addr", "add", MetadataV4 + "/32", "dev", "lo");
            Ip("-n", ServerNetns, "addr", "add", MetadataV6 + "/128", "dev", "lo", "nodad");
            // The server is root and outside the guarded cgroup: accepting is not connecting.
            var server = imds
                ? TestNetwork.StartIn(ServerNetns, "/usr/bin/python3", "-u", Path.Combine(AppContext.BaseDirectory, "Support", "servers", "fake_imds.py"), "80", ImdsToken)
                : TestNetwork.StartIn(ServerNetns, "/usr/bin/python3", "-u", "-m", "http.server", "--bind", "::", "--directory", Dir, "80");
            _processes.Add(server);
            var sw = Stopwatch.StartNew();
            while (TestNetwork.Exec(ServerNetns, "ss", "-Hltn", "sport = :80").Stdout.Trim().Length == 0)
            {
                if (sw.Elapsed > TimeSpan.FromSeconds(15)) throw new TimeoutException("metadata server did not listen: " + server.Stderr);
                Thread.Sleep(50);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private static void Ip(params string[] args) => Proc.Run("ip", args).EnsureSuccess("ip " + string.Join(' ', args));

    /// <summary>A policy with one rule, metadata-guard, over port 80 of <paramref name="addresses"/> (default: both
    /// metadata addresses); <paramref name="allow"/> is the YAML under <c>allow:</c>, indented by six spaces.</summary>
    public static string MetadataPolicy(string mode, string allow, string addresses = $"{MetadataV4}, {MetadataV6}") => $"""
        version: 1
        endpoint_sets:
          - name: metadata
            addresses: [{addresses}]
            ports: [80]
        rules:
          - name: metadata-guard
            endpoint_set: metadata
            mode: {mode}
            allow:
        {allow}
        """;

    /// <summary>Routed mode: clients (10.77.0.1) —Uplink— server (10.77.0.2, metadata on lo); forwarded
    /// client (10.78.0.2) — clients' namespace (10.78.0.1, forwarding). Each veth is created inside a
    /// namespace with its peer moved straight into another: no interface appears in the host's namespace.</summary>
    private void Route()
    {
        foreach (var ns in new[] { ServerNetns, ForwardedNetns })
        {
            Ip("netns", "add", ns);
            Ip("-n", ns, "link", "set", "lo", "up");
        }
        Ip("-n", Netns, "link", "add", Uplink, "type", "veth", "peer", "name", "vgsrv", "netns", ServerNetns);
        Ip("-n", Netns, "link", "add", "vgfwd", "type", "veth", "peer", "name", "vgcli", "netns", ForwardedNetns);
        foreach (var (ns, dev, v4, v6) in new[]
                 {
                     (Netns, Uplink, "10.77.0.1/24", "fd77::1/64"), (ServerNetns, "vgsrv", UnguardedV4 + "/24", UnguardedV6 + "/64"),
                     (Netns, "vgfwd", "10.78.0.1/24", "fd78::1/64"), (ForwardedNetns, "vgcli", "10.78.0.2/24", "fd78::2/64"),
                 })
        {
            Ip("-n", ns, "addr", "add", v4, "dev", dev);
            Ip("-n", ns, "addr", "add", v6, "dev", dev, "nodad");
            Ip("-n", ns, "link", "set", dev, "up");
        }
        Ip("-n", Netns, "route", "add", MetadataV4 + "/32", "via", UnguardedV4);
        Ip("-n", Netns, "-6", "route", "add", MetadataV6 + "/128", "via", UnguardedV6);
        Ip("-n", ServerNetns, "route", "add", "10.78.0.0/24", "via", "10.77.0.1");
        Ip("-n", ServerNetns, "-6", "route", "add", "fd78::/64", "via", "fd77::1");
        Ip("-n", ForwardedNetns, "route", "add", "default", "via", "10.78.0.1");
        Ip("-n", ForwardedNetns, "-6", "route", "add", "default", "via", "fd78::1");
        // Forwarding in the clients' namespace only (each namespace has its own).
        TestNetwork.Exec(Netns, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1").EnsureSuccess("enabling forwarding");
    }
    public string WritePolicy(string yaml)
    {
        var path = Path.Combine(Dir, $"policy-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, yaml);
        File.SetUnixFileMode(path, (UnixFileMode)0x1A4);
        return path;
    }

    /// <summary>Starts `vigil watch guard -o json` on the test cgroup (optionally through a launcher) and waits
    /// until it is attached. Unpinned unless <paramref name="pinned"/> (then in <see cref="PinDir"/>).</summary>
    public Proc.Running StartVigil(string policyPath, IEnumerable<string>? extra = null, IEnumerable<string>? launcher = null, string? vigil = null, bool pinned = false)
    {
        string[] pin = pinned ? ["--pin-dir", PinDir] : ["--no-pin"];
        var all = (launcher ?? []).Concat([vigil ?? Repo.Vigil, "watch", "guard", "-o", "json", "--policy", policyPath, "--cgroup", Cgroup, .. pin]).Concat(extra ?? []).ToList();
        var proc = Proc.Start(all[0], all.Skip(1));
        _vigil = proc;
        proc.WaitFor("vigil: guarding", TimeSpan.FromSeconds(30));
        return proc;
    }

    /// <summary>Routed: starts `vigil watch guard -o json --enforcer tc --iface IFACE` (default <see cref="Uplink"/>)
    /// inside the clients' namespace (the launcher, e.g. setpriv, runs inside it too) and waits until it guards.</summary>
    public Proc.Running StartTcVigil(string policyPath, IEnumerable<string>? extra = null, IEnumerable<string>? launcher = null,
                                     bool pinned = false, string? vigil = null, string iface = Uplink)
    {
        string[] pin = pinned ? ["--pin-dir", PinDir] : ["--no-pin"];
        var all = InNetns([.. launcher ?? [], vigil ?? Repo.Vigil, "watch", "guard", "-o", "json", "--policy", policyPath,
                           "--enforcer", "tc", "--iface", iface, .. pin, .. extra ?? []]);
        var proc = Proc.Start(all[0], all.Skip(1));
        _vigil = proc;
        proc.WaitFor("vigil: guarding", TimeSpan.FromSeconds(30));
        return proc;
    }

    /// <summary>A command line run in the clients' namespace with the cgroup2 hierarchy mounted back at
    /// /sys/fs/cgroup (ip netns exec mounts a fresh sysfs over /sys, hiding it), so vigil resolves cgroups
    /// as on a host. The mount lives in ip netns exec's own mount namespace and ends with the command.</summary>
    private string[] InNetns(string[] command) =>
        ["ip", "netns", "exec", Netns, "/bin/sh", "-c", "mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec \"$@\"", "sh", .. command];

    /// <summary>Runs a vigil command (e.g. `guard status`) inside the clients' namespace.</summary>
    public Proc.Result VigilInNetns(params string[] args)
    {
        var all = InNetns([Repo.Vigil, .. args]);
        return Proc.Run(all[0], all.Skip(1), TimeSpan.FromSeconds(60));
    }

    /// <summary>Routed: runs a command as root in the forwarded client's namespace.</summary>
    public Proc.Result RunForwarded(params string[] command) => TestNetwork.Exec(ForwardedNetns, command);

    /// <summary>The running vigil (for signals and its output).</summary>
    public Proc.Running VigilProcess => _vigil ?? throw new InvalidOperationException("vigil is not running");

    /// <summary>Ends vigil with SIGKILL (no clean-up of its own) and forgets it.</summary>
    public void KillVigil()
    {
        var proc = VigilProcess;
        proc.Process.Kill();
        proc.Process.WaitForExit(20_000);
        _vigil = null;
        proc.Dispose();
    }

    /// <summary>Stops vigil (SIGINT, after the reader's 50 ms poll caught up) and returns its events and stats.</summary>
    public (List<JsonElement> Events, JsonElement Stats) StopVigil()
    {
        var proc = _vigil ?? throw new InvalidOperationException("vigil is not running");
        Thread.Sleep(300);
        int exit = proc.Interrupt(TimeSpan.FromSeconds(20));
        _vigil = null;
        if (exit != 0) throw new InvalidOperationException($"vigil exited {exit}: {proc.Stderr}");
        var all = proc.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
        // Guard decisions are returned; HTTP audit events ("kind":"http") are kept apart.
        var events = all.Where(e => !e.TryGetProperty("kind", out _)).ToList();
        HttpEvents = all.Where(e => e.TryGetProperty("kind", out var k) && k.GetString() == "http").ToList();
        LastStdout = proc.Stdout;
        LastStderr = proc.Stderr;
        var stats = proc.Stderr.Split('\n').Last(l => l.StartsWith("{\"kernel\"", StringComparison.Ordinal));
        proc.Dispose();
        return (events, JsonDocument.Parse(stats).RootElement.Clone());
    }

    /// <summary>The HTTP audit events of the last <see cref="StopVigil"/>.</summary>
    public List<JsonElement> HttpEvents { get; private set; } = [];
    /// <summary>Everything the last stopped vigil wrote.</summary>
    public string LastStdout { get; private set; } = "";
    public string LastStderr { get; private set; } = "";

    /// <summary>Who runs a client: uid, primary gid, supplementary groups, capabilities, cgroup.</summary>
    public sealed record As(int Uid, int Gid, int[]? Groups = null, string? Caps = null, bool InAllowedCgroup = false);

    /// <summary>Runs a command as <paramref name="who"/> in the test cgroup and namespace; every step execs, so
    /// the pid the client prints is the one the kernel saw.</summary>
    public Proc.Result Run(As who, params string[] command) =>
        Proc.Run("/bin/sh", ["-c", ClientLine(who, command)], TimeSpan.FromSeconds(60));

    /// <summary>Starts a command as <paramref name="who"/> like <see cref="Run"/>, without waiting; ended with the bed.</summary>
    public Proc.Running Start(As who, params string[] command)
    {
        var proc = Proc.Start("/bin/sh", ["-c", ClientLine(who, command)]);
        _processes.Add(proc);
        return proc;
    }

    private string ClientLine(As who, string[] command)
    {
        var setpriv = new List<string> { "setpriv", "--reuid", $"{who.Uid}", "--regid", $"{who.Gid}" };
        setpriv.Add(who.Groups is { Length: > 0 } g ? "--groups=" + string.Join(',', g) : "--clear-groups");
        if (who.Caps is { } caps) setpriv.AddRange([$"--inh-caps=+{caps}", $"--ambient-caps=+{caps}"]);
        var line = string.Join(' ', new[] { "ip", "netns", "exec", Netns }.Concat(setpriv).Concat(command).Select(a => $"'{a}'"));
        var procs = Path.Combine(who.InAllowedCgroup ? AllowedCgroup : Cgroup, "cgroup.procs");
        return $"echo $$ > '{procs}' && exec {line}";
    }

    /// <summary>The python client (docs in its text): prints "pid=N" then one result per attempt.</summary>
    public Proc.Result Python(As who, string python, params string[] args) =>
        Run(who, [python, ClientScript, .. args]);

    public const string ClientPy = """
        # Guard test client: one action, results on stdout ("OK" or the errno name per attempt).
        # HOST may be a comma-separated list: one result per host, space-separated, from one process.
        import errno, os, socket, struct, sys, time
        print(f"pid={os.getpid()}", flush=True)
        action, hosts, port = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3])
        count = int(sys.argv[4]) if len(sys.argv) > 4 else 1
        def result(f, host):
            try:
                f(host); return "OK"
            except TimeoutError:
                return "TIMEOUT"  # a dropped SYN (the TC enforcer)
            except OSError as e:
                return errno.errorcode.get(e.errno, str(e.errno))
        def tcp(host):
            fam = socket.AF_INET6 if ":" in host else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(float(os.environ.get("VIGIL_CONNECT_TIMEOUT", "5")))
            try: s.connect((host, port))
            finally: s.close()
        def udp(host):
            fam = socket.AF_INET6 if ":" in host else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_DGRAM)
            try: s.sendto(b"vigil", (host, port))
            finally: s.close()
        def raw(host):
            # A hand-made TCP SYN through a raw socket: no connect() ever runs.
            s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
            try: s.sendto(struct.pack("!HHIIBBHHH", 40000, port, 1, 0, 5 << 4, 0x02, 1024, 0, 0), (host, 0))
            finally: s.close()
        f = {"tcp": tcp, "udp": udp, "raw": raw}[action]
        def attempts(host):
            results = [result(f, host) for _ in range(count)]
            if count == 1: return results[0]
            return " ".join(f"{r}={results.count(r)}" for r in sorted(set(results)))
        print(" ".join(attempts(h) for h in hosts), flush=True)
        time.sleep(float(sys.argv[5]) if len(sys.argv) > 5 else 0)  # lets vigil read /proc/PID/exe
        """;

    public void Dispose()
    {
        if (_vigil is { } v) { try { v.Interrupt(TimeSpan.FromSeconds(20)); } catch (TimeoutException) { } v.Dispose(); }
        foreach (var p in _processes) p.Dispose();
        // Unmounting the private bpffs drops its pins: pinned links detach, pinned maps are freed.
        if (_bpffs is not null) Proc.Run("umount", _bpffs);
        foreach (var ns in new[] { Netns, ServerNetns, ForwardedNetns }.Where(n => n.Length > 0).Distinct())
            Proc.Run("ip", "netns", "delete", ns);
        foreach (var dir in new[] { AllowedCgroup, Cgroup })
            for (int i = 0; i < 50 && Directory.Exists(dir); i++)
            {
                try { Directory.Delete(dir); }
                catch (IOException) { Thread.Sleep(100); } // processes still exiting
            }
        Directory.Delete(Dir, recursive: true);
    }
}
