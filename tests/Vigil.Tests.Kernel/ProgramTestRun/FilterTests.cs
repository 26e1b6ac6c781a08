using System.Net;
using Vigil.Core;
using Vigil.Core.Net;
using Vigil.Core.Tcp;
using Vigil.Tests.Kernel.Support;
using Vigil.Wire;

namespace Vigil.Tests.Kernel.TestRun;

/// <summary>In-kernel filters, configured exactly as the CLI does: TcpFilterSpec → TcpFilterCompiler → .rodata
/// config + port array + LPM tries. A packet either passes every configured filter (emitted) or is counted
/// as filtered.</summary>
public class FilterTests
{
    private static byte[] V4(string src, string dst, ushort sport = 40000, ushort dport = 443, byte flags = 0x18) =>
        Packet.Ipv4Tcp(new Ipv4Spec { Source = IPAddress.Parse(src), Destination = IPAddress.Parse(dst) },
            new TcpSpec { SourcePort = sport, DestinationPort = dport, Flags = flags });

    private static byte[] V6(string src, string dst, ushort sport = 40000, ushort dport = 443, byte flags = 0x18) =>
        Packet.Ipv6Tcp(new Ipv6Spec { Source = IPAddress.Parse(src), Destination = IPAddress.Parse(dst) },
            new TcpSpec { SourcePort = sport, DestinationPort = dport, Flags = flags });

    /// <summary>Runs each frame and checks it was kept (one event) or filtered; then checks the totals.</summary>
    private static void Expect(TcpFilterSpec spec, params (byte[] Frame, bool Kept)[] cases)
    {
        using var h = TcpProgramHarness.Load(spec);
        for (int i = 0; i < cases.Length; i++)
        {
            var outcome = h.Run(cases[i].Frame);
            Assert.True(outcome.Delta[TcpStat.Seen] == 1, $"case {i}: not seen: {outcome.Delta}");
            if (cases[i].Kept)
                Assert.True(outcome.Events.Count == 1 && outcome.Delta[TcpStat.Emitted] == 1, $"case {i} should be kept: {outcome.Delta}");
            else
                Assert.True(outcome.Events.Count == 0 && outcome.Delta[TcpStat.Filtered] == 1, $"case {i} should be filtered: {outcome.Delta}");
        }
        var total = h.Counters();
        Assert.Equal((ulong)cases.Count(c => c.Kept), total[TcpStat.Emitted]);
        Assert.Equal((ulong)cases.Count(c => !c.Kept), total[TcpStat.Filtered]);
    }

    [Fact]
    public void PortMatchesEitherSide()
    {
        Expect(new TcpFilterSpec { Ports = ["443", "22"] },
            (V4("192.0.2.1", "192.0.2.2", sport: 50000, dport: 443), true),  // destination port
            (V4("192.0.2.1", "192.0.2.2", sport: 22, dport: 50000), true),   // source port
            (V6("2001:db8::1", "2001:db8::2", sport: 50000, dport: 22), true),
            (V4("192.0.2.1", "192.0.2.2", sport: 50000, dport: 80), false),
            (V6("2001:db8::1", "2001:db8::2", sport: 444, dport: 442), false),
            (V4("192.0.2.1", "192.0.2.2", sport: 1, dport: 65535), false));
    }

    [Fact]
    public void PortsAtTheEndsOfTheRange()
    {
        Expect(new TcpFilterSpec { Ports = ["1", "65535"] },
            (V4("192.0.2.1", "192.0.2.2", sport: 1, dport: 2), true),
            (V4("192.0.2.1", "192.0.2.2", sport: 2, dport: 65535), true),
            (V4("192.0.2.1", "192.0.2.2", sport: 0, dport: 65534), false));
    }

    [Fact]
    public void SourceCidrV4()
    {
        Expect(new TcpFilterSpec { Sources = ["10.0.0.0/8", "192.0.2.7/32"] },
            (V4("10.255.1.2", "192.0.2.2"), true),
            (V4("10.0.0.0", "192.0.2.2"), true),
            (V4("192.0.2.7", "10.1.1.1"), true),
            (V4("11.0.0.1", "10.1.1.1"), false),   // destination in range does not count
            (V4("192.0.2.8", "192.0.2.7"), false),
            (V4("9.255.255.255", "10.0.0.1"), false));
    }

