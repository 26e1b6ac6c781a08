using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Vigil.Core.Guard;
using Vigil.Core.Http;
using Vigil.Core.Naming;
using Vigil.Core.Pipeline;
using Vigil.Outputs.Guard;
using Vigil.Outputs.Text;
using Vigil.Wire;

namespace Vigil.Outputs.Http;

/// <summary>Text of captured requests shared by the HTTP sinks. Every value that leaves goes through
/// <see cref="HttpRedaction"/> here: there is no unredacted path.</summary>
public static class HttpText
{
    public const int MaxValue = 256;
    public const int MaxBody = 256;

    /// <summary>Bytes as Latin-1 characters (lossless, never throws on invalid UTF-8); JSON escapes controls.</summary>
    public static int Latin1(ReadOnlySpan<byte> bytes, Span<char> chars)
    {
        int n = Math.Min(bytes.Length, chars.Length);
        for (int i = 0; i < n; i++) chars[i] = (char)bytes[i];
        return n;
    }

    /// <summary>The value to print for a header: redacted for secret headers, else cut at <see cref="MaxValue"/>.</summary>
    public static ReadOnlySpan<byte> HeaderValue(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value) =>
        HttpRedaction.IsSecretHeader(name) ? HttpRedaction.Marker : value[..Math.Min(value.Length, MaxValue)];

    /// <summary>The request target with secret query values redacted, into <paramref name="output"/>.</summary>
    public static int Target(ReadOnlySpan<byte> target, Span<byte> output) => HttpRedaction.Redact(target, output);

    public static string Verdict(in HttpOrigin o) => !o.OwnerKnown ? "-" : o.Verdict == (byte)GuardVerdict.Audit ? "audit" : "allowed";

    public static void AppendClasses(StringBuilder sb, MetadataClass classes)
    {
        bool first = true;
        foreach (var (c, name) in MetadataClassifier.Names)
            if ((classes & c) != 0) { if (!first) sb.Append(','); sb.Append(name); first = false; }
        if (first) sb.Append('-');
    }

    public static readonly (HttpAnomaly Flag, string Name)[] AnomalyNames =
    [
        (HttpAnomaly.BareLf, "bare_lf"), (HttpAnomaly.TooManyHeaders, "too_many_headers"), (HttpAnomaly.ObsFold, "obs_fold"),
        (HttpAnomaly.BadHeaderLine, "bad_header_line"), (HttpAnomaly.ChunkedBody, "chunked_body"), (HttpAnomaly.BadContentLength, "bad_content_length"),
    ];
}

/// <summary>JSON lines, one object per request, <c>"kind":"http"</c> (docs/events.md, "HTTP audit events").</summary>
public sealed class HttpJsonSink : IHttpRequestSink, IDisposable
{
    private readonly Stream _output;
    private readonly TimeBase _time;
    private readonly IGuardNames? _names;
    private readonly string _capture;
    private readonly ArrayBufferWriter<byte> _buffer = new(16 * 1024);
    private readonly Utf8JsonWriter _json;
    private readonly byte[] _scratch = new byte[HttpRedaction.MaxRedactedLength(GuardConstants.HttpMaxBytes)];
    private readonly char[] _chars = new char[HttpRedaction.MaxRedactedLength(GuardConstants.HttpMaxBytes)];

    private static readonly JsonEncodedText[] NoOwnerFields =
        new[] { "verdict", "hook", "rule_id", "rule", "policy_generation", "pid", "tid", "comm", "uid", "user", "gid",
                "exe", "exe_inode", "exe_dev", "cgroup_id", "cgroup", "container_id" }.Select(f => JsonEncodedText.Encode(f)).ToArray();

