using Vigil.Tests.Kernel.Support;

namespace Vigil.Tests.Kernel.EndToEnd;

/// <summary>The kernel-dependent subset: every hook of the fallback chain on its own, checked segment by
/// segment against tcpdump. Runs natively and, through eng/kernel-tests.sh, inside a VM per Debian kernel
/// (prebuilt; in-guest code runs ~15× slower, so keep this small: one test per hook, two vigils at once).</summary>
[Trait("Matrix", "true")]
public class HookMatrixTests
{
    private const string Iface = TestNetwork.Interface;

    [Theory]
    [InlineData("kprobe")]
    [InlineData("fentry")]
    [InlineData("tc")]
    [InlineData("cgroup")]
    public void EachHookOfTheChainSeesEveryIncomingSegmentWithItsOwner(string hook)
    {
        KernelHooks.SkipUnlessOffered(hook);
        bool global = hook is "kprobe" or "fentry"; // they see every namespace, the client's too
        using var net = new TestNetwork();
        using var cgroup = hook == "cgroup" ? new TestCgroup() : null;
        int port = Servers.NextPort();
        var pcap = Path.Combine(Path.GetTempPath(), $"vigil-matrix-{Environment.ProcessId}-{Guid.NewGuid():N}.pcapng");
        // Started before vigil: its owner is read from /proc, keyed by the server namespace.
        using var http = Servers.Http(net.Server, port, asNobody: true, cgroupProcs: cgroup?.Procs);
        using var oracle = new Oracle(net.Server, Iface);
        string[] args = ["--netns", net.Server, "--hook", hook, "--port", $"{port}", .. hook switch
        {
            "tc" => new[] { "--iface", Iface },
            "cgroup" => ["--cgroup", cgroup!.Path],
            _ => [], // the port filter keeps this test's traffic
        }];
        // Per-packet events (+ pcap: the snap copy of each hook) and the in-kernel flow aggregation, at once.
        using var vigil = VigilRun.Start([.. args, "--pcap", pcap]);
        using var flows = Proc.Start(Repo.Vigil, ["watch", "tcp", "--flows", .. args]);
        try
        {
            flows.WaitFor(VigilRun.Ready, TimeSpan.FromSeconds(60));
            Assert.Contains($"with {hook} on", vigil.Stderr);

            int[] clients = new int[2];
            string[] urls = [$"http://{net.ServerV4}:{port}/big.bin", $"http://[{net.ServerV6}]:{port}/index.html"];
            for (int i = 0; i < urls.Length; i++)
            {
                using var curl = Servers.StartIn(net.Client, null, "curl", "-sS", "-g", "-o", "/dev/null", "--max-time", "30", urls[i]);
                clients[i] = curl.Process.Id;
                Assert.True(curl.Process.WaitForExit(TimeSpan.FromSeconds(40)), "curl did not finish");
                Assert.Equal(0, curl.Process.ExitCode);
            }
            WaitUntilConnectionsAreDone(net, port);
            var captured = oracle.Stop().Where(s => s.Dport == port).ToList();
            var toServer = captured.Select(s => s.ToString()).Order().ToList();
            vigil.Stop();
            Assert.Equal(0, flows.Interrupt(TimeSpan.FromSeconds(30)));
            Assert.Equal(0, vigil.ExitCode);

            // What reached the server, which is what the oracle captured: every segment, exactly.
            var events = vigil.Events.Where(e => e.GetProperty("dport").GetInt32() == port).ToList();
            var seen = events.Select(Segment.FromVigilJson).Select(s => s.ToString()).Order().ToList();
            Assert.True(toServer.Count >= 10, $"the oracle saw only {toServer.Count} segments");
            var unseeable = hook == "cgroup" ? LateSegmentsOfClosedSockets(captured, seen) : [];
            var expected = toServer.Except(unseeable).ToList();
            AssertSame(expected, seen, $"{hook} events", vigil.Stderr + "\ntcpdump: " + oracle.Report);
            var inPcap = Segment.FromCapture(pcap).Where(s => s.Dport == port).Select(s => s.ToString()).Order().ToList();
            AssertSame(expected, inPcap, $"{hook} pcap-ng", vigil.Stderr);

            // Both programs of a tracing hook ran (tcp_v4_rcv and tcp_v6_rcv); fields every hook must fill.
            Assert.Contains(events, e => e.GetProperty("family").GetInt32() == 4);
            Assert.Contains(events, e => e.GetProperty("family").GetInt32() == 6);
            Assert.All(vigil.Events, e => Assert.Equal(hook, e.GetProperty("hook").GetString()));
            Assert.All(events, e =>
            {
                Assert.Equal(Iface, e.GetProperty("iface").GetString());
                Assert.Equal(http.Process.Id, e.GetProperty("pid").GetInt32());
                Assert.Equal(Servers.Nobody, e.GetProperty("uid").GetInt32());
            });
            if (global)
            {
                // The replies arriving in the client namespace belong to curl, from the SYN-ACK on.
                var replies = vigil.Events.Where(e => e.GetProperty("sport").GetInt32() == port).ToList();
                Assert.Equal(2, replies.Count(e => Segment.FromVigilJson(e).Flags == "SYN,ACK"));
                Assert.All(replies, e => Assert.Contains(e.GetProperty("pid").GetInt32(), clients));
            }
            Assert.Equal(0, vigil.Kernel("malformed"));
            Assert.True(vigil.Stats.GetProperty("invariant_holds").GetBoolean());

            // The flow view's last snapshot has the IPv4 connection with the oracle's packet and byte totals.
            var flow = captured.Where(s => s.Dst == net.ServerV4 && !unseeable.Contains(s.ToString())).ToList();
            var last = flows.Stdout.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Last();
            // Rows are "LOCAL <- REMOTE": the server's side of it (global hooks also show the client's).
            var row = last.Split('\n').FirstOrDefault(l => l.TrimStart().StartsWith($"{net.ServerV4}:{port} ", StringComparison.Ordinal))
                ?? throw new Xunit.Sdk.XunitException($"{hook}: flow not shown:\n{last}\n{flows.Stderr}");
            Assert.Contains($" {flow.Count} ", row + " ");
            Assert.Contains($" {flow.Sum(s => (long)s.Len)} ", row + " ");
        }
        finally
        {
            if (File.Exists(pcap)) File.Delete(pcap);
        }
    }