    [Fact]
    public void HostBitsOfAPrefixAreIgnored()
    {
        Expect(new TcpFilterSpec { Sources = ["10.1.2.3/8"] },
            (V4("10.200.0.1", "192.0.2.2"), true),
            (V4("11.1.2.3", "192.0.2.2"), false));
    }

    [Fact]
    public void DestinationCidrV4OfLength0MatchesAllIpv4ButNoIpv6()
    {
        Expect(new TcpFilterSpec { Destinations = ["0.0.0.0/0"] },
            (V4("192.0.2.1", "198.51.100.1"), true),
            (V4("192.0.2.1", "255.255.255.255"), true),
            (V6("2001:db8::1", "2001:db8::2"), false),
            (V6("2001:db8::1", "::1"), false));
    }

    [Fact]
    public void SourceCidrV6()
    {
        Expect(new TcpFilterSpec { Sources = ["2001:db8:aa::/48", "fe80::1/128"] },
            (V6("2001:db8:aa:ffff::1", "2001:db8::2"), true),
            (V6("fe80::1", "2001:db8::2"), true),
            (V6("2001:db8:ab::1", "2001:db8:aa::2"), false),
            (V6("fe80::2", "2001:db8::2"), false),
            (V4("10.0.0.1", "10.0.0.2"), false));
    }

    [Fact]
    public void DestinationCidrV6()
    {
        Expect(new TcpFilterSpec { Destinations = ["2001:db8:1::/64"] },
            (V6("2001:db8::9", "2001:db8:1::20"), true),
            (V6("2001:db8:1::20", "2001:db8:1:1::20"), false));
    }

    /// <summary>An IPv4 prefix lives at ::ffff:a.b.c.d/96+n: it cannot match IPv6 traffic, even traffic whose
    /// address ends in the same 32 bits.</summary>
    [Fact]
    public void Ipv4PrefixDoesNotMatchIpv6Traffic()
    {
        Expect(new TcpFilterSpec { Sources = ["192.0.2.0/24"] },
            (V4("192.0.2.99", "198.51.100.1"), true),
            (V6("::c000:263", "2001:db8::2"), false),      // ::192.0.2.99 (IPv4-compatible, not mapped)
            (V6("2001:db8::c000:263", "2001:db8::2"), false));
    }

    /// <summary>IPv4-mapped IPv6 addresses on the wire look like IPv4 to the trie: the model holds every IPv4
    /// address in that form. Documented here so a change to the encoding is a decision, not an accident.</summary>
    [Fact]
    public void PrefixesMatchOnlyTheirOwnFamily()
    {
        // An IPv6 packet carrying an IPv4-mapped address is IPv6 traffic: only IPv6 prefixes match it,
        // and ::/0 means "all IPv6", not everything.
        Expect(new TcpFilterSpec { Sources = ["192.0.2.0/24"] },
            (V6("::ffff:192.0.2.99", "2001:db8::2"), false),
            (V4("192.0.2.99", "198.51.100.2"), true));
        Expect(new TcpFilterSpec { Sources = ["::/0"] },
            (V4("192.0.2.99", "198.51.100.2"), false),
            (V6("2001:db8::1", "2001:db8::2"), true),
            (V6("::ffff:192.0.2.99", "2001:db8::2"), true));
        Expect(new TcpFilterSpec { Destinations = ["0.0.0.0/0"] },
            (V4("192.0.2.99", "198.51.100.2"), true),
            (V6("2001:db8::1", "2001:db8::2"), false));
    }

    [Fact]
    public void SourceAndDestinationAndPortMustAllMatch()
    {
        Expect(new TcpFilterSpec { Sources = ["10.0.0.0/8"], Destinations = ["192.168.0.0/16"], Ports = ["443"] },
            (V4("10.0.0.1", "192.168.1.1", dport: 443), true),
            (V4("11.0.0.1", "192.168.1.1", dport: 443), false),
            (V4("10.0.0.1", "192.169.1.1", dport: 443), false),
            (V4("10.0.0.1", "192.168.1.1", dport: 80), false));
    }

