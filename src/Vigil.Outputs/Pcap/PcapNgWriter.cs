using System.Buffers.Binary;
using System.Text;

namespace Vigil.Outputs.Pcap;

/// <summary>Link types of pcap/pcap-ng files (tcpdump.org/linktypes.html).</summary>
public enum PcapLinkType : ushort
{
    Ethernet = 1,
    /// <summary>Raw IPv4 or IPv6; the version nibble tells which.</summary>
    Raw = 101,
}

/// <summary>Writes a pcap-ng file (IETF draft-ietf-opsawg-pcapng): one Section Header Block, an
/// Interface Description Block per (ifindex, link type) pair the first time it is used, and an
/// Enhanced Packet Block per packet with nanosecond timestamps (if_tsresol = 9) and an optional
/// comment. Little-endian (readers detect the byte order from the SHB's magic). Blocks are built in
/// one reused buffer and written with one call: no allocation per packet.</summary>
public sealed class PcapNgWriter : IDisposable
{
    public const uint SectionHeaderType = 0x0A0D0D0A;
    public const uint InterfaceDescriptionType = 0x00000001;
    public const uint EnhancedPacketType = 0x00000006;
    public const uint ByteOrderMagic = 0x1A2B3C4D;

    public const ushort OptEndOfOpt = 0;
    public const ushort OptComment = 1;
    public const ushort ShbUserAppl = 4;
    public const ushort IfName = 2;
    public const ushort IfTsResol = 9;

    private readonly Stream _output;
    private readonly bool _leaveOpen;
    private readonly Dictionary<(uint Ifindex, PcapLinkType LinkType), uint> _interfaces = new();
    private byte[] _block = new byte[4096];

    /// <summary>Interfaces described so far, in id order.</summary>
    public int InterfaceCount => _interfaces.Count;
    public long PacketsWritten { get; private set; }

    /// <summary>Writes the Section Header Block at once.</summary>
    public PcapNgWriter(Stream output, string application = "vigil", bool leaveOpen = false)
    {
        _output = output;
        _leaveOpen = leaveOpen;
        int n = Begin(SectionHeaderType);
        n = U32(n, ByteOrderMagic);
        n = U16(n, 1); // major
        n = U16(n, 0); // minor
        n = U64(n, ulong.MaxValue); // section length: not given (-1)
        n = StringOption(n, ShbUserAppl, application);
        n = U32(n, OptEndOfOpt); // code 0, length 0
        Finish(n);
    }

    /// <summary>The id of the interface for this pair, writing its description block on first use.
    /// Ids count from 0 in order of first use, as the format requires.</summary>
    public uint Interface(uint ifindex, PcapLinkType linkType, string name, uint snaplen)
    {
        if (_interfaces.TryGetValue((ifindex, linkType), out uint id)) return id;
        id = (uint)_interfaces.Count;
        int n = Begin(InterfaceDescriptionType);
        n = U16(n, (ushort)linkType);
        n = U16(n, 0); // reserved
        n = U32(n, snaplen);
        n = StringOption(n, IfName, name);
        n = U16(n, IfTsResol);
        n = U16(n, 1);
        n = Padded(n, [9]); // 10^-9 s: nanoseconds
        n = U32(n, OptEndOfOpt);
        Finish(n);
        _interfaces[(ifindex, linkType)] = id;
        return id;
    }

    /// <summary>An Enhanced Packet Block. <paramref name="originalLength"/> below the captured length is
    /// raised to it (a reader would reject the block otherwise).</summary>
    /// <param name="comment">UTF-8 text for opt_comment; empty = no comment.</param>
    public void WritePacket(uint interfaceId, long unixNs, ReadOnlySpan<byte> data, uint originalLength, ReadOnlySpan<byte> comment = default)
    {
        if (unixNs < 0) unixNs = 0;
        ulong ts = (ulong)unixNs;
        int n = Begin(EnhancedPacketType);
        n = U32(n, interfaceId);
        n = U32(n, (uint)(ts >> 32));
        n = U32(n, (uint)ts);
        n = U32(n, (uint)data.Length);
        n = U32(n, Math.Max(originalLength, (uint)data.Length));
        n = Padded(n, data);
        if (!comment.IsEmpty)
        {
            n = U16(n, OptComment);
            n = U16(n, checked((ushort)comment.Length));
            n = Padded(n, comment);
            n = U32(n, OptEndOfOpt);
        }
        Finish(n);
        PacketsWritten++;
    }

    public void Flush() => _output.Flush();

    /// <summary>Disposing an owned stream flushes it; not flushing first keeps this safe when the
    /// caller has already disposed that stream itself.</summary>
    public void Dispose()
    {
        if (_leaveOpen) _output.Flush();
        else _output.Dispose();
    }

    /// <summary>Starts a block: type, and room for the total length (written by Finish).</summary>
    private int Begin(uint type)
    {
        int n = U32(0, type);
        return n + 4;
    }

    /// <summary>Writes the trailing total length, patches the leading one, and sends the block.</summary>
    private void Finish(int n)
    {
        uint total = (uint)(n + 4);
        n = U32(n, total);
        BinaryPrimitives.WriteUInt32LittleEndian(_block.AsSpan(4), total);
        _output.Write(_block, 0, n);
    }

    private int StringOption(int n, ushort code, string value)
    {
        int length = Encoding.UTF8.GetByteCount(value);
        n = U16(n, code);
        n = U16(n, checked((ushort)length));
        Ensure(n + length + 4);
        Encoding.UTF8.GetBytes(value, _block.AsSpan(n));
        return Pad(n + length);
    }

    private int Padded(int n, ReadOnlySpan<byte> bytes)
    {
        Ensure(n + bytes.Length + 4);
        bytes.CopyTo(_block.AsSpan(n));
        return Pad(n + bytes.Length);
    }

    /// <summary>Zero-fills up to the next multiple of four.</summary>
    private int Pad(int n)
    {
        int padded = (n + 3) & ~3;
        Ensure(padded);
        _block.AsSpan(n, padded - n).Clear();
        return padded;
    }

    private int U16(int n, ushort v)
    {
        Ensure(n + 2);
        BinaryPrimitives.WriteUInt16LittleEndian(_block.AsSpan(n), v);
        return n + 2;
    }

    private int U32(int n, uint v)
    {
        Ensure(n + 4);
        BinaryPrimitives.WriteUInt32LittleEndian(_block.AsSpan(n), v);
        return n + 4;
    }

    private int U64(int n, ulong v)
    {
        Ensure(n + 8);
        BinaryPrimitives.WriteUInt64LittleEndian(_block.AsSpan(n), v);
        return n + 8;
    }

    private void Ensure(int size)
    {
        if (size > _block.Length) Array.Resize(ref _block, Math.Max(size + 64, _block.Length * 2));
    }
}
