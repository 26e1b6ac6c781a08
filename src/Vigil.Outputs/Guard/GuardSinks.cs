using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using Vigil.Core.Guard;
using Vigil.Core.Naming;
using Vigil.Core.Pipeline;
using Vigil.Outputs.Text;
using Vigil.Wire;

namespace Vigil.Outputs.Guard;

/// <summary>Receives decoded guard decisions (docs/events.md, "Guard events").</summary>
public interface IGuardDecisionSink
{
    void Write(in GuardDecision decision);
    void Flush();
}

/// <summary>Names shared by the guard's sinks.</summary>
public static class GuardText
{
    public static string Verdict(GuardVerdict v) => v switch
    {
        GuardVerdict.Audit => "audit",
        GuardVerdict.Deny => "deny",
        _ => "unknown",
    };

    public static string Hook(GuardHook h) => h switch
    {
        GuardHook.Connect4 => "connect4",
        GuardHook.Connect6 => "connect6",
        GuardHook.Sendmsg4 => "sendmsg4",
        GuardHook.Sendmsg6 => "sendmsg6",
        GuardHook.Egress => "egress",
        GuardHook.TcEgress => "tc-egress",
        _ => "unknown",
    };

    private static readonly string[] ProtocolNumbers = Enumerable.Range(0, 256).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();

    public static string Protocol(byte p) => p switch
    {
        6 => "tcp",
        17 => "udp",
        1 => "icmp",
        58 => "icmpv6",
        _ => ProtocolNumbers[p],
    };
}

/// <summary>JSON lines, one object per decision, fields in a fixed order (docs/events.md).</summary>
public sealed class GuardJsonSink : IGuardDecisionSink, IDisposable
{
    private readonly Stream _output;
    private readonly TimeBase _time;
    private readonly IGuardNames _names;
    private readonly ArrayBufferWriter<byte> _buffer = new(16 * 1024);
    private readonly Utf8JsonWriter _json;

    public GuardJsonSink(Stream output, TimeBase time, IGuardNames names)
    {
        _output = output;
        _time = time;
        _names = names;
        _json = new Utf8JsonWriter(_buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
    }

    public void Write(in GuardDecision d)
    {
        var w = _json;
        w.WriteStartObject();
        Span<byte> time = stackalloc byte[TimeText.Rfc3339NanosLength];
        w.WriteString("time"u8, time[..TimeText.Rfc3339Nanos(_time.ToUnixNanoseconds(d.TimestampNs), time)]);
        w.WriteString("verdict"u8, GuardText.Verdict(d.Verdict));
        w.WriteString("hook"u8, GuardText.Hook(d.Hook));
        w.WriteNumber("rule_id"u8, d.Rule);
        WriteStringOrNull(w, "rule"u8, _names.RuleName(d.Rule));
        w.WriteStartArray("violated"u8);
        for (int i = 0; i < GuardConstants.MaxRules; i++)
            if ((d.Violated >> i & 1) != 0) w.WriteNumberValue(i);
        w.WriteEndArray();
        w.WriteNumber("policy_generation"u8, d.Generation);
        if (d.TaskKnown)
        {
            w.WriteNumber("pid"u8, d.Tgid);
            w.WriteNumber("tid"u8, d.Pid);
            w.WriteString("comm"u8, _names.CommText(in d.Comm));
        }
        else
        {
            w.WriteNull("pid"u8);
            w.WriteNull("tid"u8);
            w.WriteNull("comm"u8);
        }
        if (d.Uid is { } uid)
        {
            w.WriteNumber("uid"u8, uid);
            WriteStringOrNull(w, "user"u8, _names.UserName(uid));
        }
        else
        {
            w.WriteNull("uid"u8);
            w.WriteNull("user"u8);
        }
        if (d.Gid is { } gid) w.WriteNumber("gid"u8, gid);
        else w.WriteNull("gid"u8);
        WriteStringOrNull(w, "exe"u8, _names.ExecutablePath(in d));
        if (d.ExeInode != 0)
        {
            w.WriteNumber("exe_inode"u8, d.ExeInode);
            Span<char> dev = stackalloc char[24];
            d.ExeDevMajor.TryFormat(dev, out int n1);
            dev[n1] = ':';
            d.ExeDevMinor.TryFormat(dev[(n1 + 1)..], out int n2);
            w.WriteString("exe_dev"u8, dev[..(n1 + 1 + n2)]);
        }
        else
        {
            w.WriteNull("exe_inode"u8);
            w.WriteNull("exe_dev"u8);
        }
        if (d.CgroupId != 0) w.WriteNumber("cgroup_id"u8, d.CgroupId);
        else w.WriteNull("cgroup_id"u8); // no owner: a forwarded packet
        var cgroup = d.CgroupId != 0 ? _names.CgroupPath(d.CgroupId) : null;
        WriteStringOrNull(w, "cgroup"u8, cgroup);
        WriteStringOrNull(w, "container_id"u8, ContainerId.FromCgroupPath(cgroup));
        w.WriteNumber("family"u8, d.Family);
        w.WriteString("protocol"u8, GuardText.Protocol(d.Protocol));
        Span<char> addr = stackalloc char[AddressText.MaxAddressLength];
        w.WriteString("daddr"u8, addr[..AddressText.Format(in d.Destination, d.Family, addr)]);
        w.WriteNumber("dport"u8, d.Port);
        w.WriteNumber("suppressed"u8, d.Suppressed);
        w.WriteEndObject();
        w.Flush();
        _buffer.GetSpan(1)[0] = (byte)'\n';
        _buffer.Advance(1);
        w.Reset();
    }

    public void Flush()
    {
        if (_buffer.WrittenCount > 0)
        {
            _output.Write(_buffer.WrittenSpan);
            _buffer.ResetWrittenCount();
        }
        _output.Flush();
    }

    public void Dispose()
    {
        Flush();
        _json.Dispose();
    }

    private static void WriteStringOrNull(Utf8JsonWriter w, ReadOnlySpan<byte> name, string? value)
    {
        if (value is null) w.WriteNull(name);
        else w.WriteString(name, value);
    }
}

/// <summary>A table for people: one row per decision, times of day in UTC; "-" marks what is unknown.
/// Rows are built in stack memory; the cgroup/executable column is cached per (cgroup, executable), so a
/// row allocates nothing once its names are known.</summary>
public sealed class GuardTableSink(TextWriter output, TimeBase time, IGuardNames names) : IGuardDecisionSink
{
    private const int MaxCachedPlaces = 4096;
    private readonly Dictionary<(ulong Cgroup, uint Dev, ulong Inode), string> _places = new();
    private bool _headerWritten;

