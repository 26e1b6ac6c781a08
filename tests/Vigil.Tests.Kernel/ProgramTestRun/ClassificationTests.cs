using System.Net;
using Vigil.Core.Net;
using Vigil.Interop;
using Vigil.Sensors.Tcp;
using Vigil.Tests.Kernel.Support;
using Vigil.Wire;

namespace Vigil.Tests.Kernel.TestRun;

/// <summary>How the parser classifies input: every flag byte decoded exactly; malformed headers counted as
/// malformed (never emitted, never "seen"); other protocols counted as not TCP.</summary>
public class ClassificationTests
{
    private static readonly TcpSpec Tcp = new() { Payload = "hello"u8.ToArray() };

    [Fact]
    public void EveryFlagByteIsDecodedExactly()
    {
        using var h = TcpProgramHarness.Load();
        var ip = new Ipv4Spec();
        for (int flags = 0; flags < 256; flags++)
        {
            var tcp = Tcp with { Flags = (byte)flags, Seq = (uint)flags };
            var ev = h.Run(Packet.Ipv4Tcp(ip, tcp)).SingleEvent();
            Assert.Equal((TcpFlags)flags, ev.Packet.Flags);
            Assert.Equal((uint)flags, ev.Packet.Seq);
        }
        var total = h.Counters();
        Assert.Equal(256ul, total[TcpStat.Emitted]);
        Assert.Equal(256ul, total[TcpStat.Seen]);
    }

