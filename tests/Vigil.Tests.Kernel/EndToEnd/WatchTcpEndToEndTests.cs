using System.Text.Json;
using Vigil.Tests.Kernel.Support;

namespace Vigil.Tests.Kernel.EndToEnd;

/// <summary>`vigil watch tcp` against real traffic between two namespaces, with tcpdump as the oracle.</summary>
public class WatchTcpEndToEndTests
{
    private static string Iface => TestNetwork.Interface;

    private static void AssertSameSegments(IEnumerable<Segment> expected, IEnumerable<Segment> actual, string what)
    {
        var e = expected.Select(s => s.ToString()).Order().ToList();
        var a = actual.Select(s => s.ToString()).Order().ToList();
        var missing = e.Except(a).Take(10).ToList();
        var extra = a.Except(e).Take(10).ToList();
        Assert.True(e.SequenceEqual(a),
            $"{what}: {e.Count} expected vs {a.Count} seen\nmissing: {string.Join("\n  ", missing)}\nextra: {string.Join("\n  ", extra)}");
    }

    private static void AssertCountersAddUp(VigilRun run)
    {
        long packets = run.Kernel("packets"), seen = run.Kernel("seen");
        Assert.Equal(packets, seen + run.Kernel("not_tcp") + run.Kernel("malformed"));
        Assert.Equal(seen, run.Kernel("filtered") + run.Kernel("sampled") + run.Kernel("emitted") + run.Kernel("ring_full") + run.Kernel("aggregated"));
        Assert.Equal(run.Kernel("emitted"), run.User("received"));
        Assert.True(run.Stats.GetProperty("invariant_holds").GetBoolean());
    }

    [Fact]
    public void EveryIncomingSegmentMatchesTheOracle_IPv4AndIPv6_WithOwnersAndPcap()
    {
        using var net = new TestNetwork();
        int httpPort = Servers.NextPort(), ncPort = Servers.NextPort();
        var pcap = Path.Combine(Path.GetTempPath(), $"vigil-e2e-{Environment.ProcessId}-{Guid.NewGuid():N}.pcapng");
        // Started before vigil: its owner comes from /proc. netcat starts after: from the kernel tracker.
        using var http = Servers.Http(net.Server, httpPort, asNobody: true);
        using var oracle = new Oracle(net.Server, Iface);
        using var vigil = VigilRun.Start(["--netns", net.Server, "--iface", Iface, "--pcap", pcap]);
        using var nc = Servers.Netcat(net.Server, ncPort);
        try
        {
            Servers.Curl(net.Client, $"http://{net.ServerV4}:{httpPort}/index.html");
            Servers.Curl(net.Client, $"http://[{net.ServerV6}]:{httpPort}/index.html");
            Servers.PythonRequest(net.Client, net.ServerV6, httpPort);
            Servers.NetcatSend(net.Client, net.ServerV4, ncPort, "hello vigil\n");

            var expected = oracle.Stop();
            vigil.Stop();
            Assert.Equal(0, vigil.ExitCode);
            Assert.True(expected.Count >= 20, $"oracle saw only {expected.Count} segments");
            Assert.Contains(expected, s => s.Dst == net.ServerV6);
            AssertSameSegments(expected, vigil.Events.Select(Segment.FromVigilJson), "JSON events");
            AssertCountersAddUp(vigil);

            foreach (var ev in vigil.Events)
            {
                Assert.Equal("tc", ev.GetProperty("hook").GetString());
                Assert.Equal(Iface, ev.GetProperty("iface").GetString());
                int dport = ev.GetProperty("dport").GetInt32();
                if (dport == httpPort)
                {
                    Assert.Equal(http.Process.Id, ev.GetProperty("pid").GetInt32());
                    Assert.Equal(Servers.Nobody, ev.GetProperty("uid").GetInt32());
                    Assert.Equal("python3", ev.GetProperty("comm").GetString());
                }
                else if (dport == ncPort)
                {
                    Assert.Equal(nc.Process.Id, ev.GetProperty("pid").GetInt32());
                    Assert.Equal(0, ev.GetProperty("uid").GetInt32());
                    Assert.Equal("nc", ev.GetProperty("comm").GetString());
                }
            }

            // The pcap-ng file opens in tshark, holds the same segments, and names the owner per packet.
            AssertSameSegments(expected, Segment.FromCapture(pcap), "pcap-ng");
            var comments = Proc.Run("tshark", "-r", pcap, "-T", "fields", "-e", "frame.comment").EnsureSuccess("tshark comments").Stdout;
            Assert.Contains($"pid={http.Process.Id}", comments);
            Assert.Contains($"pid={nc.Process.Id}", comments);
        }
        finally
        {
            if (File.Exists(pcap)) File.Delete(pcap);
        }
    }

