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

    public static TheoryData<uint> Snaplens => new(0u, 64u, 256u);

    [Theory]
    [MemberData(nameof(Snaplens))]
    public void Ipv4(uint snaplen)
    {
        var spec = new TcpFilterSpec { Snaplen = snaplen };
        using var h = TcpProgramHarness.Load(spec);
        var ip = new Ipv4Spec { DontFragment = true };
        var frame = Packet.Ipv4Tcp(ip, Segment);
        var outcome = h.Run(frame);
        Assert.Equal(0u, outcome.ReturnValue); // TC_ACT_OK: observe only
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
}
