using System.Buffers;
using System.Text.Json;
using Vigil.Core.Pipeline;
using Vigil.Core.Tcp;
using Vigil.Wire;

namespace Vigil.Bench;

/// <summary>A minimal JSON-lines sink for the throughput benchmark: Vigil.Outputs has no JSON sink
/// on this branch yet. It serialises every field a JSON consumer would want, allocation-free,
/// into a reused buffer that is written to the target stream in 64 KiB chunks.</summary>
public sealed class BenchJsonSink : ITcpPacketSink, IDisposable
{
    private const int ChunkBytes = 64 * 1024;
    private readonly Stream _target;
    private readonly ArrayBufferWriter<byte> _buffer = new(ChunkBytes * 2);
    private readonly Utf8JsonWriter _json;
    private readonly TimeBase _time = TimeBase.Now();
    private readonly IReadOnlyDictionary<int, string> _ifaces;
    private readonly char[] _scratch = new char[64];

    public long Bytes { get; private set; }

    public BenchJsonSink(Stream target, IReadOnlyDictionary<int, string> interfaceNames)
    {
        _target = target;
        _ifaces = interfaceNames;
        _json = new Utf8JsonWriter(_buffer, new JsonWriterOptions { SkipValidation = true });
    }

    public void Write(in TcpPacket p, ReadOnlySpan<byte> captured)
    {
        var w = _json;
        w.WriteStartObject();
        w.WriteString("time"u8, _time.ToUtc(p.TimestampNs));
        w.WriteNumber("family"u8, p.Family);
        WriteAddress("src"u8, p.Source);
        w.WriteNumber("sport"u8, p.SourcePort);
        WriteAddress("dst"u8, p.Destination);
        w.WriteNumber("dport"u8, p.DestinationPort);
        WriteFlags(p.Flags);
        w.WriteNumber("seq"u8, p.Seq);
        w.WriteNumber("ack"u8, p.Ack);
        w.WriteNumber("window"u8, p.Window);
        w.WriteNumber("payload_len"u8, p.PayloadLength);
        w.WriteNumber("ip_len"u8, p.IpLength);
        if (_ifaces.TryGetValue((int)p.Ifindex, out var iface)) w.WriteString("iface"u8, iface);
        else w.WriteNumber("ifindex"u8, p.Ifindex);
        w.WriteString("hook"u8, p.Hook == TcpHook.Tc ? "tc"u8 : "other"u8);
        if (p.Owner.Known)
        {
            w.WriteNumber("pid"u8, p.Owner.Pid);
            w.WriteNumber("uid"u8, p.Owner.Uid);
            ReadOnlySpan<byte> comm = p.Owner.Comm;
            w.WriteString("comm"u8, comm[..p.Owner.Comm.Length]);
        }
        if (!captured.IsEmpty) w.WriteBase64String("captured"u8, captured);
        w.WriteEndObject();
        w.Flush();
        _buffer.GetSpan(1)[0] = (byte)'\n';
        _buffer.Advance(1);
        w.Reset(_buffer); // next line is a new top-level value
        if (_buffer.WrittenCount >= ChunkBytes) WriteOut();
    }

    private void WriteAddress(ReadOnlySpan<byte> name, in Vigil.Core.Net.IpAddress16 address)
    {
        if (address.TryFormat(_scratch, out int n)) _json.WriteString(name, _scratch.AsSpan(0, n));
        else _json.WriteNull(name);
    }

    private void WriteFlags(TcpFlags flags)
    {
        Span<byte> text = stackalloc byte[8];
        int n = 0;
        if ((flags & TcpFlags.Syn) != 0) text[n++] = (byte)'S';
        if ((flags & TcpFlags.Fin) != 0) text[n++] = (byte)'F';
        if ((flags & TcpFlags.Rst) != 0) text[n++] = (byte)'R';
        if ((flags & TcpFlags.Psh) != 0) text[n++] = (byte)'P';
        if ((flags & TcpFlags.Ack) != 0) text[n++] = (byte)'.';
        if ((flags & TcpFlags.Urg) != 0) text[n++] = (byte)'U';
        if ((flags & TcpFlags.Ece) != 0) text[n++] = (byte)'E';
        if ((flags & TcpFlags.Cwr) != 0) text[n++] = (byte)'W';
        _json.WriteString("flags"u8, text[..n]);
    }

    private void WriteOut()
    {
        _target.Write(_buffer.WrittenSpan);
        Bytes += _buffer.WrittenCount;
        _buffer.ResetWrittenCount();
    }

    public void Flush()
    {
        if (_buffer.WrittenCount > 0) WriteOut();
        _target.Flush();
    }

    public void Dispose() => _json.Dispose();
}
