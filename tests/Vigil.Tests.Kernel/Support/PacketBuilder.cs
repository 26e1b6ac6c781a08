using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Vigil.Tests.Kernel.Support;

/// <summary>Crafts frames byte by byte for BPF_PROG_TEST_RUN. Every field that a parser checks can be set to a
/// wrong value (version, IHL, total length, data offset, fragment fields) so malformed input is as easy to
/// write as good input. Lengths and checksums are computed unless overridden.</summary>
public static class Packet
{
    public const ushort EtherTypeIPv4 = 0x0800, EtherTypeIPv6 = 0x86DD, EtherTypeArp = 0x0806,
        EtherTypeDot1Q = 0x8100, EtherTypeDot1AD = 0x88A8;
    public const byte ProtoTcp = 6, ProtoUdp = 17, ProtoIcmp = 1, ProtoIcmpV6 = 58;
    public const byte ExtHopByHop = 0, ExtRouting = 43, ExtFragment = 44, ExtAuth = 51, ExtDestOptions = 60, ExtNone = 59;

    /// <summary>Ethernet + IPv4 + TCP.</summary>
    public static byte[] Ipv4Tcp(Ipv4Spec ip, TcpSpec tcp, EthernetSpec? eth = null) =>
        (eth ?? new EthernetSpec()).Build(EtherTypeIPv4, ip.Build(tcp.Build()));

    /// <summary>Ethernet + IPv6 (+ extension headers) + TCP.</summary>
    public static byte[] Ipv6Tcp(Ipv6Spec ip, TcpSpec tcp, EthernetSpec? eth = null) =>
        (eth ?? new EthernetSpec()).Build(EtherTypeIPv6, ip.Build(tcp.Build()));

    public static byte[] Udp(ushort sport, ushort dport, ReadOnlySpan<byte> payload)
    {
        var b = new byte[8 + payload.Length];
        BinaryPrimitives.WriteUInt16BigEndian(b, sport);
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(2), dport);
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(4), (ushort)b.Length);
        payload.CopyTo(b.AsSpan(8));
        return b; // checksum 0: "none" for UDP over IPv4
    }

    /// <summary>ICMP (v4) or ICMPv6 echo request; the checksum is left 0 (no parser here checks it).</summary>
    public static byte[] IcmpEcho(bool v6 = false, ushort id = 1, ushort seq = 1)
    {
        var b = new byte[8];
        b[0] = v6 ? (byte)128 : (byte)8;
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(4), id);
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(6), seq);
        return b;
    }

    /// <summary>An ARP request (Ethernet/IPv4) as a whole frame.</summary>
    public static byte[] Arp(IPAddress sender, IPAddress target)
    {
        var body = new byte[28];
        BinaryPrimitives.WriteUInt16BigEndian(body, 1);              // hardware: Ethernet
        BinaryPrimitives.WriteUInt16BigEndian(body.AsSpan(2), 0x0800); // protocol: IPv4
        body[4] = 6; body[5] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(body.AsSpan(6), 1);    // request
        EthernetSpec.DefaultSource.CopyTo(body, 8);
        sender.GetAddressBytes().CopyTo(body, 14);
        target.GetAddressBytes().CopyTo(body, 24);
        return new EthernetSpec { Destination = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff] }.Build(EtherTypeArp, body);
    }

    /// <summary>One's-complement sum of 16-bit words (RFC 1071), not yet inverted.</summary>
    internal static uint Sum(ReadOnlySpan<byte> data, uint sum = 0)
    {
        int i = 0;
        for (; i + 1 < data.Length; i += 2) sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
        if (i < data.Length) sum += (uint)data[i] << 8;
        return sum;
    }

    internal static ushort Fold(uint sum)
    {
        while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
        return (ushort)~sum;
    }

    /// <summary>Fills the TCP checksum (pseudo-header of <paramref name="src"/>, <paramref name="dst"/>) when the
    /// segment is long enough to hold one; malformed segments keep whatever they have.</summary>
    internal static void FillTcpChecksum(Span<byte> segment, ReadOnlySpan<byte> src, ReadOnlySpan<byte> dst)
    {
        if (segment.Length < 20) return;
        segment[16] = segment[17] = 0;
        uint sum = Sum(src) + Sum(dst) + ProtoTcp + (uint)segment.Length;
        BinaryPrimitives.WriteUInt16BigEndian(segment[16..], Fold(Sum(segment, sum)));
    }
}

