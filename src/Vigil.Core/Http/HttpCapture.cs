using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Vigil.Core.Net;
using Vigil.Core.Tcp;
using Vigil.Wire;

namespace Vigil.Core.Http;

/// <summary>Who sent a captured connection's bytes and where to. From the guard's capture records all
/// fields are known (connect ran in the sender); from the socket-filter path (<c>vigil watch http</c>) only
/// the addresses are (<see cref="OwnerKnown"/> false: the identity fields are printed as null).</summary>
public struct HttpOrigin
{
    public bool OwnerKnown;
    public uint Pid, Tgid, Uid, Gid;
    public Comm16 Comm;
    public ulong ExeInode;
    public uint ExeDev;
    public ulong CgroupId;
    public IpAddress16 Destination;
    public byte Family;
    public ushort Port;
    /// <summary>Source endpoint, known on the socket-filter path only (<see cref="SourcePort"/> 0 = unknown).</summary>
    public IpAddress16 Source;
    public ushort SourcePort;
    public GuardHook Hook;
    /// <summary>0 = allowed principal, else <see cref="GuardVerdict.Audit"/>.</summary>
    public byte Verdict;
    public byte Rule;
    public ulong Rules;
    public ulong Violated;
    public uint Generation;

    /// <summary>The fields <see cref="Guard.IGuardNames"/> needs to name the executable, as a guard decision.</summary>
    public readonly Guard.GuardDecision AsDecision() => new()
    {
        Pid = Pid, Tgid = Tgid, Uid = Uid, Gid = Gid, Comm = Comm, ExeInode = ExeInode, ExeDev = ExeDev,
        CgroupId = CgroupId, Destination = Destination, Family = Family, Port = Port, Rule = Rule,
        Violated = Violated, Generation = Generation, Hook = Hook,
    };

    public readonly uint ExeDevMajor => ExeDev >> 20;
    public readonly uint ExeDevMinor => ExeDev & 0xfffff;
}

/// <summary>Bytes of a <c>struct vigil_guard_http_event</c> record → origin + payload slice, bounds-checked.</summary>
public static class GuardHttpDecoder
{
    public static readonly int EventSize = Unsafe.SizeOf<GuardHttpEvent>();

    public static unsafe DecodeResult TryDecode(ReadOnlySpan<byte> record, out ulong cookie, out HttpOrigin origin,
                                                out uint offset, out ReadOnlySpan<byte> data, out byte flags, out ulong tsNs)
    {
        cookie = 0; origin = default; offset = 0; data = default; flags = 0; tsNs = 0;
        if (record.Length < Unsafe.SizeOf<EventHeader>()) return DecodeResult.Truncated;
        var hdr = MemoryMarshal.Read<EventHeader>(record);
        if (hdr.Kind != (ushort)EventKind.GuardHttp) return DecodeResult.UnknownKind;
        if (hdr.Version != WireConstants.Version) return DecodeResult.UnsupportedVersion;
        if (record.Length < EventSize || hdr.Size < EventSize || hdr.Size > record.Length) return DecodeResult.Truncated;
        var ev = MemoryMarshal.Read<GuardHttpEvent>(record);
        if (ev.DataLen > hdr.Size - EventSize || ev.DataLen > GuardConstants.HttpMaxBytes) return DecodeResult.Truncated;
        ref readonly var m = ref ev.Meta;
        cookie = m.Cookie;
        tsNs = hdr.TsNs;
        origin.OwnerKnown = true;
        origin.Pid = m.Pid;
        origin.Tgid = m.Tgid;
        origin.Uid = m.Uid;
        origin.Gid = m.Gid;
        fixed (byte* comm = m.Comm) new ReadOnlySpan<byte>(comm, 16).CopyTo(origin.Comm);
        origin.ExeInode = m.ExeIno;
        origin.ExeDev = m.ExeDev;
        origin.CgroupId = m.CgroupId;
        fixed (byte* daddr = m.Daddr) origin.Destination = IpAddress16.From(new ReadOnlySpan<byte>(daddr, 16));
        origin.Family = m.Family;
        origin.Port = m.Dport;
        origin.Hook = (GuardHook)m.Hook;
        origin.Verdict = m.Verdict;
        origin.Rule = m.Rule;
        origin.Rules = m.Rules;
        origin.Violated = m.Violated;
        origin.Generation = m.Generation;
        offset = ev.Offset;
        flags = ev.Flags;
        data = record.Slice(EventSize, ev.DataLen);
        return DecodeResult.Ok;
    }
}

/// <summary>One request found in a connection's captured prefix, as the sinks receive it.</summary>
public readonly ref struct HttpRequestView
{
    public readonly ref readonly HttpOrigin Origin;
    /// <summary>The captured bytes from this request's first byte on.</summary>
    public readonly ReadOnlySpan<byte> Bytes;
    public readonly ref readonly HttpRequest Request;
    public readonly MetadataClass Classes;
    public readonly string? SensitivePath;
    /// <summary>The capture ended (budget, connection end, gap, timeout) before the request did.</summary>
    public readonly bool Truncated;
    /// <summary>0 for the connection's first request; 1, 2, … for later (pipelined or keep-alive) ones.</summary>
    public readonly int Index;
    public readonly ulong TimestampNs;

    public HttpRequestView(ref readonly HttpOrigin origin, ReadOnlySpan<byte> bytes, ref readonly HttpRequest request,
                           MetadataClass classes, string? sensitive, bool truncated, int index, ulong ts)
    {
        Origin = ref origin;
        Bytes = bytes;
        Request = ref request;
        Classes = classes;
        SensitivePath = sensitive;
        Truncated = truncated;
        Index = index;
        TimestampNs = ts;
    }
}

