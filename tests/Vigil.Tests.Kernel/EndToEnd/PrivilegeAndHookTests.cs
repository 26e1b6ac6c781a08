using Vigil.Tests.Kernel.Support;

namespace Vigil.Tests.Kernel.EndToEnd;

/// <summary>Least privilege, the cgroup hook, and the errors a user gets for bad input.</summary>
public class PrivilegeAndHookTests
{
    private const string ThreeCaps = "-all,+bpf,+perfmon,+net_admin";

    /// <summary>A copy of the built CLI that any uid can execute (the checkout may sit under /root).</summary>
    internal static string WorldReadableVigil()
    {
        var src = Path.GetDirectoryName(Repo.Vigil)!;
        var dst = Path.Combine(Path.GetTempPath(), $"vigil-priv-{Environment.ProcessId}");
        if (!Directory.Exists(dst))
        {
            Directory.CreateDirectory(dst);
            foreach (var f in Directory.EnumerateFiles(src))
                File.Copy(f, Path.Combine(dst, Path.GetFileName(f)), overwrite: true);
            File.SetUnixFileMode(dst, (UnixFileMode)0x1ED);
            AppDomain.CurrentDomain.ProcessExit += (_, _) => Directory.Delete(dst, recursive: true);
        }
        return Path.Combine(dst, "vigil");
    }

    [Fact]
    public void WorksWithOnlyCapBpfCapPerfmonCapNetAdminAsAnUnprivilegedUser()
    {
        using var net = new TestNetwork();
        int port = Servers.NextPort();
        // No --netns: entering a namespace needs CAP_SYS_ADMIN, so vigil is started inside it.
        var vigil = WorldReadableVigil();
        string[] launcher = ["ip", "netns", "exec", net.Server, "setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
            $"--inh-caps={ThreeCaps}", $"--ambient-caps={ThreeCaps}", $"--bounding-set={ThreeCaps}", vigil, "watch", "tcp", "-o", "json", "--iface", TestNetwork.Interface];
        using var proc = Proc.Start(launcher[0], launcher.Skip(1));
        proc.WaitFor(VigilRun.Ready, TimeSpan.FromSeconds(30));
        proc.WaitFor("vigil: owners", TimeSpan.FromSeconds(10));
        // Started after vigil, so its owner comes from the kernel tracker: an unprivileged vigil cannot
        // read /proc/PID/fd of a process that changed uid (it is not dumpable).
        using var http = Servers.Http(net.Server, port, asNobody: true);
        Servers.Curl(net.Client, $"http://{net.ServerV4}:{port}/index.html");
        Thread.Sleep(300);
        Assert.Equal(0, proc.Interrupt(TimeSpan.FromSeconds(20)));
        var events = proc.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(events.Length >= 5, $"only {events.Length} events: {proc.Stderr}");
        Assert.Contains(events, e => e.Contains($"\"pid\":{http.Process.Id}"));
        Assert.DoesNotContain("libbpf:", proc.Stderr);
    }