    [Theory]
    [InlineData("192.0.2.0/33")]
    [InlineData("2001:db8::/129")]
    [InlineData("192.0.2.0/-1")]
    [InlineData("192.0.2.0/")]
    [InlineData("300.0.0.1/8")]
    [InlineData("fe80::1%eth0")]
    public void InvalidCidrsAreRejectedByTheCompiler(string cidr)
    {
        Assert.Throws<UsageException>(() => TcpFilterCompiler.Compile(new TcpFilterSpec { Sources = [cidr] }));
        Assert.Throws<UsageException>(() => TcpFilterCompiler.Compile(new TcpFilterSpec { Destinations = [cidr] }));
    }

    [Fact]
    public void FlagsAnyOf()
    {
        Expect(new TcpFilterSpec { Flags = "SYN,RST" },
            (V4("192.0.2.1", "192.0.2.2", flags: 0x02), true),  // SYN
            (V4("192.0.2.1", "192.0.2.2", flags: 0x12), true),  // SYN|ACK
            (V4("192.0.2.1", "192.0.2.2", flags: 0x14), true),  // RST|ACK
            (V6("2001:db8::1", "2001:db8::2", flags: 0xff), true),
            (V4("192.0.2.1", "192.0.2.2", flags: 0x10), false), // ACK
            (V4("192.0.2.1", "192.0.2.2", flags: 0x11), false), // FIN|ACK
            (V4("192.0.2.1", "192.0.2.2", flags: 0x00), false));
    }

    [Fact]
    public void FlagFilterOfEachSingleFlag()
    {
        foreach (var (name, bit) in new[] { ("FIN", 0x01), ("SYN", 0x02), ("RST", 0x04), ("PSH", 0x08), ("ACK", 0x10), ("URG", 0x20), ("ECE", 0x40), ("CWR", 0x80) })
        {
            Expect(new TcpFilterSpec { Flags = name },
                (V4("192.0.2.1", "192.0.2.2", flags: (byte)bit), true),
                (V4("192.0.2.1", "192.0.2.2", flags: (byte)(0xff & ~bit)), false));
        }
    }

    [Fact]
    public void OnlyIpv4()
    {
        Expect(new TcpFilterSpec { OnlyIPv4 = true },
            (V4("192.0.2.1", "192.0.2.2"), true),
            (V6("2001:db8::1", "2001:db8::2"), false),
            (V6("::ffff:192.0.2.1", "::ffff:192.0.2.2"), false)); // an IPv6 packet, whatever its addresses
    }

    [Fact]
    public void OnlyIpv6()
    {
        Expect(new TcpFilterSpec { OnlyIPv6 = true },
            (V4("192.0.2.1", "192.0.2.2"), false),
            (V6("2001:db8::1", "2001:db8::2"), true));
    }

    [Fact]
    public void FilteredPacketsAreNeitherSampledNorAggregated()
    {
        using var h = TcpProgramHarness.Load(new TcpFilterSpec { Ports = ["443"], FlowsOnly = true });
        Assert.Equal(1ul, h.Run(V4("192.0.2.1", "192.0.2.2", dport: 80)).Delta[TcpStat.Filtered]);
        Assert.Empty(h.Sensor.ReadFlows());
        Assert.Equal(1ul, h.Run(V4("192.0.2.1", "192.0.2.2", dport: 443)).Delta[TcpStat.Aggregated]);
        var flow = Assert.Single(h.Sensor.ReadFlows());
        Assert.Equal(443, flow.Key.Lport);
    }

    [Fact]
    public void EmittedEventOfAFilteredSensorCarriesTheMatchingAddresses()
    {
        using var h = TcpProgramHarness.Load(new TcpFilterSpec { Destinations = ["198.51.100.0/24"] });
        var ev = h.Run(V4("192.0.2.1", "198.51.100.77")).SingleEvent();
        Assert.Equal(IpAddress16.From(IPAddress.Parse("198.51.100.77")), ev.Packet.Destination);
    }
}