public interface IHttpRequestSink
{
    void Write(in HttpRequestView request);
    void Flush();
}

/// <summary>Reassembles the captured prefix of each connection (keyed by socket cookie or flow) from
/// slices at stream offsets, and hands every request in it to a sink once it is complete — or, marked
/// truncated, when the capture ends first. Bounded: at most <c>maxConnections</c> connections of at most
/// <c>budget</c> bytes each, buffers reused; the oldest connection is flushed when the table is full.</summary>
public sealed class HttpStreams(IHttpRequestSink sink, int budget, int maxConnections = 1024)
{
    private sealed class Connection
    {
        public HttpOrigin Origin;
        public readonly byte[] Buffer;
        public int Filled;  // contiguous bytes [0, Filled)
        public int Parsed;  // the next request starts here
        public int Requests;
        public bool Ended;  // nothing more will come
        public ulong LastNs;
        public Connection(int budget) => Buffer = new byte[budget];
    }

    private readonly Dictionary<ulong, Connection> _conns = new();
    private readonly Stack<Connection> _free = new();

    public long Requests, NotHttp, Gaps, Evicted;
    public int Open => _conns.Count;

    /// <summary>A slice of connection <paramref name="key"/>: bytes at stream offset <paramref name="offset"/>;
    /// <paramref name="end"/> = nothing more will come for it.</summary>
    public void Add(ulong key, in HttpOrigin origin, uint offset, ReadOnlySpan<byte> data, bool end, ulong nowNs)
    {
        if (!_conns.TryGetValue(key, out var c))
        {
            if (data.IsEmpty && end) return; // an end without any bytes: nothing to report
            if (_conns.Count >= maxConnections) EvictOldest();
            c = _free.Count > 0 ? _free.Pop() : new Connection(budget);
            c.Filled = c.Parsed = c.Requests = 0;
            c.Ended = false;
            c.Origin = origin;
            _conns[key] = c;
        }
        c.LastNs = nowNs;
        if (offset > (uint)c.Filled && !data.IsEmpty)
        {
            // A slice is missing (lost in the ring): what follows cannot be parsed as a continuation.
            Gaps++;
            end = true;
        }
        else if (offset < budget && !data.IsEmpty)
        {
            int skip = c.Filled - (int)offset; // bytes already held
            if (skip < data.Length)
            {
                var fresh = data[skip..];
                int n = Math.Min(fresh.Length, budget - c.Filled);
                fresh[..n].CopyTo(c.Buffer.AsSpan(c.Filled));
                c.Filled += n;
            }
        }
        if (c.Filled >= budget) end = true;
        c.Ended |= end;
        Parse(c, nowNs);
        if (c.Ended) Close(key, c);
    }

    /// <summary>Reports incomplete requests of connections idle for <paramref name="idleNs"/> as truncated and
    /// forgets them (a client that never finishes its request, or a lost end record).</summary>
    public void Expire(ulong nowNs, ulong idleNs)
    {
        List<ulong>? stale = null;
        foreach (var (k, c) in _conns)
            if (nowNs - c.LastNs >= idleNs) (stale ??= new()).Add(k);
        if (stale is null) return;
        foreach (var k in stale)
        {
            var c = _conns[k];
            c.Ended = true;
            Parse(c, nowNs);
            Close(k, c);
        }
    }

    /// <summary>Everything still open, as at the end of a run.</summary>
    public void FlushAll(ulong nowNs) => Expire(nowNs, 0);

    private void EvictOldest()
    {
        ulong oldest = 0, at = ulong.MaxValue;
        foreach (var (k, c) in _conns)
            if (c.LastNs < at) { at = c.LastNs; oldest = k; }
        var victim = _conns[oldest];
        victim.Ended = true;
        Parse(victim, victim.LastNs);
        Close(oldest, victim);
        Evicted++;
    }

    private void Close(ulong key, Connection c)
    {
        _conns.Remove(key);
        _free.Push(c);
    }

    private void Parse(Connection c, ulong nowNs)
    {
        while (c.Parsed < c.Filled)
        {
            var bytes = c.Buffer.AsSpan(c.Parsed, c.Filled - c.Parsed);
            HttpRequestParser.Parse(bytes, out var req);
            if (req.Status == HttpParseStatus.NotHttp)
            {
                // Counted, never interpreted; the rest of this connection is not looked at.
                NotHttp++;
                c.Parsed = c.Filled;
                c.Ended = true;
                return;
            }
            if (req.Status == HttpParseStatus.Incomplete && !c.Ended) return; // wait for more
            bool truncated = req.Status == HttpParseStatus.Incomplete;
            var classes = MetadataClassifier.Classify(bytes, in req, out var sensitive);
            var view = new HttpRequestView(in c.Origin, bytes, in req, classes, sensitive, truncated, c.Requests++, nowNs);
            sink.Write(in view);
            Requests++;
            c.Parsed = truncated || req.Length == 0 ? c.Filled : c.Parsed + req.Length;
        }
    }
}
