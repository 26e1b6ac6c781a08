using System.Buffers.Binary;
using System.Text;
using Vigil.Core.Naming;
using Vigil.Core.Pipeline;
using Vigil.Core.Tcp;
using Vigil.Outputs.Pcap;
using Vigil.Wire;

namespace Vigil.Outputs.Tcp;

/// <summary>Writes captured headers to a pcap-ng file that Wireshark and tshark open. TC events carry
/// Ethernet frames (LINKTYPE_ETHERNET), the other hooks raw IP (LINKTYPE_RAW); each packet's comment
/// names the socket owner: "pid=1234 comm=nginx uid=33 user=www-data gid=33 cgroup_id=4242" (user left
/// out when passwd has no entry) or "owner=unknown". Packets without captured bytes (snaplen 0) cannot
/// be written and are counted in <see cref="SkippedNoBytes"/>.</summary>
public sealed class TcpPcapSink : ITcpPacketSink, IDisposable
{
    public const int EthernetHeaderLength = 14;
    public const int VlanTagLength = 4;

    private static ReadOnlySpan<byte> UnknownOwner => "owner=unknown"u8;

    private readonly PcapNgWriter _writer;
    private readonly TimeBase _time;
    private readonly HostNames _names;
    private readonly uint _snaplen;

    public long Written => _writer.PacketsWritten;
    /// <summary>Packets that arrived with no captured bytes.</summary>
    public long SkippedNoBytes { get; private set; }
    /// <summary>Packets whose captured bytes are of a link type this sink does not know.</summary>
    public long SkippedUnknownLinkType { get; private set; }

    /// <param name="snaplen">The sensor's snaplen, recorded in each interface description.</param>
    public TcpPcapSink(Stream output, TimeBase time, HostNames names, uint snaplen = WireConstants.TcpMaxSnaplen, bool leaveOpen = false)
    {
        _writer = new PcapNgWriter(output, "vigil watch tcp", leaveOpen);
        _time = time;
        _names = names;
        _snaplen = snaplen;
    }

    public void Write(in TcpPacket packet, ReadOnlySpan<byte> captured)
    {
        if (captured.IsEmpty) { SkippedNoBytes++; return; }
        PcapLinkType linkType;
        uint originalLength;
        switch (packet.LinkType)
        {
            case LinkType.Ethernet:
                linkType = PcapLinkType.Ethernet;
                originalLength = (uint)EthernetHeaderLengthOf(captured) + packet.IpLength;
                break;
            case LinkType.RawIp:
                linkType = PcapLinkType.Raw;
                originalLength = packet.IpLength;
                break;
            default:
                SkippedUnknownLinkType++;
                return;
        }
        uint id = _writer.Interface(packet.Ifindex, linkType, _names.InterfaceName(packet.Ifindex), _snaplen);
        Span<byte> comment = stackalloc byte[MaxCommentLength];
        int commentLength = OwnerComment(in packet.Owner, comment);
        _writer.WritePacket(id, _time.ToUnixNanoseconds(packet.TimestampNs), captured, originalLength, comment[..commentLength]);
    }

    public void Flush() => _writer.Flush();

    public void Dispose() => _writer.Dispose();

    /// <summary>Where IP starts in an Ethernet frame: 14 bytes, plus 4 per 802.1Q/802.1ad tag
    /// present in the captured bytes.</summary>
    public static int EthernetHeaderLengthOf(ReadOnlySpan<byte> frame)
    {
        int length = EthernetHeaderLength;
        while (frame.Length >= length + VlanTagLength)
        {
            ushort etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[(length - 2)..]);
            if (etherType is not (0x8100 or 0x88A8)) break;
            length += VlanTagLength;
        }
        return length;
    }

    private const int MaxCommentLength = 512;

    private int OwnerComment(in SocketOwner owner, Span<byte> dst)
    {
        if (!owner.Known)
        {
            UnknownOwner.CopyTo(dst);
            return UnknownOwner.Length;
        }
        int n = 0;
        Append("pid="u8, dst, ref n); Number(owner.Pid, dst, ref n);
        Append(" comm="u8, dst, ref n); Text(_names.CommText(in owner.Comm), dst, ref n);
        Append(" uid="u8, dst, ref n); Number(owner.Uid, dst, ref n);
        if (_names.TryUserName(owner.Uid) is { } user) { Append(" user="u8, dst, ref n); Text(user, dst, ref n); }
        Append(" gid="u8, dst, ref n); Number(owner.Gid, dst, ref n);
        Append(" cgroup_id="u8, dst, ref n); Number(owner.CgroupId, dst, ref n);
        return n;
    }

    private static void Append(ReadOnlySpan<byte> ascii, Span<byte> dst, ref int n)
    {
        ascii.CopyTo(dst[n..]);
        n += ascii.Length;
    }

    private static void Number(ulong value, Span<byte> dst, ref int n)
    {
        value.TryFormat(dst[n..], out int w);
        n += w;
    }

    /// <summary>Names are short (comm ≤ 15 bytes, user names ≤ 32 by convention); an absurdly long one
    /// is cut rather than overflowing the comment.</summary>
    private static void Text(string text, Span<byte> dst, ref int n)
    {
        var room = dst[n..];
        if (room.Length > 64) room = room[..64];
        if (Encoding.UTF8.TryGetBytes(text, room, out int w)) { n += w; return; }
        Append("?"u8, dst, ref n);
    }
}
