using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using Vigil.Core.Naming;
using Vigil.Core.Pipeline;
using Vigil.Core.Tcp;
using Vigil.Outputs.Text;
using Vigil.Wire;

namespace Vigil.Outputs.Tcp;

/// <summary>JSON lines: one object per packet, fields in a fixed order (docs/events.md).
/// One Utf8JsonWriter and one buffer are reused, so a warm sink allocates nothing per packet;
/// the buffer goes to the stream when it passes <see cref="FlushThreshold"/> bytes and on Flush().</summary>
public sealed class TcpJsonSink : ITcpPacketSink, IDisposable
{
    public const int FlushThreshold = 64 * 1024;

    private static readonly JsonEncodedText Time = JsonEncodedText.Encode("time");
    private static readonly JsonEncodedText Hook = JsonEncodedText.Encode("hook");
    private static readonly JsonEncodedText Iface = JsonEncodedText.Encode("iface");
    private static readonly JsonEncodedText Ifindex = JsonEncodedText.Encode("ifindex");
    private static readonly JsonEncodedText Family = JsonEncodedText.Encode("family");
    private static readonly JsonEncodedText Saddr = JsonEncodedText.Encode("saddr");
    private static readonly JsonEncodedText Sport = JsonEncodedText.Encode("sport");
    private static readonly JsonEncodedText Daddr = JsonEncodedText.Encode("daddr");
    private static readonly JsonEncodedText Dport = JsonEncodedText.Encode("dport");
    private static readonly JsonEncodedText Seq = JsonEncodedText.Encode("seq");
    private static readonly JsonEncodedText Ack = JsonEncodedText.Encode("ack");
    private static readonly JsonEncodedText Flags = JsonEncodedText.Encode("flags");
    private static readonly JsonEncodedText Window = JsonEncodedText.Encode("window");
    private static readonly JsonEncodedText PayloadLen = JsonEncodedText.Encode("payload_len");
    private static readonly JsonEncodedText IpLen = JsonEncodedText.Encode("ip_len");
    private static readonly JsonEncodedText Pid = JsonEncodedText.Encode("pid");
    private static readonly JsonEncodedText Comm = JsonEncodedText.Encode("comm");
    private static readonly JsonEncodedText Uid = JsonEncodedText.Encode("uid");
    private static readonly JsonEncodedText User = JsonEncodedText.Encode("user");
    private static readonly JsonEncodedText Gid = JsonEncodedText.Encode("gid");
    private static readonly JsonEncodedText CgroupId = JsonEncodedText.Encode("cgroup_id");

    private static readonly JsonEncodedText[] HookNames =
    [
        JsonEncodedText.Encode("unknown"),
        JsonEncodedText.Encode("kprobe"),
        JsonEncodedText.Encode("fentry"),
        JsonEncodedText.Encode("tc"),
        JsonEncodedText.Encode("cgroup"),
    ];

    private readonly Stream _output;
    private readonly TimeBase _time;
    private readonly HostNames _names;
    private readonly ArrayBufferWriter<byte> _buffer = new(FlushThreshold + 4096);
    private readonly Utf8JsonWriter _json;

    public TcpJsonSink(Stream output, TimeBase time, HostNames names)
    {
        _output = output;
        _time = time;
        _names = names;
        // Relaxed escaping keeps comm and interface names readable ("a+b", not "a\u002Bb");
        // the output is JSON lines, never embedded in HTML.
        _json = new Utf8JsonWriter(_buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
    }

    public void Write(in TcpPacket packet, ReadOnlySpan<byte> captured)
    {
        var w = _json;
        w.WriteStartObject();

        Span<byte> time = stackalloc byte[TimeText.Rfc3339NanosLength];
        w.WriteString(Time, time[..TimeText.Rfc3339Nanos(_time.ToUnixNanoseconds(packet.TimestampNs), time)]);
        w.WriteString(Hook, HookName(packet.Hook));
        WriteStringOrNull(w, Iface, _names.TryInterfaceName(packet.Ifindex));
        w.WriteNumber(Ifindex, packet.Ifindex);
        w.WriteNumber(Family, packet.Family);

        Span<char> addr = stackalloc char[AddressText.MaxAddressLength];
        w.WriteString(Saddr, addr[..AddressText.Format(in packet.Source, packet.Family, addr)]);
        w.WriteNumber(Sport, packet.SourcePort);
        w.WriteString(Daddr, addr[..AddressText.Format(in packet.Destination, packet.Family, addr)]);
        w.WriteNumber(Dport, packet.DestinationPort);
        w.WriteNumber(Seq, packet.Seq);
        w.WriteNumber(Ack, packet.Ack);

        w.WriteStartArray(Flags);
        for (int i = 0; i < TcpFlagText.Order.Length; i++)
            if ((packet.Flags & TcpFlagText.Order[i]) != 0) w.WriteStringValue(TcpFlagText.JsonNames[i]);
        w.WriteEndArray();

        w.WriteNumber(Window, packet.Window);
        w.WriteNumber(PayloadLen, packet.PayloadLength);
        w.WriteNumber(IpLen, packet.IpLength);

        ref readonly var owner = ref packet.Owner;
        if (owner.Known)
        {
            w.WriteNumber(Pid, owner.Pid);
            w.WriteString(Comm, _names.CommText(in owner.Comm));
            w.WriteNumber(Uid, owner.Uid);
            WriteStringOrNull(w, User, _names.TryUserName(owner.Uid));
            w.WriteNumber(Gid, owner.Gid);
            w.WriteNumber(CgroupId, owner.CgroupId);
        }
        else
        {
            w.WriteNull(Pid);
            w.WriteNull(Comm);
            w.WriteNull(Uid);
            w.WriteNull(User);
            w.WriteNull(Gid);
            w.WriteNull(CgroupId);
        }

        w.WriteEndObject();
        w.Flush();
        _buffer.GetSpan(1)[0] = (byte)'\n';
        _buffer.Advance(1);
        w.Reset(); // the next object is a new top-level value
        if (_buffer.WrittenCount >= FlushThreshold) Drain();
    }

    public void Flush()
    {
        Drain();
        _output.Flush();
    }

    public void Dispose()
    {
        Flush();
        _json.Dispose();
    }

    private void Drain()
    {
        if (_buffer.WrittenCount == 0) return;
        _output.Write(_buffer.WrittenSpan);
        _buffer.ResetWrittenCount();
    }

    private static JsonEncodedText HookName(TcpHook hook) =>
        (uint)hook < (uint)HookNames.Length ? HookNames[(int)hook] : HookNames[0];

    private static void WriteStringOrNull(Utf8JsonWriter w, JsonEncodedText name, string? value)
    {
        if (value is null) w.WriteNull(name);
        else w.WriteString(name, value);
    }
}
