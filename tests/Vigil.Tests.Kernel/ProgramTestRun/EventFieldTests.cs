using System.Net;
using Vigil.Core.Net;
using Vigil.Core.Tcp;
using Vigil.Interop;
using Vigil.Sensors.Tcp;
using Vigil.Tests.Kernel.Support;
using Vigil.Wire;

namespace Vigil.Tests.Kernel.TestRun;

/// <summary>Well-formed segments in every framing the TC parser handles: each event field must equal what was crafted.</summary>
public class EventFieldTests
{
    private static readonly TcpSpec Segment = new()
    {
        SourcePort = 51515,
        DestinationPort = 8443,
        Seq = 0xdeadbeef,
        Ack = 0x01234567,
        Flags = 0x18,
        Window = 0x7a12,
        Options = [1, 1, 8, 10, 0, 0, 0, 42, 0, 0, 0, 7], // NOP NOP timestamps
        Payload = "GET / HTTP/1.1\r\n"u8.ToArray(),
    };

    private static void AssertMatches(CapturedEvent ev, ReadOnlySpan<byte> frame, IPAddress src, IPAddress dst, TcpSpec tcp,
        int ipLength, byte family, TcpFilterSpec spec, int linkOffset = 0, TcpHook hook = TcpHook.Tc)
    {
        var p = ev.Packet;
        Assert.Equal(family, p.Family);
        Assert.Equal(IpAddress16.From(src), p.Source);
        Assert.Equal(IpAddress16.From(dst), p.Destination);
        Assert.Equal(tcp.SourcePort, p.SourcePort);
        Assert.Equal(tcp.DestinationPort, p.DestinationPort);
        Assert.Equal(tcp.Seq, p.Seq);
        Assert.Equal(tcp.Ack, p.Ack);
        Assert.Equal((TcpFlags)tcp.Flags, p.Flags);
        Assert.Equal(tcp.Window, p.Window);
        Assert.Equal((uint)tcp.Payload.Length, p.PayloadLength);
        Assert.Equal((uint)ipLength, p.IpLength);
        Assert.Equal(hook, p.Hook);
        Assert.Equal(NetworkNamespace.CurrentInode(), p.NetnsIno);
        Assert.Equal(hook == TcpHook.Tc ? LinkType.Ethernet : LinkType.RawIp, p.LinkType);
        Assert.False(p.Owner.Known);
        Assert.NotEqual(0ul, p.TimestampNs);
        // The program copies min(snaplen, skb->len) bytes from the start of what it sees.
        var seen = frame[linkOffset..];
        int expectCap = Math.Min((int)spec.Snaplen, seen.Length);
        Assert.Equal(expectCap, p.CapturedLength);
        Assert.Equal(seen[..expectCap].ToArray(), ev.Captured);
    }

    /// <summary>Whole words, a tail of len % 8 bytes, shorter than a word (the helper copies it), and more
    /// than the frame (82 bytes for IPv4: a tail again).</summary>
    public static TheoryData<uint> Snaplens => new(0u, 5u, 61u, 64u, 256u);

    [Theory]
    [MemberData(nameof(Snaplens))]
    [Trait("Matrix", "true")] // each snaplen is a different program for the verifier: older verifiers differ
    public void Ipv4(uint snaplen)
    {
        var spec = new TcpFilterSpec { Snaplen = snaplen };
        using var h = TcpProgramHarness.Load(spec);
        var ip = new Ipv4Spec { DontFragment = true };
        var frame = Packet.Ipv4Tcp(ip, Segment);
        var outcome = h.Run(frame);
        Assert.Equal(unchecked((uint)-1), outcome.ReturnValue); // TC_ACT_UNSPEC: observe, let the rest of the chain run
        AssertMatches(outcome.SingleEvent(), frame, ip.Source, ip.Destination, Segment, ip.HeaderLength + Segment.HeaderLength + Segment.Payload.Length, 4, spec);
    }