/// <summary>An 802.1Q (0x8100) or 802.1ad (0x88A8) tag.</summary>
public readonly record struct VlanTag(ushort Tpid, ushort Tci)
{
    public static VlanTag Dot1Q(ushort vid, byte priority = 0) => new(Packet.EtherTypeDot1Q, (ushort)((priority << 13) | (vid & 0xfff)));
    public static VlanTag Dot1AD(ushort vid) => new(Packet.EtherTypeDot1AD, (ushort)(vid & 0xfff));
}

public sealed record EthernetSpec
{
    public static readonly byte[] DefaultSource = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
    public byte[] Destination { get; init; } = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
    public byte[] Source { get; init; } = DefaultSource;
    /// <summary>Outermost first.</summary>
    public IReadOnlyList<VlanTag> Vlans { get; init; } = [];
    /// <summary>Overrides the EtherType after the tags (default: that of the payload).</summary>
    public ushort? EtherType { get; init; }

    public int HeaderLength => 14 + 4 * Vlans.Count;

    public byte[] Build(ushort etherType, ReadOnlySpan<byte> payload)
    {
        var b = new byte[HeaderLength + payload.Length];
        Destination.CopyTo(b, 0);
        Source.CopyTo(b, 6);
        int off = 12;
        foreach (var tag in Vlans)
        {
            BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(off), tag.Tpid);
            BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(off + 2), tag.Tci);
            off += 4;
        }
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(off), EtherType ?? etherType);
        payload.CopyTo(b.AsSpan(off + 2));
        return b;
    }
}

public sealed record Ipv4Spec
{
    public IPAddress Source { get; init; } = IPAddress.Parse("192.0.2.10");
    public IPAddress Destination { get; init; } = IPAddress.Parse("198.51.100.20");
    public byte Protocol { get; init; } = Packet.ProtoTcp;
    /// <summary>Raw option bytes, padded with End-of-Options to a multiple of 4 (at most 40).</summary>
    public byte[] Options { get; init; } = [];
    public byte Ttl { get; init; } = 64;
    public byte Tos { get; init; }
    public ushort Identification { get; init; } = 0x1234;
    public bool DontFragment { get; init; }
    public bool MoreFragments { get; init; }
    /// <summary>Fragment offset in 8-byte units.</summary>
    public ushort FragmentOffset { get; init; }
    /// <summary>Overrides the version nibble (default 4).</summary>
    public int Version { get; init; } = 4;
    /// <summary>Overrides the header length field in 32-bit words (default: 5 + options).</summary>
    public int? Ihl { get; init; }
    /// <summary>Overrides the total length field (default: header + payload).</summary>
    public int? TotalLength { get; init; }

    public int HeaderLength => 20 + PaddedOptionsLength;
    private int PaddedOptionsLength => (Options.Length + 3) & ~3;

