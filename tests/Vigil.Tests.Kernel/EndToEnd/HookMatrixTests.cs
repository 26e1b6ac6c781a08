using Vigil.Tests.Kernel.Support;

namespace Vigil.Tests.Kernel.EndToEnd;

/// <summary>The kernel-dependent subset: every hook of the fallback chain on its own, checked segment by
/// segment against tcpdump. Runs natively and, through eng/kernel-tests.sh, inside a VM per Debian kernel
/// (prebuilt; in-guest code runs ~15× slower, so keep this small).</summary>
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
        using var net = new TestNetwork();
        using var cgroup = hook == "cgroup" ? new TestCgroup() : null;
        int port = Servers.NextPort();
        // Started before vigil: its owner is read from /proc, keyed by the server namespace.
        using var http = Servers.Http(net.Server, port, asNobody: true, cgroupProcs: cgroup?.Procs);
        using var oracle = new Oracle(net.Server, Iface);
        string[] where = hook switch
        {
            "tc" => ["--iface", Iface],
            "cgroup" => ["--cgroup", cgroup!.Path],
            _ => [], // kprobe/fentry see every namespace: the port filter keeps this test's traffic
        };
        using var vigil = VigilRun.Start(["--netns", net.Server, "--hook", hook, "--port", $"{port}", .. where]);
        Assert.Contains($"with {hook} on", vigil.Stderr);

        Servers.Curl(net.Client, $"http://{net.ServerV4}:{port}/index.html");
        Servers.Curl(net.Client, $"http://[{net.ServerV6}]:{port}/index.html");
        var toServer = oracle.Stop().Where(s => s.Dport == port).Select(s => s.ToString()).Order().ToList();
        vigil.Stop();
        Assert.Equal(0, vigil.ExitCode);

        // Global hooks also see the replies arriving in the client namespace (sport = port): compare what
        // reached the server, which is what the oracle captured.
        var events = vigil.Events.Where(e => e.GetProperty("dport").GetInt32() == port).ToList();
        var seen = events.Select(Segment.FromVigilJson).Select(s => s.ToString()).Order().ToList();
        Assert.True(toServer.Count >= 10, $"the oracle saw only {toServer.Count} segments");
        Assert.True(toServer.SequenceEqual(seen),
            $"{hook}: {toServer.Count} expected vs {seen.Count} seen\nmissing: {string.Join("\n  ", toServer.Except(seen).Take(10))}" +
            $"\nextra: {string.Join("\n  ", seen.Except(toServer).Take(10))}\nstderr: {vigil.Stderr}");
        // Both programs of a tracing hook ran (tcp_v4_rcv and tcp_v6_rcv).
        Assert.Contains(events, e => e.GetProperty("family").GetInt32() == 4);
        Assert.Contains(events, e => e.GetProperty("family").GetInt32() == 6);
        Assert.All(vigil.Events, e => Assert.Equal(hook, e.GetProperty("hook").GetString()));
        Assert.All(events, e =>
        {
            Assert.Equal(http.Process.Id, e.GetProperty("pid").GetInt32());
            Assert.Equal(Servers.Nobody, e.GetProperty("uid").GetInt32());
        });
        long packets = vigil.Kernel("packets"), seenByKernel = vigil.Kernel("seen");
        Assert.Equal(packets, seenByKernel + vigil.Kernel("not_tcp") + vigil.Kernel("malformed"));
        Assert.Equal(0, vigil.Kernel("malformed"));
        Assert.True(vigil.Stats.GetProperty("invariant_holds").GetBoolean());
    }
}