    /// <summary>Ring memory is reused, not zeroed: every field must be written for every event, also when
    /// nothing is captured. With 136-byte records a two-page ring wraps after 60 of them, and each record then
    /// lands 32 bytes before an older one: link_type (record byte 91) over that record's dport high byte (59).</summary>
    [Fact]
    public void EveryFieldIsWrittenAfterTheRingWraps()
    {
        var spec = new TcpFilterSpec { Snaplen = 0 };
        using var h = TcpProgramHarness.Load(spec, ringBytes: 8192);
        var ip = new Ipv4Spec();
        for (int i = 0; i < 200; i++)
        {
            var tcp = Segment with { Seq = (uint)i, DestinationPort = (ushort)(1 + i * 257), Payload = new byte[i % 7] };
            var frame = Packet.Ipv4Tcp(ip, tcp);
            AssertMatches(h.Run(frame).SingleEvent(), frame, ip.Source, ip.Destination, tcp, ip.HeaderLength + tcp.HeaderLength + tcp.Payload.Length, 4, spec);
        }
    }

    private static int Ipv4Length(Ipv4Spec ip, TcpSpec tcp) => ip.HeaderLength + tcp.HeaderLength + tcp.Payload.Length;
    private static int Ipv6Length(Ipv6Spec ip, TcpSpec tcp) => ip.HeaderLength + tcp.HeaderLength + tcp.Payload.Length;

    [Theory]
    [MemberData(nameof(Snaplens))]
    [Trait("Matrix", "true")] // each snaplen is a different program for the verifier: older verifiers differ
    public void Ipv6(uint snaplen)
    {
        var spec = new TcpFilterSpec { Snaplen = snaplen };
        using var h = TcpProgramHarness.Load(spec);
        var ip = new Ipv6Spec { FlowLabel = 0xbeef, TrafficClass = 0x10 };
        var frame = Packet.Ipv6Tcp(ip, Segment);
        AssertMatches(h.Run(frame).SingleEvent(), frame, ip.Source, ip.Destination, Segment, Ipv6Length(ip, Segment), 6, spec);
    }

    public static TheoryData<string> ExtensionHeaders => new("hop-by-hop", "hop-by-hop+2", "routing", "routing*3", "destination", "destination+1", "fragment", "ah", "ah+5");