    public byte[] Build(ReadOnlySpan<byte> payload)
    {
        if (PaddedOptionsLength > 40) throw new ArgumentException("IPv4 options are at most 40 bytes");
        var b = new byte[HeaderLength + payload.Length];
        b[0] = (byte)((Version << 4) | ((Ihl ?? HeaderLength / 4) & 0xf));
        b[1] = Tos;
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(2), (ushort)(TotalLength ?? b.Length));
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(4), Identification);
        ushort frag = (ushort)((DontFragment ? 0x4000 : 0) | (MoreFragments ? 0x2000 : 0) | (FragmentOffset & 0x1fff));
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(6), frag);
        b[8] = Ttl;
        b[9] = Protocol;
        Source.GetAddressBytes().CopyTo(b, 12);
        Destination.GetAddressBytes().CopyTo(b, 16);
        Options.CopyTo(b, 20);
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(10), Packet.Fold(Packet.Sum(b.AsSpan(0, HeaderLength))));
        payload.CopyTo(b.AsSpan(HeaderLength));
        if (Protocol == Packet.ProtoTcp)
            Packet.FillTcpChecksum(b.AsSpan(HeaderLength), b.AsSpan(12, 4), b.AsSpan(16, 4));
        return b;
    }

    /// <summary>Record Route with room for <paramref name="slots"/> addresses (3 + 4n bytes).</summary>
    public static byte[] RecordRoute(int slots)
    {
        var o = new byte[3 + 4 * slots];
        o[0] = 7; o[1] = (byte)o.Length; o[2] = 4;
        return o;
    }

    /// <summary>Router Alert (RFC 2113), 4 bytes.</summary>
    public static byte[] RouterAlert => [0x94, 0x04, 0x00, 0x00];
}

/// <summary>An IPv6 extension header. <see cref="Body"/> is everything after the Next Header byte; its
/// length must make the whole header a multiple of 8 (of 4 for AH).</summary>
public sealed record Ipv6Extension(byte Protocol, byte[] Body)
{
    public int Length => 1 + Body.Length;

    /// <summary>Hop-by-hop options: <paramref name="units"/> extra 8-byte units, filled with PadN.</summary>
    public static Ipv6Extension HopByHop(int units = 0) => new(Packet.ExtHopByHop, Options(units));

    public static Ipv6Extension DestinationOptions(int units = 0) => new(Packet.ExtDestOptions, Options(units));

    private static byte[] Options(int units)
    {
        var body = new byte[7 + 8 * units];
        body[0] = (byte)units; // Hdr Ext Len: 8-byte units beyond the first
        body[1] = 1;           // PadN
        body[2] = (byte)(body.Length - 3);
        return body;
    }

    /// <summary>Routing header (type 0 layout, segments left 0, so nodes may ignore it) with <paramref name="addresses"/> addresses.</summary>
    public static Ipv6Extension Routing(int addresses = 1)
    {
        var body = new byte[7 + 16 * addresses];
        body[0] = (byte)(2 * addresses);
        body[1] = 0; // routing type
        body[2] = 0; // segments left
        for (int i = 0; i < addresses; i++)
            IPAddress.Parse($"2001:db8:ffff::{i + 1}").GetAddressBytes().CopyTo(body, 7 + 16 * i);
        return new(Packet.ExtRouting, body);
    }

    /// <summary>Fragment header; <paramref name="offset"/> in 8-byte units.</summary>
    public static Ipv6Extension Fragment(ushort offset = 0, bool more = false, uint id = 0xabcd)
    {
        var body = new byte[7];
        BinaryPrimitives.WriteUInt16BigEndian(body.AsSpan(1), (ushort)((offset << 3) | (more ? 1 : 0)));
        BinaryPrimitives.WriteUInt32BigEndian(body.AsSpan(3), id);
        return new(Packet.ExtFragment, body);
    }

    /// <summary>Authentication header with an ICV of <paramref name="icvWords"/> 32-bit words
    /// (total 12 + 4n bytes; n = 3 gives the usual 96-bit ICV and a 24-byte header).</summary>
    public static Ipv6Extension Authentication(int icvWords = 3)
    {
        int total = 12 + 4 * icvWords;
        var body = new byte[total - 1];
        body[0] = (byte)(total / 4 - 2); // Payload Len: 32-bit words minus 2
        BinaryPrimitives.WriteUInt32BigEndian(body.AsSpan(3), 0x100); // SPI
        BinaryPrimitives.WriteUInt32BigEndian(body.AsSpan(7), 1);     // sequence number
        return new(Packet.ExtAuth, body);
    }
}