    /// <summary>The oracle stops before vigil does: a segment arriving between the two would be vigil's alone.
    /// curl exiting does not end the traffic — a FIN not yet acknowledged is retransmitted (slowly, under qemu)
    /// and answered with a duplicate ACK (seen in the 6.1 VM as one ACK vigil had twice). So wait until no
    /// socket on either side of the port can still send on its own: only listeners and TIME-WAIT (which only
    /// answers) are left.</summary>
    private static void WaitUntilConnectionsAreDone(TestNetwork net, int port)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        bool Busy(string ns) => TestNetwork.Exec(ns, "ss", "-Htan", $"( sport = :{port} or dport = :{port} )").Stdout
            .Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Any(l => !l.StartsWith("LISTEN", StringComparison.Ordinal) && !l.StartsWith("TIME-WAIT", StringComparison.Ordinal));
        while ((Busy(net.Server) || Busy(net.Client)) && sw.Elapsed < TimeSpan.FromSeconds(20))
            Thread.Sleep(100);
    }

    /// <summary>cgroup_skb ingress runs from sk_filter on full sockets only. The HTTP server closes first; once
    /// its FIN is acknowledged, its orphaned FIN_WAIT2 socket becomes a TIME_WAIT mini-socket, and the client's
    /// FIN, if it comes in a segment of its own after that (timing: seen in a slow VM), reaches no full socket
    /// and no cgroup program (docs/programs/tcp_inspect.md). Exactly those may be missing: the last segment of
    /// its connection, without payload, carrying FIN. Anything else missing still fails.</summary>
    private static HashSet<string> LateSegmentsOfClosedSockets(List<Segment> captured, List<string> seen)
    {
        var lastOfConnection = captured.GroupBy(s => (s.Src, s.Sport)).Select(g => g.Last().ToString()).ToHashSet();
        return captured
            .Where(s => s.Len == 0 && s.Flags.Contains("FIN", StringComparison.Ordinal))
            .Select(s => s.ToString())
            .Where(s => lastOfConnection.Contains(s) && !seen.Contains(s))
            .ToHashSet();
    }

    private static void AssertSame(List<string> expected, List<string> actual, string what, string stderr) =>
        Assert.True(expected.SequenceEqual(actual),
            $"{what}: {expected.Count} expected vs {actual.Count} seen\nmissing: {string.Join("\n  ", expected.Except(actual).Take(10))}" +
            $"\nextra: {string.Join("\n  ", actual.Except(expected).Take(10))}" +
            $"\ncounts differ: {string.Join("\n  ", expected.Concat(actual).Distinct().Where(s => expected.Count(x => x == s) != actual.Count(x => x == s)).Select(s => $"{s} expected {expected.Count(x => x == s)}x, seen {actual.Count(x => x == s)}x").Take(10))}" +
            $"\nstderr: {stderr}");
}