    private static Ipv6Extension Extension(string name) => name switch
    {
        "hop-by-hop" => Ipv6Extension.HopByHop(),
        "hop-by-hop+2" => Ipv6Extension.HopByHop(units: 2),
        "routing" => Ipv6Extension.Routing(),
        "routing*3" => Ipv6Extension.Routing(addresses: 3),
        "destination" => Ipv6Extension.DestinationOptions(),
        "destination+1" => Ipv6Extension.DestinationOptions(units: 1),
        "fragment" => Ipv6Extension.Fragment(offset: 0, more: true), // first fragment: the TCP header is in it
        "ah" => Ipv6Extension.Authentication(),
        "ah+5" => Ipv6Extension.Authentication(icvWords: 5),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    [Theory]
    [MemberData(nameof(ExtensionHeaders))]
    public void Ipv6WithOneExtensionHeader(string extension)
    {
        var spec = new TcpFilterSpec { Snaplen = 256 };
        using var h = TcpProgramHarness.Load(spec);
        var ip = new Ipv6Spec { Extensions = [Extension(extension)] };
        var frame = Packet.Ipv6Tcp(ip, Segment);
        AssertMatches(h.Run(frame).SingleEvent(), frame, ip.Source, ip.Destination, Segment, Ipv6Length(ip, Segment), 6, spec);
    }

    /// <summary>The parser walks up to six extension headers (MAX_IPV6_EXT_HEADERS).</summary>
    [Fact]
    public void Ipv6WithAChainOfSixExtensionHeaders()
    {
        var spec = new TcpFilterSpec { Snaplen = 256 };
        using var h = TcpProgramHarness.Load(spec);
        var ip = new Ipv6Spec
        {
            Extensions =
            [
                Ipv6Extension.HopByHop(1), Ipv6Extension.DestinationOptions(), Ipv6Extension.Routing(2),
                Ipv6Extension.Fragment(), Ipv6Extension.Authentication(), Ipv6Extension.DestinationOptions(2),
            ],
        };
        var frame = Packet.Ipv6Tcp(ip, Segment);
        AssertMatches(h.Run(frame).SingleEvent(), frame, ip.Source, ip.Destination, Segment, Ipv6Length(ip, Segment), 6, spec);
    }

    /// <summary>A seventh extension header is beyond the bounded walk: counted as not TCP, not misparsed.</summary>
    [Fact]
    public void Ipv6WithSevenExtensionHeadersIsNotParsedAsTcp()
    {
        using var h = TcpProgramHarness.Load();
        var ip = new Ipv6Spec { Extensions = Enumerable.Range(0, 7).Select(_ => Ipv6Extension.DestinationOptions()).ToArray() };
        var outcome = h.Run(Packet.Ipv6Tcp(ip, Segment));
        Assert.Empty(outcome.Events);
        Assert.Equal(1ul, outcome.Delta[TcpStat.NotTcp]);
    }

    public static TheoryData<int> VlanDepths => new(1, 2);

    [Theory]
    [MemberData(nameof(VlanDepths))]
    public void VlanTaggedIpv4AndIpv6(int depth)
    {
        var spec = new TcpFilterSpec { Snaplen = 256 };
        using var h = TcpProgramHarness.Load(spec);
        var eth = new EthernetSpec { Vlans = depth == 1 ? [VlanTag.Dot1Q(100, priority: 5)] : [VlanTag.Dot1AD(20), VlanTag.Dot1Q(300)] };
        var v4 = new Ipv4Spec();
        var frame = Packet.Ipv4Tcp(v4, Segment, eth);
        AssertMatches(h.Run(frame).SingleEvent(), frame, v4.Source, v4.Destination, Segment, Ipv4Length(v4, Segment), 4, spec);
        var v6 = new Ipv6Spec();
        frame = Packet.Ipv6Tcp(v6, Segment, eth);
        AssertMatches(h.Run(frame).SingleEvent(), frame, v6.Source, v6.Destination, Segment, Ipv6Length(v6, Segment), 6, spec);
    }

    [Fact]
    public void DoubleQ802Dot1QTagsAreAlsoFollowed()
    {
        using var h = TcpProgramHarness.Load();
        var eth = new EthernetSpec { Vlans = [VlanTag.Dot1Q(7), VlanTag.Dot1Q(8)] };
        Assert.Single(h.Run(Packet.Ipv4Tcp(new Ipv4Spec(), Segment, eth)).Events);
    }

    /// <summary>Two tags are walked; a third leaves a VLAN EtherType where IP is expected.</summary>
    [Fact]
    public void ThreeVlanTagsAreNotTcp()
    {
        using var h = TcpProgramHarness.Load();
        var eth = new EthernetSpec { Vlans = [VlanTag.Dot1AD(1), VlanTag.Dot1Q(2), VlanTag.Dot1Q(3)] };
        var outcome = h.Run(Packet.Ipv4Tcp(new Ipv4Spec(), Segment, eth));
        Assert.Empty(outcome.Events);
        Assert.Equal(1ul, outcome.Delta[TcpStat.NotTcp]);
    }

    public static TheoryData<string> Ipv4OptionSets => new("router-alert", "record-route-1", "record-route-9", "nops-40");

    private static byte[] Ipv4Options(string name) => name switch
    {
        "router-alert" => Ipv4Spec.RouterAlert,
        "record-route-1" => Ipv4Spec.RecordRoute(1),
        "record-route-9" => Ipv4Spec.RecordRoute(9), // 39 bytes + padding: IHL 15, the maximum
        "nops-40" => Enumerable.Repeat((byte)1, 40).ToArray(),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    [Theory]
    [MemberData(nameof(Ipv4OptionSets))]
    public void Ipv4WithOptions(string options)
    {
        var spec = new TcpFilterSpec { Snaplen = 256 };
        using var h = TcpProgramHarness.Load(spec);
        var ip = new Ipv4Spec { Options = Ipv4Options(options) };
        var frame = Packet.Ipv4Tcp(ip, Segment);
        AssertMatches(h.Run(frame).SingleEvent(), frame, ip.Source, ip.Destination, Segment, Ipv4Length(ip, Segment), 4, spec);
    }

    /// <summary>A first fragment (MF set, offset 0) carries the TCP header: it is parsed; lengths are the fragment's.</summary>
    [Fact]
    public void Ipv4FirstFragmentIsParsed()
    {
        using var h = TcpProgramHarness.Load();
        var ip = new Ipv4Spec { MoreFragments = true };
        var frame = Packet.Ipv4Tcp(ip, Segment);
        AssertMatches(h.Run(frame).SingleEvent(), frame, ip.Source, ip.Destination, Segment, Ipv4Length(ip, Segment), 4, new TcpFilterSpec());
    }

    /// <summary>Minimum-size Ethernet frames are padded to 60 bytes: lengths come from the IP header, not the frame.</summary>
    [Fact]
    public void EthernetPaddingIsNotPayload()
    {
        var spec = new TcpFilterSpec { Snaplen = 256 };
        using var h = TcpProgramHarness.Load(spec);
        var ip = new Ipv4Spec();
        var tcp = Segment with { Options = [], Payload = [] };
        var frame = Packet.Ipv4Tcp(ip, tcp);
        Assert.Equal(54, frame.Length);
        var padded = frame.Concat(new byte[6]).ToArray();
        AssertMatches(h.Run(padded).SingleEvent(), padded, ip.Source, ip.Destination, tcp, 40, 4, spec);
    }

    /// <summary>TCP options and data offsets up to 60 bytes; the payload length excludes them.</summary>
    [Fact]
    public void TcpOptionsOfEveryLength()
    {
        using var h = TcpProgramHarness.Load();
        var ip = new Ipv6Spec();
        for (int n = 0; n <= 40; n += 4)
        {
            var tcp = Segment with { Options = Enumerable.Repeat((byte)1, n).ToArray(), Payload = new byte[n * 3] };
            var frame = Packet.Ipv6Tcp(ip, tcp);
            AssertMatches(h.Run(frame).SingleEvent(), frame, ip.Source, ip.Destination, tcp, Ipv6Length(ip, tcp), 6, new TcpFilterSpec());
        }
    }

    /// <summary>The ingress ifindex comes from the skb (BPF_PROG_TEST_RUN takes it from the __sk_buff context).</summary>
    [Fact]
    public void IfindexIsTheIngressInterface()
    {
        using var h = TcpProgramHarness.Load();
        var outcome = h.Run(Packet.Ipv4Tcp(new Ipv4Spec(), Segment), SkbContext.WithIngressIfindex(4242));
        Assert.Equal(4242u, outcome.SingleEvent().Packet.Ifindex);
    }

    /// <summary>cgroup_skb under BPF_PROG_TEST_RUN: the input is still an Ethernet frame. The kernel
    /// (bpf_prog_test_run_skb) runs eth_type_trans on it, which sets skb->protocol from the EtherType and
    /// pulls the 14-byte header; only TC-type programs get it pushed back. So the cgroup program sees the IP
    /// packet at skb->data, skb->len excludes the Ethernet header, and skb->ifindex is the loopback device
    /// the kernel uses for test runs. Measured, not assumed: the captured bytes below prove where data starts.</summary>
    [Theory]
    [InlineData(4)]
    [InlineData(6)]
    public void CgroupProgramSeesTheIpPacket(int family)
    {
        var spec = new TcpFilterSpec { Snaplen = 256 };
        using var h = TcpProgramHarness.Load(spec, TcpHookChoice.Cgroup);
        var v4 = new Ipv4Spec();
        var v6 = new Ipv6Spec { Extensions = [Ipv6Extension.HopByHop()] };
        var frame = family == 4 ? Packet.Ipv4Tcp(v4, Segment) : Packet.Ipv6Tcp(v6, Segment);
        var outcome = h.Run(frame);
        Assert.Equal(1u, outcome.ReturnValue); // cgroup_skb: 1 = allow
        var ev = outcome.SingleEvent();
        if (family == 4)
            AssertMatches(ev, frame, v4.Source, v4.Destination, Segment, Ipv4Length(v4, Segment), 4, spec, linkOffset: 14, hook: TcpHook.Cgroup);
        else
            AssertMatches(ev, frame, v6.Source, v6.Destination, Segment, Ipv6Length(v6, Segment), 6, spec, linkOffset: 14, hook: TcpHook.Cgroup);
        Assert.Equal(1u, ev.Packet.Ifindex); // the test run's skb->dev is loopback
    }
}
