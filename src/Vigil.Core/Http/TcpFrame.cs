using System.Buffers.Binary;
using Vigil.Core.Net;

namespace Vigil.Core.Http;

/// <summary>One TCP segment parsed from an Ethernet frame (the socket-filter path of `vigil watch http`).</summary>
public ref struct TcpFrame
{
    public IpAddress16 Source, Destination;
    public byte Family;
    public ushort SourcePort, DestinationPort;
    public uint Seq;
    public byte Flags;
    public ReadOnlySpan<byte> Payload;

    public const byte Fin = 0x01, Syn = 0x02, Rst = 0x04;

    /// <summary>Ethernet (up to two VLAN tags) → IPv4 or IPv6 (extension headers walked) → TCP. False for
    /// anything else or anything cut short; never throws. The payload is cut to the IP length (Ethernet padding).</summary>
    public static bool TryParse(ReadOnlySpan<byte> f, out TcpFrame t)
    {
        t = default;
        if (f.Length < 14) return false;
        int off = 12;
        ushort type = BinaryPrimitives.ReadUInt16BigEndian(f[off..]);
        for (int i = 0; i < 2 && type is 0x8100 or 0x88A8; i++)
        {
            off += 4;
            if (f.Length < off + 2) return false;
            type = BinaryPrimitives.ReadUInt16BigEndian(f[off..]);
        }
        var ip = f[(off + 2)..];
        int l4, end;
        byte proto;
        if (type == 0x0800)
        {
            if (ip.Length < 20 || ip[0] >> 4 != 4) return false;
            int ihl = (ip[0] & 0xf) * 4;
            end = BinaryPrimitives.ReadUInt16BigEndian(ip[2..]);
            if (ihl < 20 || end < ihl || end > ip.Length) return false;
            if ((BinaryPrimitives.ReadUInt16BigEndian(ip[6..]) & 0x1fff) != 0) return false; // a later fragment
            proto = ip[9];
            t.Family = 4;
            t.Source = V4(ip.Slice(12, 4));
            t.Destination = V4(ip.Slice(16, 4));
            l4 = ihl;
        }
        else if (type == 0x86DD)
        {
            if (ip.Length < 40 || ip[0] >> 4 != 6) return false;
            end = 40 + BinaryPrimitives.ReadUInt16BigEndian(ip[4..]);
            if (end > ip.Length) return false;
            t.Family = 6;
            t.Source = IpAddress16.From(ip.Slice(8, 16));
            t.Destination = IpAddress16.From(ip.Slice(24, 16));
            proto = ip[6];
            l4 = 40;
            for (int i = 0; i < 8 && proto is 0 or 43 or 44 or 51 or 60; i++)
            {
                if (l4 + 8 > end) return false;
                byte next = ip[l4];
                if (proto == 44)
                {
                    if ((BinaryPrimitives.ReadUInt16BigEndian(ip[(l4 + 2)..]) & 0xfff8) != 0) return false;
                    l4 += 8;
                }
                else l4 += proto == 51 ? (ip[l4 + 1] + 2) * 4 : (ip[l4 + 1] + 1) * 8;
                proto = next;
            }
        }
        else return false;
        if (proto != 6 || l4 + 20 > end) return false;
        var tcp = ip[l4..end];
        int doff = (tcp[12] >> 4) * 4;
        if (doff < 20 || doff > tcp.Length) return false;
        t.SourcePort = BinaryPrimitives.ReadUInt16BigEndian(tcp);
        t.DestinationPort = BinaryPrimitives.ReadUInt16BigEndian(tcp[2..]);
        t.Seq = BinaryPrimitives.ReadUInt32BigEndian(tcp[4..]);
        t.Flags = tcp[13];
        t.Payload = tcp[doff..];
        return true;
    }

    private static IpAddress16 V4(ReadOnlySpan<byte> a)
    {
        Span<byte> m = stackalloc byte[16];
        m[10] = 0xff; m[11] = 0xff;
        a.CopyTo(m[12..]);
        return IpAddress16.From(m);
    }

    /// <summary>A key for the connection (both addresses and ports), stable within one process.</summary>
    public readonly ulong FlowKey()
    {
        var h = new HashCode();
        h.AddBytes(Source);
        h.AddBytes(Destination);
        h.Add(SourcePort);
        h.Add(DestinationPort);
        return (ulong)(uint)h.ToHashCode() << 32 | (uint)(SourcePort << 16 | DestinationPort);
    }
}

/// <summary>Feeds TCP segments of the socket-filter path into <see cref="HttpStreams"/>: stream offsets
/// from each flow's first sequence number (the SYN's + 1 when it was seen), duplicates (a loopback frame
/// seen leaving and arriving) and retransmissions dropped by the reassembly. Bounded like the streams.</summary>
public sealed class PacketHttpStreams(HttpStreams streams, int budget, int maxFlows = 4096)
{
    private readonly Dictionary<ulong, uint> _base = new();
    public long Segments, NotTcp;

    public void Add(ReadOnlySpan<byte> frame, ulong nowNs)
    {
        if (!TcpFrame.TryParse(frame, out var t)) { NotTcp++; return; }
        Segments++;
        ulong key = t.FlowKey();
        bool end = (t.Flags & (TcpFrame.Fin | TcpFrame.Rst)) != 0;
        if ((t.Flags & TcpFrame.Syn) != 0)
        {
            if (_base.Count >= maxFlows) _base.Clear();
            _base[key] = t.Seq + 1;
            return;
        }
        if (!_base.TryGetValue(key, out var b))
        {
            if (t.Payload.IsEmpty) return;
            if (_base.Count >= maxFlows) _base.Clear();
            _base[key] = b = t.Seq;
        }
        uint offset = t.Seq - b;
        if (offset > int.MaxValue) return; // before the base: an old retransmission
        if (offset >= budget && !end) return; // past the capture budget, like the guard's capture
        var origin = new HttpOrigin
        {
            OwnerKnown = false, Family = t.Family, Destination = t.Destination, Port = t.DestinationPort,
            Source = t.Source, SourcePort = t.SourcePort,
        };
        streams.Add(key, in origin, offset, t.Payload, end, nowNs);
        if (end) _base.Remove(key);
    }
}