    /// <param name="capture">"cgroup" (guard's capture, identity known) or "packet" (socket filter).</param>
    public HttpJsonSink(Stream output, TimeBase time, IGuardNames? names, string capture)
    {
        _output = output;
        _time = time;
        _names = names;
        _capture = capture;
        _json = new Utf8JsonWriter(_buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
    }

    private void WriteBytes(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        int n = HttpText.Latin1(value, _chars);
        _json.WriteString(name, _chars.AsSpan(0, n));
    }

    public void Write(in HttpRequestView v)
    {
        var w = _json;
        ref readonly var o = ref v.Origin;
        ref readonly var r = ref v.Request;
        var b = v.Bytes;
        w.WriteStartObject();
        w.WriteString("kind"u8, "http"u8);
        Span<byte> time = stackalloc byte[TimeText.Rfc3339NanosLength];
        w.WriteString("time"u8, time[..TimeText.Rfc3339Nanos(_time.ToUnixNanoseconds(v.TimestampNs), time)]);
        w.WriteString("capture"u8, _capture);
        if (o.OwnerKnown)
        {
            w.WriteString("verdict"u8, HttpText.Verdict(in o));
            w.WriteString("hook"u8, GuardText.Hook(o.Hook));
            w.WriteNumber("rule_id"u8, o.Rule);
            WriteOrNull("rule"u8, _names?.RuleName(o.Rule));
            w.WriteNumber("policy_generation"u8, o.Generation);
            w.WriteNumber("pid"u8, o.Tgid);
            w.WriteNumber("tid"u8, o.Pid);
            w.WriteString("comm"u8, _names?.CommText(in o.Comm) ?? o.Comm.ToString());
            w.WriteNumber("uid"u8, o.Uid);
            WriteOrNull("user"u8, _names?.UserName(o.Uid));
            w.WriteNumber("gid"u8, o.Gid);
            var d = o.AsDecision();
            WriteOrNull("exe"u8, _names?.ExecutablePath(in d));
            if (o.ExeInode != 0)
            {
                w.WriteNumber("exe_inode"u8, o.ExeInode);
                Span<char> dev = stackalloc char[24];
                o.ExeDevMajor.TryFormat(dev, out int n1);
                dev[n1] = ':';
                o.ExeDevMinor.TryFormat(dev[(n1 + 1)..], out int n2);
                w.WriteString("exe_dev"u8, dev[..(n1 + 1 + n2)]);
            }
            else { w.WriteNull("exe_inode"u8); w.WriteNull("exe_dev"u8); }
            w.WriteNumber("cgroup_id"u8, o.CgroupId);
            var cgroup = _names?.CgroupPath(o.CgroupId);
            WriteOrNull("cgroup"u8, cgroup);
            WriteOrNull("container_id"u8, ContainerId.FromCgroupPath(cgroup));
        }
        else
        {
            // The socket-filter path sees packets, not processes: no owner, never guessed.
            foreach (var f in NoOwnerFields) w.WriteNull(f);
        }
        w.WriteNumber("family"u8, o.Family);
        Span<char> addr = stackalloc char[AddressText.MaxAddressLength];
        if (o.SourcePort != 0)
        {
            w.WriteString("saddr"u8, addr[..AddressText.Format(in o.Source, o.Family, addr)]);
            w.WriteNumber("sport"u8, o.SourcePort);
        }
        w.WriteString("daddr"u8, addr[..AddressText.Format(in o.Destination, o.Family, addr)]);
        w.WriteNumber("dport"u8, o.Port);
        w.WriteNumber("request_index"u8, v.Index);
        WriteBytes("method"u8, r.Method.Of(b));
        int tn = HttpText.Target(r.Target.Of(b), _scratch);
        WriteBytes("target"u8, _scratch.AsSpan(0, tn));
        Span<byte> pathBuf = stackalloc byte[Math.Min(r.Target.Length, 2048)];
        WriteBytes("path"u8, MetadataClassifier.NormalisedPath(r.Target.Of(b), pathBuf)); // no query: nothing to redact
        if (r.Version.IsEmpty) w.WriteNull("version"u8); else WriteBytes("version"u8, r.Version.Of(b));
        int host = r.Find(b, "Host"u8);
        if (host < 0) w.WriteNull("host"u8); else WriteBytes("host"u8, r.Headers[host].Value.Of(b)[..Math.Min(r.Headers[host].Value.Length, HttpText.MaxValue)]);
        w.WriteStartArray("classes"u8);
        foreach (var (c, name) in MetadataClassifier.Names) if ((v.Classes & c) != 0) w.WriteStringValue(name);
        w.WriteEndArray();
        WriteOrNull("sensitive_path"u8, v.SensitivePath);
        w.WriteStartArray("headers"u8);
        for (int i = 0; i < r.HeaderCount; i++)
        {
            var name = r.Headers[i].Name.Of(b);
            w.WriteStartObject();
            WriteBytes("name"u8, name);
            WriteBytes("value"u8, HttpText.HeaderValue(name, r.Headers[i].Value.Of(b)));
            w.WriteBoolean("redacted"u8, HttpRedaction.IsSecretHeader(name));
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteNumber("headers_dropped"u8, r.HeadersDropped);
        if (r.ContentLength >= 0) w.WriteNumber("content_length"u8, r.ContentLength); else w.WriteNull("content_length"u8);
        var body = r.Body.Of(b);
        w.WriteNumber("body_captured"u8, body.Length);
        if (body.IsEmpty) w.WriteNull("body"u8);
        else
        {
            // Redact the whole captured body first, then cut: a cut never exposes half a secret.
            int bn = HttpRedaction.Redact(body, _scratch);
            WriteBytes("body"u8, _scratch.AsSpan(0, Math.Min(bn, HttpText.MaxBody)));
        }
        w.WriteBoolean("truncated"u8, v.Truncated);
        w.WriteStartArray("anomalies"u8);
        foreach (var (flag, name) in HttpText.AnomalyNames) if ((r.Anomalies & flag) != 0) w.WriteStringValue(name);
        w.WriteEndArray();
        w.WriteEndObject();
        w.Flush();
        _buffer.GetSpan(1)[0] = (byte)'\n';
        _buffer.Advance(1);
        w.Reset();
    }

    private void WriteOrNull(ReadOnlySpan<byte> name, string? value)
    {
        if (value is null) _json.WriteNull(name);
        else _json.WriteString(name, value);
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
}

/// <summary>One table row per request: time, HTTP, verdict, pid, comm, user, destination, method, target
/// (secret query values redacted), Host, classes, header names (no values).</summary>
public sealed class HttpTableSink(TextWriter output, TimeBase time, IGuardNames? names) : IHttpRequestSink
{
    private readonly StringBuilder _sb = new(512);
    private readonly byte[] _scratch = new byte[HttpRedaction.MaxRedactedLength(GuardConstants.HttpMaxBytes)];
    private readonly char[] _chars = new char[HttpRedaction.MaxRedactedLength(GuardConstants.HttpMaxBytes)];
    private bool _header;

    private void Append(ReadOnlySpan<byte> bytes) => _sb.Append(_chars.AsSpan(0, HttpText.Latin1(bytes, _chars)));

    public void Write(in HttpRequestView v)
    {
        if (!_header)
        {
            output.WriteLine($"{"TIME(UTC)",-16} {"KIND",-4} {"VERDICT",-7} {"PID",7} {"COMM",-15} {"USER",-10} {"DESTINATION",-30} REQUEST");
            _header = true;
        }
        ref readonly var o = ref v.Origin;
        ref readonly var r = ref v.Request;
        var b = v.Bytes;
        var sb = _sb.Clear();
        Span<char> field = stackalloc char[AddressText.MaxEndpointLength];
        int n = TimeText.ClockMicros(time.ToUnixNanoseconds(v.TimestampNs), field);
        sb.Append(field[..n]).Append(' ', Math.Max(1, 17 - n)).Append("http ");
        sb.Append(HttpText.Verdict(in o).PadRight(7)).Append(' ');
        sb.Append((o.OwnerKnown ? o.Tgid.ToString(System.Globalization.CultureInfo.InvariantCulture) : "-").PadLeft(7)).Append(' ');
        var comm = o.OwnerKnown ? names?.CommText(in o.Comm) ?? o.Comm.ToString() : "-";
        sb.Append(comm.PadRight(15)).Append(' ');
        var user = o.OwnerKnown ? names?.UserName(o.Uid) ?? o.Uid.ToString(System.Globalization.CultureInfo.InvariantCulture) : "-";
        sb.Append((user.Length > 10 ? user[..10] : user).PadRight(10)).Append(' ');
        n = AddressText.FormatEndpoint(in o.Destination, o.Family, o.Port, field);
        sb.Append(field[..n]).Append(' ', Math.Max(1, 31 - n));
        Append(r.Method.Of(b));
        sb.Append(' ');
        Append(_scratch.AsSpan(0, HttpText.Target(r.Target.Of(b), _scratch)));
        int host = r.Find(b, "Host"u8);
        if (host >= 0) { sb.Append(" host="); Append(r.Headers[host].Value.Of(b)[..Math.Min(r.Headers[host].Value.Length, HttpText.MaxValue)]); }
        sb.Append(" [");
        HttpText.AppendClasses(sb, v.Classes);
        sb.Append(']');
        if (v.SensitivePath is { } s) sb.Append(" sensitive=").Append(s);
        if (v.Truncated) sb.Append(" truncated");
        sb.Append(" headers=");
        for (int i = 0; i < r.HeaderCount; i++)
        {
            if (i > 0) sb.Append(',');
            Append(r.Headers[i].Name.Of(b));
        }
        output.WriteLine(sb);
    }

    public void Flush() => output.Flush();
}