    public void Write(in GuardDecision d)
    {
        if (!_headerWritten)
        {
            output.WriteLine($"{"TIME(UTC)",-16} {"VERDICT",-7} {"HOOK",-9} {"PID",7} {"COMM",-15} {"USER",-10} {"DESTINATION",-30} {"PROTO",-5} {"RULE",-20} {"SUPPR",5} {"CGROUP / EXE"}");
            _headerWritten = true;
        }
        var where = Place(in d);
        var rule = names.RuleName(d.Rule);
        int capacity = 160 + AddressText.MaxEndpointLength + where.Length + (rule?.Length ?? 0);
        Span<char> buffer = capacity <= 4096 ? stackalloc char[capacity] : new char[capacity];
        var line = new LineBuilder(buffer);
        Span<char> field = stackalloc char[AddressText.MaxEndpointLength];

        int n = TimeText.ClockMicros(time.ToUnixNanoseconds(d.TimestampNs), field);
        line.Left(field[..n], 16);
        line.Left(GuardText.Verdict(d.Verdict), 7);
        line.Left(GuardText.Hook(d.Hook), 9);
        if (d.TaskKnown) line.Right(d.Tgid, 7);
        else line.Right("-", 7);
        line.Left(d.TaskKnown ? names.CommText(in d.Comm) : "-", 15);
        if (d.Uid is not { } uid) line.Left("-", 10);
        else if (names.UserName(uid) is { } user) line.LeftTruncated(user, 10);
        else
        {
            uid.TryFormat(field, out n);
            line.LeftTruncated(field[..n], 10);
        }
        n = AddressText.FormatEndpoint(in d.Destination, d.Family, d.Port, field);
        line.Left(field[..n], 30);
        line.Left(GuardText.Protocol(d.Protocol), 5);
        if (rule is not null) line.Left(rule, 20);
        else
        {
            d.Rule.TryFormat(field, out n);
            line.Left(field[..n], 20);
        }
        line.Right(d.Suppressed, 5);
        line.Append(where);
        line.EndLine();
        output.Write(line.Text);
    }

    /// <summary>"CGROUP [(container ID)] [EXE]", cached once the executable is known (or known to be unknown).</summary>
    private string Place(in GuardDecision d)
    {
        var key = (d.CgroupId, d.ExeDev, d.ExeInode);
        if (_places.TryGetValue(key, out var place)) return place;
        if (d.CgroupId == 0) return "-"; // no owner: a forwarded packet
        var cgroup = names.CgroupPath(d.CgroupId);
        var container = ContainerId.FromCgroupPath(cgroup);
        var exe = names.ExecutablePath(in d);
        place = (cgroup ?? $"cgroup {d.CgroupId}") + (container is null ? "" : $" (container {container[..12]})") + (exe is null ? "" : " " + exe);
        if (cgroup is not null && (exe is not null || d.ExeInode == 0))
        {
            if (_places.Count >= MaxCachedPlaces) _places.Clear();
            _places[key] = place;
        }
        return place;
    }

    public void Flush() => output.Flush();
}
