using System.Runtime.CompilerServices;

namespace Vigil.Core.Http;

/// <summary>A slice of the parsed buffer: ranges, not copies, so parsing allocates nothing.</summary>
public readonly record struct ByteRange(int Start, int Length)
{
    public ReadOnlySpan<byte> Of(ReadOnlySpan<byte> buffer) => buffer.Slice(Start, Length);
    public bool IsEmpty => Length == 0;
}

public struct HttpHeader
{
    public ByteRange Name;
    public ByteRange Value;
}

[InlineArray(HttpRequestParser.MaxHeaders)]
public struct HttpHeaders
{
    private HttpHeader _h0;
}

public enum HttpParseStatus : byte
{
    /// <summary>Request line, headers and the body the headers announce are all in the buffer.</summary>
    Complete,
    /// <summary>A request so far, but it ends before its headers (or its announced body) do.</summary>
    Incomplete,
    /// <summary>Not an HTTP/1.x request: the bytes are counted, never interpreted.</summary>
    NotHttp,
}

/// <summary>What was odd about a request that still parsed.</summary>
[Flags]
public enum HttpAnomaly : ushort
{
    None = 0,
    /// <summary>A line ended with LF alone (tolerated, as most servers do).</summary>
    BareLf = 1,
    /// <summary>More than <see cref="HttpRequestParser.MaxHeaders"/> headers: the rest are counted only.</summary>
    TooManyHeaders = 2,
    /// <summary>A header line folded onto the previous one (obs-fold), ignored.</summary>
    ObsFold = 4,
    /// <summary>A header line without a colon or with an invalid name, skipped.</summary>
    BadHeaderLine = 8,
    /// <summary>Transfer-Encoding: chunked — the body's end is not delimited here.</summary>
    ChunkedBody = 16,
    /// <summary>Content-Length not a number, or repeated with another value.</summary>
    BadContentLength = 32,
}

/// <summary>One HTTP/1.x request parsed from a bounded prefix of a connection's bytes.</summary>
public struct HttpRequest
{
    public HttpParseStatus Status;
    public ByteRange Method;
    public ByteRange Target;
    public ByteRange Version;
    public HttpHeaders Headers;
    /// <summary>Headers held in <see cref="Headers"/>.</summary>
    public int HeaderCount;
    /// <summary>Headers beyond <see cref="HttpRequestParser.MaxHeaders"/>, counted only.</summary>
    public int HeadersDropped;
    /// <summary>Offset just after the blank line that ends the headers; 0 while they are incomplete.</summary>
    public int HeaderEnd;
    /// <summary>Content-Length, or -1 when absent or invalid.</summary>
    public long ContentLength;
    /// <summary>The body bytes present in the buffer.</summary>
    public ByteRange Body;
    /// <summary>Bytes this request occupies (headers + body) when complete: the next request starts there.</summary>
    public int Length;
    public HttpAnomaly Anomalies;

    public readonly bool HeadersComplete => HeaderEnd > 0;

    /// <summary>Index of the first header named <paramref name="name"/> (ASCII case-insensitive), or -1.</summary>
    public readonly int Find(ReadOnlySpan<byte> buffer, ReadOnlySpan<byte> name)
    {
        for (int i = 0; i < HeaderCount; i++)
            if (Ascii.EqualsIgnoreCase(Headers[i].Name.Of(buffer), name)) return i;
        return -1;
    }

    public readonly bool Has(ReadOnlySpan<byte> buffer, ReadOnlySpan<byte> name) => Find(buffer, name) >= 0;

    /// <summary>The value of the first header named <paramref name="name"/>, empty when absent.</summary>
    public readonly ReadOnlySpan<byte> Value(ReadOnlySpan<byte> buffer, ReadOnlySpan<byte> name)
    {
        int i = Find(buffer, name);
        return i < 0 ? default : Headers[i].Value.Of(buffer);
    }
}