    [Fact]
    public void KernelFiltersKeepOnlyWhatWasAsked()
    {
        using var net = new TestNetwork();
        int portA = Servers.NextPort(), portB = Servers.NextPort();
        using var a = Servers.Http(net.Server, portA);
        using var b = Servers.Http(net.Server, portB);
        using var oracle = new Oracle(net.Server, Iface);
        using var byPort = VigilRun.Start(["--netns", net.Server, "--iface", Iface, "--port", $"{portA}"]);
        using var byFlags = VigilRun.Start(["--netns", net.Server, "--iface", Iface, "--flags", "SYN,FIN", "-6"]);
        using var bySource = VigilRun.Start(["--netns", net.Server, "--iface", Iface, "--src", net.ClientV4 + "/32", "--dst", net.ServerV4.Split('.')[0] + ".0.0.0/8"]);

        foreach (var port in new[] { portA, portB })
        {
            Servers.Curl(net.Client, $"http://{net.ServerV4}:{port}/index.html");
            Servers.Curl(net.Client, $"http://[{net.ServerV6}]:{port}/index.html");
        }
        var all = oracle.Stop();
        byPort.Stop();
        byFlags.Stop();
        bySource.Stop();

        AssertSameSegments(all.Where(s => s.Sport == portA || s.Dport == portA), byPort.Events.Select(Segment.FromVigilJson), "--port");
        AssertSameSegments(all.Where(s => s.Dst.Contains(':') && (s.Flags.Contains("SYN") || s.Flags.Contains("FIN"))),
            byFlags.Events.Select(Segment.FromVigilJson), "--flags SYN,FIN -6");
        AssertSameSegments(all.Where(s => s.Src == net.ClientV4), bySource.Events.Select(Segment.FromVigilJson), "--src/--dst");
        foreach (var run in new[] { byPort, byFlags, bySource })
        {
            Assert.True(run.Kernel("filtered") > 0, "the kernel filtered nothing");
            AssertCountersAddUp(run);
        }
    }

    [Fact]
    public void SamplingKeepsOneInNPerFlowAndEveryControlSegment()
    {
        using var net = new TestNetwork();
        int port = Servers.NextPort();
        const int n = 4;
        using var http = Servers.Http(net.Server, port);
        using var oracle = new Oracle(net.Server, Iface);
        using var vigil = VigilRun.Start(["--netns", net.Server, "--iface", Iface, "--sample", $"{n}"]);
        for (int i = 0; i < 3; i++)
            Servers.Curl(net.Client, $"http://{net.ServerV4}:{port}/big.bin");
        var all = oracle.Stop();
        vigil.Stop();

        // The kernel keeps packet i of a flow if i % n == 0 or it carries SYN, FIN or RST. On two CPUs
        // two packets of a flow may pass tcpdump's tap and the kernel's per-flow counter in different
        // orders, so *which* packet is the i-th is not fixed — but how many are kept, and that every
        // control segment is kept, is.
        static bool Control(Segment s) => s.Flags.Contains("SYN") || s.Flags.Contains("FIN") || s.Flags.Contains("RST");
        var seen = vigil.Events.Select(Segment.FromVigilJson).ToList();
        var oracleFlows = all.GroupBy(s => (s.Src, s.Sport, s.Dst, s.Dport)).ToList();
        Assert.Equal(oracleFlows.Count, seen.Select(s => (s.Src, s.Sport, s.Dst, s.Dport)).Distinct().Count());
        foreach (var flow in oracleFlows)
        {
            var packets = flow.ToList();
            var kept = seen.Where(s => (s.Src, s.Sport, s.Dst, s.Dport) == flow.Key).Select(s => s.ToString()).ToList();
            // Every kept segment really arrived; every control segment is kept.
            Assert.Empty(kept.Except(packets.Select(s => s.ToString())));
            Assert.Empty(packets.Where(Control).Select(s => s.ToString()).Except(kept));
            // Kept = indices with i % n == 0, plus control segments at other indices. The SYN opens the
            // flow (index 0), so it is never one of the extras.
            int every = (packets.Count + n - 1) / n;
            int extras = packets.Count(s => Control(s) && !s.Flags.Contains("SYN"));
            Assert.InRange(kept.Count, every, every + extras);
        }
        Assert.Equal(all.Count - seen.Count, vigil.Kernel("sampled"));
        Assert.True(vigil.Kernel("sampled") > 0);
        AssertCountersAddUp(vigil);
    }