public sealed record Ipv6Spec
{
    public IPAddress Source { get; init; } = IPAddress.Parse("2001:db8::10");
    public IPAddress Destination { get; init; } = IPAddress.Parse("2001:db8:1::20");
    public IReadOnlyList<Ipv6Extension> Extensions { get; init; } = [];
    /// <summary>The protocol after the last extension header.</summary>
    public byte Protocol { get; init; } = Packet.ProtoTcp;
    public byte HopLimit { get; init; } = 64;
    public byte TrafficClass { get; init; }
    public uint FlowLabel { get; init; }
    /// <summary>Overrides the version nibble (default 6).</summary>
    public int Version { get; init; } = 6;
    /// <summary>Overrides the payload length field (default: extension headers + upper layer).</summary>
    public int? PayloadLength { get; init; }

    public int HeaderLength => 40 + Extensions.Sum(e => e.Length);

    public byte[] Build(ReadOnlySpan<byte> payload)
    {
        if (Source.AddressFamily != AddressFamily.InterNetworkV6 || Destination.AddressFamily != AddressFamily.InterNetworkV6)
            throw new ArgumentException("IPv6 addresses expected");
        var b = new byte[HeaderLength + payload.Length];
        BinaryPrimitives.WriteUInt32BigEndian(b, (uint)(Version << 28) | ((uint)TrafficClass << 20) | (FlowLabel & 0xfffff));
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(4), (ushort)(PayloadLength ?? b.Length - 40));
        b[6] = Extensions.Count > 0 ? Extensions[0].Protocol : Protocol;
        b[7] = HopLimit;
        Source.GetAddressBytes().CopyTo(b, 8);
        Destination.GetAddressBytes().CopyTo(b, 24);
        int off = 40;
        for (int i = 0; i < Extensions.Count; i++)
        {
            b[off] = i + 1 < Extensions.Count ? Extensions[i + 1].Protocol : Protocol;
            Extensions[i].Body.CopyTo(b, off + 1);
            off += Extensions[i].Length;
        }
        payload.CopyTo(b.AsSpan(off));
        if (Protocol == Packet.ProtoTcp)
            Packet.FillTcpChecksum(b.AsSpan(off), b.AsSpan(8, 16), b.AsSpan(24, 16));
        return b;
    }
}

public sealed record TcpSpec
{
    public ushort SourcePort { get; init; } = 40000;
    public ushort DestinationPort { get; init; } = 443;
    public uint Seq { get; init; } = 0x01020304;
    public uint Ack { get; init; } = 0xa0b0c0d0;
    /// <summary>The 13th header byte: CWR ECE URG ACK PSH RST SYN FIN.</summary>
    public byte Flags { get; init; } = 0x18; // PSH|ACK
    public ushort Window { get; init; } = 0xfaf0;
    public ushort UrgentPointer { get; init; }
    /// <summary>Raw option bytes, padded with End-of-Options to a multiple of 4 (at most 40).</summary>
    public byte[] Options { get; init; } = [];
    public byte[] Payload { get; init; } = [];
    /// <summary>Overrides the data offset field in 32-bit words (default: 5 + options).</summary>
    public int? DataOffset { get; init; }

    public int HeaderLength => 20 + ((Options.Length + 3) & ~3);

    public byte[] Build()
    {
        if (HeaderLength > 60) throw new ArgumentException("TCP options are at most 40 bytes");
        var b = new byte[HeaderLength + Payload.Length];
        BinaryPrimitives.WriteUInt16BigEndian(b, SourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(2), DestinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(4), Seq);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(8), Ack);
        b[12] = (byte)(((DataOffset ?? HeaderLength / 4) & 0xf) << 4);
        b[13] = Flags;
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(14), Window);
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(18), UrgentPointer);
        Options.CopyTo(b, 20);
        Payload.CopyTo(b, HeaderLength);
        return b;
    }

    /// <summary>A typical SYN's options: MSS 1460, SACK permitted, timestamps, NOP, window scale 7 (20 bytes).</summary>
    public static byte[] SynOptions =>
        [2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7];
}