/// <summary>Parses HTTP/1.x requests (RFC 9112 request line and header fields) from a bounded byte
/// prefix — which may end anywhere, hold several pipelined requests, or not be HTTP at all. Never throws
/// and never reads past the span; anything that does not look like a request line is
/// <see cref="HttpParseStatus.NotHttp"/>, never guessed at.</summary>
public static class HttpRequestParser
{
    public const int MaxHeaders = 32;
    private const int MaxMethod = 16;

    public static void Parse(ReadOnlySpan<byte> buf, out HttpRequest req)
    {
        req = default;
        req.ContentLength = -1;

        // Request line: method SP request-target SP HTTP/d.d CRLF.
        int i = 0;
        while (i < buf.Length && i < MaxMethod && IsTchar(buf[i])) i++;
        if (i == buf.Length) { req.Status = HttpParseStatus.Incomplete; return; } // a method so far (or nothing)
        if (i == 0 || buf[i] != (byte)' ') { req.Status = HttpParseStatus.NotHttp; return; }
        req.Method = new ByteRange(0, i);
        int t = ++i;
        while (i < buf.Length && buf[i] > 0x20 && buf[i] != 0x7f) i++;
        if (i == buf.Length) { req.Status = HttpParseStatus.Incomplete; return; }
        if (i == t || buf[i] != (byte)' ') { req.Status = HttpParseStatus.NotHttp; return; }
        req.Target = new ByteRange(t, i - t);
        int v = ++i;
        ReadOnlySpan<byte> proto = "HTTP/"u8;
        int have = Math.Min(buf.Length - v, 8);
        // HTTP/d.d, checked as far as the buffer goes.
        for (int k = 0; k < have; k++)
        {
            byte b = buf[v + k];
            bool ok = k < 5 ? b == proto[k] : k == 6 ? b == (byte)'.' : b is >= (byte)'0' and <= (byte)'9';
            if (!ok) { req.Status = HttpParseStatus.NotHttp; return; }
        }
        if (have < 8) { req.Status = HttpParseStatus.Incomplete; return; }
        req.Version = new ByteRange(v, 8);
        i = v + 8;
        if (!EndOfLine(buf, ref i, ref req, out bool more)) { req.Status = more ? HttpParseStatus.Incomplete : HttpParseStatus.NotHttp; return; }

        // Header fields until the empty line.
        while (true)
        {
            int lineStart = i;
            int lf = buf[i..].IndexOf((byte)'\n');
            if (lf < 0) { req.Status = HttpParseStatus.Incomplete; return; }
            int lineEnd = i + lf; // index of LF
            int contentEnd = lineEnd > lineStart && buf[lineEnd - 1] == (byte)'\r' ? lineEnd - 1 : lineEnd;
            if (contentEnd == lineEnd) req.Anomalies |= HttpAnomaly.BareLf;
            i = lineEnd + 1;
            if (contentEnd == lineStart) break; // the empty line
            var line = buf[lineStart..contentEnd];
            if (line[0] is (byte)' ' or (byte)'\t') { req.Anomalies |= HttpAnomaly.ObsFold; continue; }
            int colon = line.IndexOf((byte)':');
            if (colon <= 0 || !AllTchar(line[..colon])) { req.Anomalies |= HttpAnomaly.BadHeaderLine; continue; }
            int vs = colon + 1, ve = line.Length;
            while (vs < ve && line[vs] is (byte)' ' or (byte)'\t') vs++;
            while (ve > vs && line[ve - 1] is (byte)' ' or (byte)'\t') ve--;
            var name = new ByteRange(lineStart, colon);
            var value = new ByteRange(lineStart + vs, ve - vs);
            if (req.HeaderCount < MaxHeaders) req.Headers[req.HeaderCount++] = new HttpHeader { Name = name, Value = value };
            else { req.HeadersDropped++; req.Anomalies |= HttpAnomaly.TooManyHeaders; }
            if (Ascii.EqualsIgnoreCase(name.Of(buf), "Content-Length"u8)) ContentLength(value.Of(buf), ref req);
            else if (Ascii.EqualsIgnoreCase(name.Of(buf), "Transfer-Encoding"u8)) req.Anomalies |= HttpAnomaly.ChunkedBody;
        }
        req.HeaderEnd = i;
        long body = req.ContentLength > 0 ? req.ContentLength : 0;
        int present = (int)Math.Min(body, buf.Length - i);
        req.Body = new ByteRange(i, present);
        if ((req.Anomalies & HttpAnomaly.ChunkedBody) != 0)
        {
            // The chunked body's end is not looked for: the request takes the rest of the prefix.
            req.Body = new ByteRange(i, buf.Length - i);
            req.Length = buf.Length;
            req.Status = HttpParseStatus.Complete;
            return;
        }
        req.Length = i + present;
        req.Status = present < body ? HttpParseStatus.Incomplete : HttpParseStatus.Complete;
    }