    [Fact]
    [Trait("Matrix", "true")]
    public void AutoChoosesTheFirstWorkingHookAndSaysWhyItSkippedTheOthers()
    {
        // The choice is predicted by probing this kernel (as `vigil doctor` does), not from a version table.
        var expected = KernelHooks.Probed.TcpAutoHook ?? throw new Xunit.Sdk.XunitException("no hook of the chain works here");
        if (KernelHooks.Required.Contains("kprobe"))
            Assert.Equal("kprobe", expected); // the documented order: a kernel with kprobes gets kprobe
        using var net = new TestNetwork();
        using var vigil = VigilRun.Start(["--netns", net.Server, "--iface", Iface, "--hook", "auto"]);
        vigil.Stop();
        var line = vigil.Stderr.Split('\n').First(l => l.StartsWith(VigilRun.Ready, StringComparison.Ordinal));
        Assert.Contains(expected == "tc" ? $"with tc on ingress of {Iface}" : $"with {expected} on", line);
        // Every hook before the chosen one is named with the reason it was skipped; none after it.
        var chain = new[] { "kprobe", "fentry", "tc", "cgroup" };
        int chosen = Array.IndexOf(chain, expected);
        if (chosen == 0)
            Assert.DoesNotContain("skipped", line);
        else
            Assert.Contains($"skipped {chain[0]}:", line);
        foreach (var earlier in chain.Skip(1).Take(Math.Max(0, chosen - 1)))
            Assert.Contains($"; {earlier}:", line);
    }

    [Fact]
    public void CountEndsTheRunAfterExactlyNPackets()
    {
        using var net = new TestNetwork();
        int port = Servers.NextPort();
        using var http = Servers.Http(net.Server, port);
        var proc = Proc.Start("ip", ["netns", "exec", net.Server, Repo.Vigil, "watch", "tcp", "-o", "json", "--iface", Iface, "--count", "3"]);
        using (proc)
        {
            proc.WaitFor(VigilRun.Ready, TimeSpan.FromSeconds(30));
            Servers.Curl(net.Client, $"http://{net.ServerV4}:{port}/index.html");
            Assert.True(proc.Process.WaitForExit(TimeSpan.FromSeconds(10)), "vigil did not stop after --count");
            proc.Process.WaitForExit();
            Assert.Equal(0, proc.Process.ExitCode);
            Assert.Equal(3, proc.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        }
    }

    [Fact]
    public void ClosedStdoutEndsTheRunQuietly()
    {
        using var net = new TestNetwork();
        int port = Servers.NextPort();
        using var http = Servers.Http(net.Server, port);
        // As `vigil watch tcp -o json | head -n 2`: once head exits, vigil must stop by itself, exit 0, no stack trace.
        var script = $"ip netns exec {net.Server} '{Repo.Vigil}' watch tcp -o json --iface {Iface} | head -n 2 >/dev/null; echo \"vigil-exit=${{PIPESTATUS[0]}}\"";
        using var proc = Proc.Start("/bin/bash", ["-c", script]);
        proc.WaitFor(VigilRun.Ready, TimeSpan.FromSeconds(30));
        // Like tcpdump, vigil learns that the pipe is closed at its next write: keep packets coming (bounded).
        for (int i = 0; i < 40 && !proc.Process.HasExited; i++)
        {
            Servers.Curl(net.Client, $"http://{net.ServerV4}:{port}/index.html");
            Thread.Sleep(100);
        }
        Assert.True(proc.Process.WaitForExit(TimeSpan.FromSeconds(15)), "vigil kept running after its reader went away");
        proc.Process.WaitForExit();
        Assert.Contains("vigil-exit=0", proc.Stdout);
        Assert.DoesNotContain("Unhandled exception", proc.Stderr);
        Assert.DoesNotContain("   at ", proc.Stderr);
    }

    [Fact]
    public void FlowsViewShowsPerFlowTotalsAggregatedInTheKernel()
    {
        using var net = new TestNetwork();
        int port = Servers.NextPort();
        using var http = Servers.Http(net.Server, port);
        using var oracle = new Oracle(net.Server, Iface);
        var proc = Proc.Start("ip", ["netns", "exec", net.Server, Repo.Vigil, "watch", "tcp", "--flows", "--iface", Iface, "--duration", "4s"]);
        using (proc)
        {
            proc.WaitFor(VigilRun.Ready, TimeSpan.FromSeconds(30));
            Servers.Curl(net.Client, $"http://{net.ServerV4}:{port}/big.bin");
            var all = oracle.Stop();
            Assert.True(proc.Process.WaitForExit(TimeSpan.FromSeconds(15)));
            proc.Process.WaitForExit();
            var flow = all.Where(s => s.Dport == port).ToList();
            int packets = flow.Count;
            long bytes = flow.Sum(s => (long)s.Len);
            // The last snapshot lists the flow with the oracle's packet and byte totals.
            var last = proc.Stdout.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Last();
            var row = last.Split('\n').FirstOrDefault(l => l.Contains($"{net.ServerV4}:{port}"))
                ?? throw new Xunit.Sdk.XunitException("flow not shown:\n" + last);
            Assert.Contains($" {packets} ", row + " ");
            Assert.Contains($" {bytes} ", row + " ");
        }
    }
}
