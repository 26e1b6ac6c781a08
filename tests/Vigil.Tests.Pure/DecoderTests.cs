using System.Runtime.InteropServices;
using Vigil.Core.Tcp;
using Vigil.Wire;

namespace Vigil.Tests.Pure;

public class DecoderTests
{
    private static byte[] Record(int capLen = 0, ushort kind = 1, ushort version = 1, uint? size = null)
    {
        int total = TcpEventDecoder.EventSize + capLen;
        var buf = new byte[(total + 7) & ~7];
        var ev = new TcpEvent { Sport = 40000, Dport = 80, Seq = 1, Ack = 2, Window = 512, Flags = 0x12, Family = 4, CapLen = (ushort)capLen };
        ev.Hdr = new EventHeader { Kind = kind, Version = version, Size = size ?? (uint)buf.Length, TsNs = 123 };
        MemoryMarshal.Write(buf, in ev);
        return buf;
    }

    [Fact]
    public void DecodesAWellFormedRecord()
    {
        Assert.Equal(DecodeResult.Ok, TcpEventDecoder.TryDecode(Record(), out var p, out var cap));
        Assert.Equal(40000, p.SourcePort);
        Assert.Equal(80, p.DestinationPort);
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, p.Flags);
        Assert.Equal(0, cap.Length);
    }

    [Fact]
    public void TruncatedAndUnknownRecordsAreRejectedNotThrown()
    {
        var full = Record(capLen: 20);
        Assert.Equal(DecodeResult.Truncated, TcpEventDecoder.TryDecode(full.AsSpan(0, 10), out _, out _));
        Assert.Equal(DecodeResult.Truncated, TcpEventDecoder.TryDecode(full.AsSpan(0, TcpEventDecoder.EventSize - 1), out _, out _));
        Assert.Equal(DecodeResult.UnknownKind, TcpEventDecoder.TryDecode(Record(kind: 99), out _, out _));
        Assert.Equal(DecodeResult.UnsupportedVersion, TcpEventDecoder.TryDecode(Record(version: 7), out _, out _));
        Assert.Equal(DecodeResult.Truncated, TcpEventDecoder.TryDecode(Record(size: 4096), out _, out _));
    }
}