    /// <summary>CRLF (or a bare LF, flagged) at <paramref name="i"/>; <paramref name="more"/> = the buffer ended first.</summary>
    private static bool EndOfLine(ReadOnlySpan<byte> buf, ref int i, ref HttpRequest req, out bool more)
    {
        more = false;
        if (i < buf.Length && buf[i] == (byte)'\r') i++;
        else if (i < buf.Length && buf[i] == (byte)'\n') req.Anomalies |= HttpAnomaly.BareLf;
        if (i >= buf.Length) { more = true; return false; }
        if (buf[i] != (byte)'\n') return false;
        i++;
        if (i >= buf.Length) { more = true; return false; }
        return true;
    }

    private static void ContentLength(ReadOnlySpan<byte> value, ref HttpRequest req)
    {
        long n = 0;
        bool ok = value.Length is > 0 and <= 12;
        foreach (var b in value)
        {
            if (b is < (byte)'0' or > (byte)'9') { ok = false; break; }
            n = n * 10 + (b - '0');
        }
        if (!ok || (req.ContentLength >= 0 && req.ContentLength != n))
        {
            req.Anomalies |= HttpAnomaly.BadContentLength;
            req.ContentLength = -1;
            return;
        }
        req.ContentLength = n;
    }

    /// <summary>RFC 9110 token characters.</summary>
    public static bool IsTchar(byte b) =>
        b is (>= (byte)'a' and <= (byte)'z') or (>= (byte)'A' and <= (byte)'Z') or (>= (byte)'0' and <= (byte)'9')
          or (byte)'!' or (byte)'#' or (byte)'$' or (byte)'%' or (byte)'&' or (byte)'\'' or (byte)'*' or (byte)'+'
          or (byte)'-' or (byte)'.' or (byte)'^' or (byte)'_' or (byte)'`' or (byte)'|' or (byte)'~';

    private static bool AllTchar(ReadOnlySpan<byte> s)
    {
        foreach (var b in s) if (!IsTchar(b)) return false;
        return true;
    }
}

/// <summary>ASCII helpers over bytes.</summary>
public static class Ascii
{
    public static bool EqualsIgnoreCase(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b) => System.Text.Ascii.EqualsIgnoreCase(a, b);

    public static bool StartsWithIgnoreCase(ReadOnlySpan<byte> s, ReadOnlySpan<byte> prefix) =>
        s.Length >= prefix.Length && System.Text.Ascii.EqualsIgnoreCase(s[..prefix.Length], prefix);

    public static bool ContainsIgnoreCase(ReadOnlySpan<byte> s, ReadOnlySpan<byte> part)
    {
        for (int i = 0; i + part.Length <= s.Length; i++)
            if (System.Text.Ascii.EqualsIgnoreCase(s.Slice(i, part.Length), part)) return true;
        return false;
    }
}
