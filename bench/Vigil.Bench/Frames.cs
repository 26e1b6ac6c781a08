using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Vigil.Bench;

/// <summary>Hand-built Ethernet frames carrying one TCP segment, as TC ingress sees them.</summary>
public static class Frames
{
    private const int EthernetHeader = 14, Ipv4Header = 20, Ipv6Header = 40, TcpHeader = 20;

    /// <summary>Ethernet + IPv4 + TCP (ACK|PSH) + <paramref name="payload"/> bytes, 10.213.0.2:40000 → 10.213.0.1:5201.</summary>
    public static byte[] TcpV4(int payload)
    {
        var f = new byte[EthernetHeader + Ipv4Header + TcpHeader + payload];
        Ethernet(f, 0x0800);
        var ip = f.AsSpan(EthernetHeader);
        ip[0] = 0x45; // version 4, IHL 5
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(Ipv4Header + TcpHeader + payload));
        BinaryPrimitives.WriteUInt16BigEndian(ip[6..], 0x4000); // DF, offset 0
        ip[8] = 64;
        ip[9] = 6; // TCP
        ip[12..16].CopyFrom([10, 213, 0, 2]);
        ip[16..20].CopyFrom([10, 213, 0, 1]);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Ipv4Checksum(ip[..Ipv4Header]));
        Tcp(ip[Ipv4Header..], payload);
        return f;
    }

    /// <summary>Ethernet + IPv6 + TCP (ACK|PSH) + payload, [fd00:213::2]:40000 → [fd00:213::1]:5201.</summary>
    public static byte[] TcpV6(int payload)
    {
        var f = new byte[EthernetHeader + Ipv6Header + TcpHeader + payload];
        Ethernet(f, 0x86DD);
        var ip = f.AsSpan(EthernetHeader);
        ip[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(ip[4..], (ushort)(TcpHeader + payload));
        ip[6] = 6; // next header: TCP
        ip[7] = 64;
        byte[] src = [0xfd, 0, 0x02, 0x13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        byte[] dst = [0xfd, 0, 0x02, 0x13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        src.CopyTo(ip[8..]);
        dst.CopyTo(ip[24..]);
        Tcp(ip[Ipv6Header..], payload);
        return f;
    }

    /// <summary>Ethernet + IPv4 or IPv6 (by the addresses) + TCP (ACK|PSH) + payload, source port 40000 to
    /// <paramref name="port"/>: the frames of the guard's per-packet benchmark, to guarded and unguarded destinations.</summary>
    public static byte[] Tcp(IPAddress source, IPAddress destination, ushort port, int payload)
    {
        if (source.AddressFamily != destination.AddressFamily) throw new ArgumentException("source and destination are of different families");
        bool v6 = destination.AddressFamily == AddressFamily.InterNetworkV6;
        var f = v6 ? TcpV6(payload) : TcpV4(payload);
        var ip = f.AsSpan(EthernetHeader);
        if (v6)
        {
            source.GetAddressBytes().CopyTo(ip[8..]);
            destination.GetAddressBytes().CopyTo(ip[24..]);
        }
        else
        {
            source.GetAddressBytes().CopyTo(ip[12..]);
            destination.GetAddressBytes().CopyTo(ip[16..]);
            BinaryPrimitives.WriteUInt16BigEndian(ip[10..], 0);
            BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Ipv4Checksum(ip[..Ipv4Header]));
        }
        BinaryPrimitives.WriteUInt16BigEndian(ip[((v6 ? Ipv6Header : Ipv4Header) + 2)..], port);
        return f;
    }

    private static void Ethernet(Span<byte> f, ushort type)
    {
        f[..6].CopyFrom([0x02, 0, 0, 0, 0, 0x01]);
        f[6..12].CopyFrom([0x02, 0, 0, 0, 0, 0x02]);
        BinaryPrimitives.WriteUInt16BigEndian(f[12..], type);
    }

    private static void Tcp(Span<byte> t, int payload)
    {
        BinaryPrimitives.WriteUInt16BigEndian(t, 40000);
        BinaryPrimitives.WriteUInt16BigEndian(t[2..], 5201);
        BinaryPrimitives.WriteUInt32BigEndian(t[4..], 1_000_000);
        BinaryPrimitives.WriteUInt32BigEndian(t[8..], 2_000_000);
        t[12] = 5 << 4; // data offset: 5 words
        t[13] = 0x18;   // ACK | PSH
        BinaryPrimitives.WriteUInt16BigEndian(t[14..], 502);
        for (int i = 0; i < payload; i++) t[TcpHeader + i] = (byte)i;
    }

    private static ushort Ipv4Checksum(ReadOnlySpan<byte> header)
    {
        uint sum = 0;
        for (int i = 0; i < header.Length; i += 2) sum += BinaryPrimitives.ReadUInt16BigEndian(header[i..]);
        while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
        return (ushort)~sum;
    }
}

internal static class SpanExtensions
{
    public static void CopyFrom(this Span<byte> dst, ReadOnlySpan<byte> src) => src.CopyTo(dst);
}