    /// <summary>The NS bit and the reserved bits share byte 12 with the data offset: they must not leak into
    /// the flags nor change the data offset.</summary>
    [Fact]
    public void ReservedAndNsBitsDoNotDisturbFlagsOrDataOffset()
    {
        using var h = TcpProgramHarness.Load();
        var segment = new TcpSpec { Flags = 0x12, Payload = new byte[10] }.Build();
        segment[12] |= 0x0f; // reserved bits + NS
        var ip = new Ipv4Spec();
        var frame = new EthernetSpec().Build(Packet.EtherTypeIPv4, ip.Build(segment));
        var ev = h.Run(frame).SingleEvent();
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, ev.Packet.Flags);
        Assert.Equal(10u, ev.Packet.PayloadLength);
    }

    /// <summary>Malformed inputs, by name. Each is a whole frame; the comment says what is wrong.</summary>
    private static byte[] Malformed(string name)
    {
        var v4 = new Ipv4Spec();
        var v6 = new Ipv6Spec();
        switch (name)
        {
            case "ipv4-ihl-0": return Packet.Ipv4Tcp(v4 with { Ihl = 0 }, Tcp);
            case "ipv4-ihl-4": return Packet.Ipv4Tcp(v4 with { Ihl = 4 }, Tcp);
            case "ipv4-total-length-below-header": return Packet.Ipv4Tcp(v4 with { TotalLength = 19 }, Tcp);
            case "ipv4-total-length-without-tcp-header": return Packet.Ipv4Tcp(v4 with { TotalLength = 20 + 19 }, Tcp);
            case "ipv4-total-length-beyond-frame": return Packet.Ipv4Tcp(v4 with { TotalLength = 20 + Tcp.HeaderLength + Tcp.Payload.Length + 1 }, Tcp);
            case "ipv4-ihl-beyond-total-length": return Packet.Ipv4Tcp(v4 with { Ihl = 15, TotalLength = 40 }, Tcp);
            case "ipv4-version-6": return Packet.Ipv4Tcp(v4 with { Version = 6 }, Tcp);
            case "ipv4-version-0": return Packet.Ipv4Tcp(v4 with { Version = 0 }, Tcp);
            case "ipv4-non-first-fragment": return Packet.Ipv4Tcp(v4 with { FragmentOffset = 1 }, Tcp);
            case "ipv4-last-fragment": return Packet.Ipv4Tcp(v4 with { FragmentOffset = 185, MoreFragments = false }, Tcp);
            case "ipv4-middle-fragment": return Packet.Ipv4Tcp(v4 with { FragmentOffset = 0x1fff, MoreFragments = true }, Tcp);
            case "ipv4-tcp-data-offset-0": return Packet.Ipv4Tcp(v4, Tcp with { DataOffset = 0 });
            case "ipv4-tcp-data-offset-4": return Packet.Ipv4Tcp(v4, Tcp with { DataOffset = 4 });
            case "ipv4-tcp-data-offset-beyond-packet": return Packet.Ipv4Tcp(v4, Tcp with { DataOffset = 15 });
            case "ipv4-truncated-tcp-header":
                // The IP header claims 20 + 19 bytes and the frame has exactly those: no room for TCP's 20.
                return Truncate(Packet.Ipv4Tcp(v4 with { TotalLength = 39 }, Tcp), 14 + 39);
            case "ipv4-frame-cut-short":
                // The IP header is intact and claims the whole segment, but the frame ends inside the TCP header.
                return Truncate(Packet.Ipv4Tcp(v4, Tcp), 14 + 20 + 12);
            case "ipv6-version-4": return Packet.Ipv6Tcp(v6 with { Version = 4 }, Tcp);
            case "ipv6-version-0": return Packet.Ipv6Tcp(v6 with { Version = 0 }, Tcp);
            case "ipv6-payload-length-beyond-frame": return Packet.Ipv6Tcp(v6 with { PayloadLength = Tcp.HeaderLength + Tcp.Payload.Length + 1 }, Tcp);
            case "ipv6-payload-length-without-tcp-header": return Packet.Ipv6Tcp(v6 with { PayloadLength = 19 }, Tcp);
            case "ipv6-jumbo-payload-length-0": return Packet.Ipv6Tcp(v6 with { PayloadLength = 0 }, Tcp);
            case "ipv6-frame-cut-short": return Truncate(Packet.Ipv6Tcp(v6, Tcp), 14 + 40 + 12);
            case "ipv6-tcp-data-offset-3": return Packet.Ipv6Tcp(v6, Tcp with { DataOffset = 3 });
            case "ipv6-tcp-data-offset-beyond-packet": return Packet.Ipv6Tcp(v6, Tcp with { DataOffset = 15 });
            case "ipv6-non-first-fragment": return Packet.Ipv6Tcp(v6 with { Extensions = [Ipv6Extension.Fragment(offset: 1, more: true)] }, Tcp);
            case "ipv6-last-fragment-after-hop-by-hop":
                return Packet.Ipv6Tcp(v6 with { Extensions = [Ipv6Extension.HopByHop(), Ipv6Extension.Fragment(offset: 100)] }, Tcp);
            case "ipv6-extension-header-cut-short":
                // A hop-by-hop header whose declared 24 bytes run past the end of the frame.
                return Truncate(Packet.Ipv6Tcp(v6 with { Extensions = [Ipv6Extension.HopByHop(2)] }, Tcp), 14 + 40 + 6);
            case "ipv6-extension-length-beyond-payload":
                // The extension header claims more than the IPv6 payload length leaves for TCP.
                return Packet.Ipv6Tcp(v6 with { Extensions = [Ipv6Extension.DestinationOptions(1)], PayloadLength = 16 + 19 }, Tcp with { Payload = new byte[40] });
            default: throw new ArgumentOutOfRangeException(nameof(name));
        }
    }

    private static byte[] Truncate(byte[] frame, int length) => frame[..length];

    public static TheoryData<string, TcpHookChoice> MalformedCases()
    {
        string[] names =
        [
            "ipv4-ihl-0", "ipv4-ihl-4", "ipv4-total-length-below-header", "ipv4-total-length-without-tcp-header",
            "ipv4-total-length-beyond-frame", "ipv4-ihl-beyond-total-length", "ipv4-version-6", "ipv4-version-0",
            "ipv4-non-first-fragment", "ipv4-last-fragment", "ipv4-middle-fragment", "ipv4-tcp-data-offset-0",
            "ipv4-tcp-data-offset-4", "ipv4-tcp-data-offset-beyond-packet", "ipv4-truncated-tcp-header", "ipv4-frame-cut-short", "ipv6-version-4", "ipv6-version-0",
            "ipv6-payload-length-beyond-frame", "ipv6-payload-length-without-tcp-header",
            "ipv6-jumbo-payload-length-0", "ipv6-frame-cut-short", "ipv6-tcp-data-offset-3",
            "ipv6-tcp-data-offset-beyond-packet", "ipv6-non-first-fragment", "ipv6-last-fragment-after-hop-by-hop",
            "ipv6-extension-header-cut-short", "ipv6-extension-length-beyond-payload",
        ];
        var data = new TheoryData<string, TcpHookChoice>();
        foreach (var n in names)
        {
            data.Add(n, TcpHookChoice.Tc);
            data.Add(n, TcpHookChoice.Cgroup); // same L3/L4 parser, reached through skb->protocol
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(MalformedCases))]
    public void MalformedIsCountedNotEmitted(string name, TcpHookChoice hook)
    {
        using var h = TcpProgramHarness.Load(hook: hook);
        var outcome = h.Run(Malformed(name));
        Assert.Empty(outcome.Events);
        Assert.True(outcome.Delta[TcpStat.Malformed] == 1, $"{name}: {outcome.Delta}");
        Assert.Equal(0ul, outcome.Delta[TcpStat.Seen]);
        Assert.Equal(0ul, outcome.Delta[TcpStat.NotTcp]);
    }

    public static TheoryData<string> MalformedEthernetCases =>
        new("vlan-tag-cut-short", "second-vlan-tag-cut-short", "ipv4-header-cut-short-behind-vlan", "ipv6-header-cut-short-behind-vlan");

    /// <summary>Ethernet-level truncation (TC only: the cgroup program never sees the link header), and IP headers
    /// cut short. Short IP headers must sit behind a VLAN tag here: since "bpf: reject short IPv4/IPv6 inputs in
    /// bpf_prog_test_run_skb" (2026, in stable kernels) the test run itself refuses an untagged IPv4/IPv6 frame
    /// whose L3 header is short (see <see cref="ShortUntaggedIpHeadersAreRefusedOrMalformed"/>).</summary>
    [Theory]
    [MemberData(nameof(MalformedEthernetCases))]
    public void MalformedEthernetIsCountedNotEmitted(string name)
    {
        var tagged = new EthernetSpec { Vlans = [VlanTag.Dot1AD(1), VlanTag.Dot1Q(2)] };
        var frame = name switch
        {
            "vlan-tag-cut-short" => new EthernetSpec { EtherType = Packet.EtherTypeDot1Q }.Build(0, []),     // 14 bytes: TPID, no tag
            "second-vlan-tag-cut-short" => Truncate(Packet.Ipv4Tcp(new Ipv4Spec(), Tcp, tagged), 14 + 3), // inner tag cut
            "ipv4-header-cut-short-behind-vlan" => Truncate(Packet.Ipv4Tcp(new Ipv4Spec(), Tcp, tagged), 22 + 19),
            "ipv6-header-cut-short-behind-vlan" => Truncate(Packet.Ipv6Tcp(new Ipv6Spec(), Tcp, tagged), 22 + 39),
            _ => throw new ArgumentOutOfRangeException(nameof(name)),
        };
        using var h = TcpProgramHarness.Load();
        var outcome = h.Run(frame);
        Assert.Empty(outcome.Events);
        Assert.Equal(1ul, outcome.Delta[TcpStat.Malformed]);
        Assert.Equal(0ul, outcome.Delta[TcpStat.Seen]);
    }

    /// <summary>An untagged IPv4/IPv6 frame whose IP header is cut short: kernels with the 2026 test-run fix
    /// refuse it (EINVAL) before the program runs; older kernels run the program, which must count it malformed.</summary>
    [Theory]
    [InlineData(4, TcpHookChoice.Tc)]
    [InlineData(6, TcpHookChoice.Tc)]
    [InlineData(4, TcpHookChoice.Cgroup)]
    [InlineData(6, TcpHookChoice.Cgroup)]
    public void ShortUntaggedIpHeadersAreRefusedOrMalformed(int family, TcpHookChoice hook)
    {
        var frame = family == 4 ? Truncate(Packet.Ipv4Tcp(new Ipv4Spec(), Tcp), 14 + 19) : Truncate(Packet.Ipv6Tcp(new Ipv6Spec(), Tcp), 14 + 39);
        using var h = TcpProgramHarness.Load(hook: hook);
        try
        {
            var outcome = h.Run(frame);
            Assert.Empty(outcome.Events);
            Assert.Equal(1ul, outcome.Delta[TcpStat.Malformed]);
        }
        catch (BpfException e)
        {
            Assert.Equal(Errno.EINVAL, e.Errno);
            Assert.Equal(0ul, h.Counters()[TcpStat.Packets]);
        }
    }

    /// <summary>Shorter than an Ethernet header: the kernel's test run refuses the input (EINVAL) before the
    /// program runs, so there is nothing to count. On a real interface such frames never reach TC.</summary>
    [Theory]
    [InlineData(0)]
    [InlineData(13)]
    public void FramesShorterThanEthernetAreRefusedByTheTestRun(int length)
    {
        using var h = TcpProgramHarness.Load();
        var before = h.Counters();
        var e = Assert.ThrowsAny<BpfException>(() => Vigil.Interop.Bpf.ProgramTestRun.Run(h.Sensor.Program(h.ProgramName), new byte[length]));
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Equal(before.Values, h.Counters().Values);
    }

    public static TheoryData<string, TcpHookChoice> NotTcpCases()
    {
        string[] both = ["udp4", "icmp4", "udp6", "icmp6", "udp6-after-extensions", "ipv6-no-next-header", "esp6", "udp4-non-first-fragment", "unknown-ethertype"];
        var data = new TheoryData<string, TcpHookChoice>();
        foreach (var n in both)
        {
            data.Add(n, TcpHookChoice.Tc);
            data.Add(n, TcpHookChoice.Cgroup);
        }
        data.Add("arp", TcpHookChoice.Tc);
        data.Add("arp", TcpHookChoice.Cgroup);
        return data;
    }

    private static byte[] NotTcp(string name)
    {
        var v4 = new Ipv4Spec();
        var v6 = new Ipv6Spec();
        var eth = new EthernetSpec();
        return name switch
        {
            "udp4" => eth.Build(Packet.EtherTypeIPv4, (v4 with { Protocol = Packet.ProtoUdp }).Build(Packet.Udp(5353, 53, new byte[12]))),
            "icmp4" => eth.Build(Packet.EtherTypeIPv4, (v4 with { Protocol = Packet.ProtoIcmp }).Build(Packet.IcmpEcho())),
            "udp6" => eth.Build(Packet.EtherTypeIPv6, (v6 with { Protocol = Packet.ProtoUdp }).Build(Packet.Udp(5353, 53, new byte[12]))),
            "icmp6" => eth.Build(Packet.EtherTypeIPv6, (v6 with { Protocol = Packet.ProtoIcmpV6 }).Build(Packet.IcmpEcho(v6: true))),
            "udp6-after-extensions" => eth.Build(Packet.EtherTypeIPv6, (v6 with
            {
                Protocol = Packet.ProtoUdp,
                Extensions = [Ipv6Extension.HopByHop(), Ipv6Extension.Fragment(), Ipv6Extension.DestinationOptions()],
            }).Build(Packet.Udp(1, 2, new byte[8]))),
            "ipv6-no-next-header" => eth.Build(Packet.EtherTypeIPv6, (v6 with { Protocol = Packet.ExtNone }).Build([])),
            "esp6" => eth.Build(Packet.EtherTypeIPv6, (v6 with { Protocol = 50 }).Build(new byte[32])),
            // A non-first fragment of UDP: the protocol check comes first, so it is "not TCP", not malformed.
            "udp4-non-first-fragment" => eth.Build(Packet.EtherTypeIPv4, (v4 with { Protocol = Packet.ProtoUdp, FragmentOffset = 3 }).Build(new byte[16])),
            "unknown-ethertype" => new EthernetSpec { EtherType = 0x88CC }.Build(0, new byte[46]), // LLDP
            "arp" => Packet.Arp(IPAddress.Parse("192.0.2.1"), IPAddress.Parse("192.0.2.2")),
            _ => throw new ArgumentOutOfRangeException(nameof(name)),
        };
    }

    [Theory]
    [MemberData(nameof(NotTcpCases))]
    public void OtherProtocolsAreNotTcp(string name, TcpHookChoice hook)
    {
        using var h = TcpProgramHarness.Load(hook: hook);
        var outcome = h.Run(NotTcp(name));
        Assert.Empty(outcome.Events);
        Assert.True(outcome.Delta[TcpStat.NotTcp] == 1, $"{name}: {outcome.Delta}");
        Assert.Equal(0ul, outcome.Delta[TcpStat.Malformed]);
        Assert.Equal(0ul, outcome.Delta[TcpStat.Seen]);
    }

    /// <summary>After malformed and foreign input the parser still handles the next good packet (no state leaks).</summary>
    [Fact]
    public void GoodPacketAfterBadOnesIsParsed()
    {
        using var h = TcpProgramHarness.Load();
        foreach (var bad in new[] { "ipv4-ihl-4", "ipv6-non-first-fragment", "ipv4-frame-cut-short" })
            Assert.Empty(h.Run(Malformed(bad)).Events);
        Assert.Empty(h.Run(NotTcp("udp6")).Events);
        var ip = new Ipv4Spec();
        var ev = h.Run(Packet.Ipv4Tcp(ip, Tcp)).SingleEvent();
        Assert.Equal(IpAddress16.From(ip.Source), ev.Packet.Source);
        var total = h.Counters();
        Assert.Equal(5ul, total[TcpStat.Packets]);
        Assert.Equal(3ul, total[TcpStat.Malformed]);
        Assert.Equal(1ul, total[TcpStat.NotTcp]);
        Assert.Equal(1ul, total[TcpStat.Seen]);
    }
}