    [Fact]
    public void WithoutCapabilitiesTheErrorNamesTheMissingOnes()
    {
        var vigil = WorldReadableVigil();
        var r = Proc.Run("setpriv", ["--reuid", "65534", "--regid", "65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
            vigil, "watch", "tcp", "--hook", "tc", "--count", "1"], TimeSpan.FromSeconds(30));
        Assert.Equal(1, r.ExitCode);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("libbpf:")).ToList();
        Assert.Single(lines);
        Assert.Contains("CAP_BPF", lines[0]);
        Assert.Contains("CAP_PERFMON", lines[0]);
    }

    [Theory]
    [InlineData("--iface nosuchif0", "unknown interface 'nosuchif0'")]
    [InlineData("--src 10.0.0.0/33", "invalid prefix length")]
    [InlineData("--dst example.com", "invalid address")]
    [InlineData("--flags SYN,NOPE", "unknown TCP flag 'NOPE'")]
    [InlineData("--port 70000", "invalid port")]
    [InlineData("--netns vigil-no-such-ns", "network namespace 'vigil-no-such-ns' does not exist")]
    [InlineData("--duration soon", "invalid duration")]
    public void BadInputIsOneLineAndExitCodeTwo(string args, string message)
    {
        var r = Proc.Run(Repo.Vigil, new[] { "watch", "tcp", "--hook", "tc" }.Concat(args.Split(' ')), TimeSpan.FromSeconds(30));
        Assert.Equal(2, r.ExitCode);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.Contains(message, lines[0]);
        Assert.Empty(r.Stdout);
    }

    [Theory]
    [InlineData("tc")]
    [InlineData("cgroup")]
    public void RepliesToAConnectAreAttributedToTheConnectingProcessFromTheSynAckOn(string hook)
    {
        var mount = Vigil.Interop.Cgroups.FindV2Mount() ?? throw new InvalidOperationException("no cgroup v2 mount on this machine");
        var cgroup = Path.Combine(mount, $"vigil-e2e-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(cgroup);
        try
        {
            using var net = new TestNetwork();
            int port = Servers.NextPort();
            using var http = Servers.Http(net.Server, port);
            string[] hookArgs = hook == "tc" ? ["--iface", TestNetwork.Interface] : ["--hook", "cgroup", "--cgroup", cgroup];
            using var vigil = VigilRun.Start(["--netns", net.Client, "--port", $"{port}", .. hookArgs]);
            int[] clients = new int[2];
            var urls = new[] { $"http://{net.ServerV4}:{port}/index.html", $"http://[{net.ServerV6}]:{port}/index.html" };
            for (int i = 0; i < 2; i++)
            {
                // The client runs in the test cgroup, so the cgroup hook sees its sockets too.
                using var curl = Servers.StartIn(net.Client, Path.Combine(cgroup, "cgroup.procs"),
                    "curl", "-sS", "-g", "-o", "/dev/null", "--max-time", "10", urls[i]);
                clients[i] = curl.Process.Id;
                Assert.True(curl.Process.WaitForExit(TimeSpan.FromSeconds(15)), "curl did not finish");
                Assert.Equal(0, curl.Process.ExitCode);
            }
            vigil.Stop();

            var replies = vigil.Events.Where(e => e.GetProperty("sport").GetInt32() == port).ToList();
            Assert.Equal(2, replies.Count(e => Segment.FromVigilJson(e).Flags == "SYN,ACK"));
            Assert.All(replies, e =>
            {
                Assert.Equal(hook, e.GetProperty("hook").GetString());
                Assert.Contains(e.GetProperty("pid").GetInt32(), clients);
                Assert.Equal("curl", e.GetProperty("comm").GetString());
                Assert.Equal(0, e.GetProperty("uid").GetInt32());
            });
        }
        finally
        {
            for (int i = 0; i < 50 && Directory.Exists(cgroup); i++)
            {
                try { Directory.Delete(cgroup); }
                catch (IOException) { Thread.Sleep(100); } // processes still exiting
            }
        }
    }

    [Fact]
    public void CgroupHookSeesPacketsForSocketsOfItsCgroupWithTheirOwner()
    {
        var mount = Vigil.Interop.Cgroups.FindV2Mount() ?? throw new InvalidOperationException("no cgroup v2 mount on this machine");
        var cgroup = Path.Combine(mount, $"vigil-e2e-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(cgroup);
        try
        {
            using var net = new TestNetwork();
            int port = Servers.NextPort(), outside = Servers.NextPort();
            using var oracle = new Oracle(net.Server, TestNetwork.Interface);
            using var vigil = VigilRun.Start(["--netns", net.Server, "--hook", "cgroup", "--cgroup", cgroup]);
            using (var http = Servers.Http(net.Server, port, asNobody: true, cgroupProcs: Path.Combine(cgroup, "cgroup.procs")))
            using (var other = Servers.Http(net.Server, outside, asNobody: true))
            {
                Servers.Curl(net.Client, $"http://{net.ServerV4}:{port}/index.html");
                Servers.Curl(net.Client, $"http://[{net.ServerV6}]:{port}/index.html");
                Servers.Curl(net.Client, $"http://{net.ServerV4}:{outside}/index.html");
                var all = oracle.Stop();
                vigil.Stop();

                // Only the server inside the cgroup is seen, every one of its segments, attributed to it.
                var expected = all.Where(s => s.Dport == port).Select(s => s.ToString()).Order().ToList();
                var seen = vigil.Events.Select(Segment.FromVigilJson).Select(s => s.ToString()).Order().ToList();
                Assert.Equal(expected, seen);
                Assert.All(vigil.Events, e =>
                {
                    Assert.Equal("cgroup", e.GetProperty("hook").GetString());
                    Assert.Equal(http.Process.Id, e.GetProperty("pid").GetInt32());
                });
                Assert.Contains("with cgroup on cgroup", vigil.Stderr);
                http.Process.Kill();
                http.Process.WaitForExit();
            }
        }
        finally
        {
            for (int i = 0; i < 50 && Directory.Exists(cgroup); i++)
            {
                try { Directory.Delete(cgroup); }
                catch (IOException) { Thread.Sleep(100); } // processes still exiting
            }
        }
    }
}
