using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Vigil.Core.Net;
using Vigil.Wire;

namespace Vigil.Core.Tcp;

public enum DecodeResult
{
    Ok,
    /// <summary>Shorter than its header or than the size it claims.</summary>
    Truncated,
    /// <summary>A kind this decoder does not handle.</summary>
    UnknownKind,
    /// <summary>A wire version this build does not understand.</summary>
    UnsupportedVersion,
}

/// <summary>Bytes → <see cref="TcpPacket"/>. Checks every length before reading; never throws on bad input.</summary>
public static class TcpEventDecoder
{
    public static readonly int HeaderSize = Unsafe.SizeOf<EventHeader>();
    public static readonly int EventSize = Unsafe.SizeOf<TcpEvent>();

    public static unsafe DecodeResult TryDecode(ReadOnlySpan<byte> record, out TcpPacket packet, out ReadOnlySpan<byte> captured)
    {
        packet = default;
        captured = default;
        if (record.Length < HeaderSize) return DecodeResult.Truncated;
        var hdr = MemoryMarshal.Read<EventHeader>(record);
        if (hdr.Kind != (ushort)EventKind.TcpPacket) return DecodeResult.UnknownKind;
        if (hdr.Version != WireConstants.Version) return DecodeResult.UnsupportedVersion;
        if (record.Length < EventSize || hdr.Size < EventSize || hdr.Size > record.Length) return DecodeResult.Truncated;
        var ev = MemoryMarshal.Read<TcpEvent>(record);
        if (ev.CapLen > hdr.Size - EventSize) return DecodeResult.Truncated;

        packet.TimestampNs = ev.Hdr.TsNs;
        packet.Family = ev.Family;
        packet.Source = IpAddress16.From(new ReadOnlySpan<byte>(ev.Saddr, 16));
        packet.Destination = IpAddress16.From(new ReadOnlySpan<byte>(ev.Daddr, 16));
        packet.SourcePort = ev.Sport;
        packet.DestinationPort = ev.Dport;
        packet.Seq = ev.Seq;
        packet.Ack = ev.Ack;
        packet.Window = ev.Window;
        packet.Flags = (TcpFlags)ev.Flags;
        packet.Ifindex = ev.Ifindex;
        packet.PayloadLength = ev.PayloadLen;
        packet.IpLength = ev.IpLen;
        packet.NetnsIno = ev.NetnsIno;
        packet.Hook = (TcpHook)ev.Hook;
        packet.LinkType = (LinkType)ev.LinkType;
        packet.CapturedLength = ev.CapLen;
        packet.Owner.Known = ev.Owner.Known != 0;
        if (packet.Owner.Known)
        {
            packet.Owner.Pid = ev.Owner.Pid;
            packet.Owner.Uid = ev.Owner.Uid;
            packet.Owner.Gid = ev.Owner.Gid;
            packet.Owner.CgroupId = ev.Owner.CgroupId;
            new ReadOnlySpan<byte>(ev.Owner.Comm, 16).CopyTo(packet.Owner.Comm);
        }
        captured = record.Slice(EventSize, ev.CapLen);
        return DecodeResult.Ok;
    }
}
