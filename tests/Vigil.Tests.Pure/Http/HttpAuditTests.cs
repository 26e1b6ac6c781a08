using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Vigil.Core.Http;
using Vigil.Core.Pipeline;
using Vigil.Core.Tcp;
using Vigil.Outputs.Http;
using Vigil.Wire;

namespace Vigil.Tests.Pure.Http;

public class HttpRequestParserTests
{
    private static HttpRequest Parse(string text, out byte[] bytes)
    {
        bytes = Encoding.Latin1.GetBytes(text);
        HttpRequestParser.Parse(bytes, out var r);
        return r;
    }

    private static string S(byte[] b, ByteRange r) => Encoding.Latin1.GetString(r.Of(b));

    [Fact]
    public void ParsesMethodTargetVersionHostAndHeaderNames()
    {
        var r = Parse("GET /latest/meta-data/?x=1 HTTP/1.1\r\nHost: 169.254.169.254\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n", out var b);
        Assert.Equal(HttpParseStatus.Complete, r.Status);
        Assert.Equal("GET", S(b, r.Method));
        Assert.Equal("/latest/meta-data/?x=1", S(b, r.Target));
        Assert.Equal("HTTP/1.1", S(b, r.Version));
        Assert.Equal(3, r.HeaderCount);
        Assert.Equal("169.254.169.254", Encoding.Latin1.GetString(r.Value(b, "host"u8)));
        Assert.Equal(["Host", "User-Agent", "Accept"], Enumerable.Range(0, r.HeaderCount).Select(i => S(b, r.Headers[i].Name)));
        Assert.Equal(b.Length, r.Length);
        Assert.Equal(HttpAnomaly.None, r.Anomalies);
    }

    [Theory]
    [InlineData("")]
    [InlineData("GE")]
    [InlineData("GET /lat")]
    [InlineData("GET /latest HTTP/1")]
    [InlineData("GET /latest HTTP/1.1")]
    [InlineData("GET /latest HTTP/1.1\r")]
    [InlineData("GET /latest HTTP/1.1\r\n")]
    [InlineData("GET /latest HTTP/1.1\r\nHost: a\r\n")]
    [InlineData("GET /latest HTTP/1.1\r\nHost: a\r\n\r")]
    [InlineData("PUT /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")]
    public void EveryPrefixOfARequestIsIncompleteNeverNotHttp(string text) =>
        Assert.Equal(HttpParseStatus.Incomplete, Parse(text, out _).Status);

    [Fact]
    public void AllPrefixesOfARealRequestParseWithoutThrowing()
    {
        var full = Encoding.ASCII.GetBytes("PUT /latest/api/token HTTP/1.1\r\nHost: x\r\nX-aws-ec2-metadata-token-ttl-seconds: 21600\r\nContent-Length: 2\r\n\r\nab");
        for (int n = 0; n < full.Length; n++)
        {
            HttpRequestParser.Parse(full.AsSpan(0, n), out var r);
            Assert.Equal(HttpParseStatus.Incomplete, r.Status);
        }
        HttpRequestParser.Parse(full, out var done);
        Assert.Equal(HttpParseStatus.Complete, done.Status);
        Assert.Equal(2, done.Body.Length);
    }

    [Theory]
    [InlineData("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")] // a TLS ClientHello
    [InlineData("SSH-2.0-OpenSSH_9.2\r\n")]
    [InlineData("GET\t/ HTTP/1.1\r\n")]
    [InlineData(" GET / HTTP/1.1\r\n")]
    [InlineData("GET  / HTTP/1.1\r\n")]
    [InlineData("GET / HTTP/2.0x\r\n")]
    [InlineData("GET / FTP/1.1\r\n")]
    [InlineData("GET / HTTP/1.1\rX")]
    [InlineData("\0\0\0\0")]
    [InlineData("AVERYLONGMETHODNAME1234 / HTTP/1.1\r\n")]
    public void NonHttpPayloadIsFlaggedNotMisparsed(string text) =>
        Assert.Equal(HttpParseStatus.NotHttp, Parse(text, out _).Status);

    [Fact]
    public void MissingCrBadLinesFoldsAndTooManyHeadersAreToleratedAndFlagged()
    {
        var sb = new StringBuilder("GET / HTTP/1.0\nHost: a\n folded\nno colon here\nBad Name: x\n");
        for (int i = 0; i < 40; i++) sb.Append($"X-{i}: v\n");
        sb.Append('\n');
        var r = Parse(sb.ToString(), out _);
        Assert.Equal(HttpParseStatus.Complete, r.Status);
        Assert.True(r.Anomalies.HasFlag(HttpAnomaly.BareLf));
        Assert.True(r.Anomalies.HasFlag(HttpAnomaly.ObsFold));
        Assert.True(r.Anomalies.HasFlag(HttpAnomaly.BadHeaderLine));
        Assert.True(r.Anomalies.HasFlag(HttpAnomaly.TooManyHeaders));
        Assert.Equal(HttpRequestParser.MaxHeaders, r.HeaderCount);
        Assert.Equal(41 - HttpRequestParser.MaxHeaders, r.HeadersDropped);
    }

    [Fact]
    public void ContentLengthDelimitsTheBodySoPipelinedRequestsAreFound()
    {
        const string a = "PUT /latest/api/token HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
        const string b2 = "GET /latest/meta-data/ HTTP/1.1\r\n\r\n";
        var r = Parse(a + b2, out var bytes);
        Assert.Equal(HttpParseStatus.Complete, r.Status);
        Assert.Equal(a.Length, r.Length);
        HttpRequestParser.Parse(bytes.AsSpan(r.Length), out var next);
        Assert.Equal(HttpParseStatus.Complete, next.Status);
        Assert.Equal("GET", Encoding.Latin1.GetString(next.Method.Of(bytes.AsSpan(r.Length))));
        Assert.True(Parse("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", out _).Anomalies.HasFlag(HttpAnomaly.BadContentLength));
        Assert.True(Parse("GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", out _).Anomalies.HasFlag(HttpAnomaly.BadContentLength));
    }
}

public class MetadataClassifierTests
{
    private static (MetadataClass, string?) Classify(string text)
    {
        var b = Encoding.Latin1.GetBytes(text);
        HttpRequestParser.Parse(b, out var r);
        var c = MetadataClassifier.Classify(b, in r, out var s);
        return (c, s);
    }

    [Theory]
    [InlineData("PUT /latest/api/token HTTP/1.1\r\nX-aws-ec2-metadata-token-ttl-seconds: 21600\r\n\r\n", MetadataClass.AwsTokenRequest, null)]
    [InlineData("PUT /latest/api/token HTTP/1.1\r\n\r\n", MetadataClass.None, null)] // no TTL header: AWS refuses it, not a token request
    [InlineData("GET /latest/meta-data/ HTTP/1.1\r\nX-aws-ec2-metadata-token: AQAE\r\n\r\n", MetadataClass.ImdsV2, null)]
    [InlineData("GET /latest/meta-data/ HTTP/1.1\r\n\r\n", MetadataClass.ImdsV1, null)]
    [InlineData("GET /latest/meta-data/iam/security-credentials/role HTTP/1.1\r\n\r\n", MetadataClass.ImdsV1 | MetadataClass.SensitivePath, "aws_credentials")]
    [InlineData("GET //latest/./meta-data//%69am/security-credentials/ HTTP/1.1\r\n\r\n", MetadataClass.ImdsV1 | MetadataClass.SensitivePath, "aws_credentials")]
    [InlineData("GET /latest/meta-data/../user-data HTTP/1.1\r\n\r\n", MetadataClass.ImdsV1 | MetadataClass.SensitivePath, "aws_user_data")]
    [InlineData("GET http://169.254.169.254/latest/dynamic/instance-identity/document HTTP/1.1\r\n\r\n", MetadataClass.ImdsV1 | MetadataClass.SensitivePath, "aws_identity_document")]
    [InlineData("GET /metadata/identity/oauth2/token?api-version=2018-02-01 HTTP/1.1\r\nMetadata: true\r\n\r\n", MetadataClass.Azure | MetadataClass.SensitivePath, "azure_identity_token")]
    [InlineData("GET /computeMetadata/v1/instance/service-accounts/default/token HTTP/1.1\r\nMetadata-Flavor: Google\r\n\r\n", MetadataClass.Gcp | MetadataClass.SensitivePath, "gcp_service_account_token")]
    [InlineData("GET /computeMetadata/v1/instance/hostname HTTP/1.1\r\nMetadata-Flavor: Google\r\n\r\n", MetadataClass.Gcp, null)]
    [InlineData("GET /opc/v2/instance/ HTTP/1.1\r\nAuthorization: Bearer Oracle\r\n\r\n", MetadataClass.OracleV2, null)]
    [InlineData("PUT /latest/api/token HTTP/1.1\r\nX-aliyun-ecs-metadata-token-ttl-seconds: 60\r\n\r\n", MetadataClass.AlibabaTokenRequest, null)]
    [InlineData("GET /latest/meta-data/ram/security-credentials/r HTTP/1.1\r\nX-aliyun-ecs-metadata-token: t\r\n\r\n", MetadataClass.AlibabaToken | MetadataClass.SensitivePath, "alibaba_credentials")]
    [InlineData("GET /openstack/latest/user_data HTTP/1.1\r\n\r\n", MetadataClass.SensitivePath, "openstack_user_data")]
    [InlineData("GET /latest/meta-data/ HTTP/1.1\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n", MetadataClass.ImdsV1 | MetadataClass.ForwardedFor, null)]
    [InlineData("GET /index.html HTTP/1.1\r\n\r\n", MetadataClass.None, null)]
    public void ClassifiesMetadataRequests(string text, MetadataClass expected, string? sensitive) =>
        Assert.Equal((expected, sensitive), Classify(text));

    [Fact]
    public void ANonHttpPayloadHasNoClass() => Assert.Equal((MetadataClass.None, (string?)null), Classify("\x16\x03\x01"));
}

public class HttpRedactionTests
{
    private static string Redact(string s)
    {
        var b = Encoding.Latin1.GetBytes(s);
        var o = new byte[HttpRedaction.MaxRedactedLength(b.Length)];
        return Encoding.Latin1.GetString(o, 0, HttpRedaction.Redact(b, o));
    }

    [Theory]
    [InlineData("X-aws-ec2-metadata-token", true)]
    [InlineData("x-AWS-ec2-metadata-token", true)]
    [InlineData("X-aliyun-ecs-metadata-token", true)]
    [InlineData("Metadata-Token", true)]
    [InlineData("Authorization", true)]
    [InlineData("Cookie", true)]
    [InlineData("Proxy-Authorization", true)]
    [InlineData("X-Api-Key", true)]
    [InlineData("X-aws-ec2-metadata-token-ttl-seconds", false)]
    [InlineData("Host", false)]
    [InlineData("User-Agent", false)]
    public void SecretHeaders(string name, bool secret) => Assert.Equal(secret, HttpRedaction.IsSecretHeader(Encoding.ASCII.GetBytes(name)));

    [Theory]
    [InlineData("""{"Code":"Success","SecretAccessKey":"wJalr/K7MDENG","Token":"IQoJb3JpZ2lu","Expiration":"2026"}""",
                """{"Code":"Success","SecretAccessKey":"[redacted]","Token":"[redacted]","Expiration":"2026"}""")]
    [InlineData("""{"access_token" : "eyJ0eXAi\"x", "refresh_token":12345, "expires_in":"3599"}""",
                """{"access_token" : "[redacted]", "refresh_token":[redacted], "expires_in":"3599"}""")]
    [InlineData("{\"Token\":\"cut off by the capt", "{\"Token\":\"[redacted]\"")] // cut by the capture: redacted to the end
    [InlineData("""{"Token":""", """{"Token":[redacted]""")]
    [InlineData("grant_type=refresh&refresh_token=abc.def&x=1", "grant_type=refresh&refresh_token=[redacted]&x=1")]
    [InlineData("/latest/meta-data/?access_token=SECRET", "/latest/meta-data/?access_token=[redacted]")]
    [InlineData("""{"AccessKeyId":"ASIA","Code":"ok"}""", """{"AccessKeyId":"ASIA","Code":"ok"}""")]
    public void SecretKeysInBodiesAndQueriesAreRedacted(string input, string expected) => Assert.Equal(expected, Redact(input));
}

public class HttpStreamsAndSinkTests
{
    private sealed class Collect : IHttpRequestSink
    {
        public readonly List<(string Method, string Target, MetadataClass Classes, bool Truncated, int Index)> Seen = new();
        public void Write(in HttpRequestView v) =>
            Seen.Add((Encoding.Latin1.GetString(v.Request.Method.Of(v.Bytes)), Encoding.Latin1.GetString(v.Request.Target.Of(v.Bytes)), v.Classes, v.Truncated, v.Index));
        public void Flush() { }
    }

    private static readonly HttpOrigin Origin = new() { OwnerKnown = true, Tgid = 10, Pid = 10, Uid = 1000, Family = 4, Port = 80 };

    [Fact]
    public void SlicesAreReassembledRetransmissionsIgnoredAndPipelinedRequestsSplit()
    {
        var sink = new Collect();
        var streams = new HttpStreams(sink, 1024);
        var all = Encoding.ASCII.GetBytes("PUT /latest/api/token HTTP/1.1\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\n\r\nGET /latest/meta-data/ HTTP/1.1\r\nX-aws-ec2-metadata-token: T\r\n\r\n");
        streams.Add(7, Origin, 0, all.AsSpan(0, 10), false, 1);
        Assert.Empty(sink.Seen);
        streams.Add(7, Origin, 0, all.AsSpan(0, 10), false, 2); // a retransmission
        streams.Add(7, Origin, 10, all.AsSpan(10), false, 3);
        Assert.Equal([("PUT", "/latest/api/token", MetadataClass.AwsTokenRequest, false, 0), ("GET", "/latest/meta-data/", MetadataClass.ImdsV2, false, 1)], sink.Seen);
        streams.Add(7, Origin, (uint)all.Length, [], true, 4);
        Assert.Equal(0, streams.Open);
    }

    [Fact]
    public void IncompleteRequestsAreReportedTruncatedAtTheEndGapsAndNonHttpAreCounted()
    {
        var sink = new Collect();
        var streams = new HttpStreams(sink, 64);
        streams.Add(1, Origin, 0, "GET /latest/user-data HTTP/1.1\r\nHo"u8, false, 1);
        streams.Add(1, Origin, 34, [], true, 2); // FIN before the headers ended
        Assert.Equal(("GET", "/latest/user-data", MetadataClass.ImdsV1 | MetadataClass.SensitivePath, true, 0), Assert.Single(sink.Seen));

        streams.Add(2, Origin, 0, "\x16\x03\x01\x00"u8, false, 1);
        Assert.Equal(1, streams.NotHttp);
        Assert.Equal(0, streams.Open);

        streams.Add(3, Origin, 0, "GET / HT"u8, false, 1);
        streams.Add(3, Origin, 20, "TP/1.1\r\n\r\n"u8, false, 2); // a slice missing before this one
        Assert.Equal(1, streams.Gaps);
        Assert.True(sink.Seen[^1].Truncated);

        streams.Add(4, Origin, 0, "GET /latest/ HTTP/1.1\r\n"u8, false, 1);
        streams.Expire(5_000_000_000, 1_000_000_000);
        Assert.True(sink.Seen[^1].Truncated);
        Assert.Equal(0, streams.Open);

        // The budget: bytes beyond it are ignored, and the request is reported when the budget is full.
        var big = Encoding.ASCII.GetBytes("GET /latest/meta-data/ HTTP/1.1\r\nUser-Agent: " + new string('a', 100) + "\r\n\r\n");
        streams.Add(5, Origin, 0, big, false, 1);
        Assert.True(sink.Seen[^1].Truncated);
        Assert.Equal(0, streams.Open);
    }

    [Fact]
    public void TheTableConnectionIsBoundedAndTheOldestIsFlushed()
    {
        var sink = new Collect();
        var streams = new HttpStreams(sink, 64, maxConnections: 2);
        for (ulong k = 1; k <= 3; k++) streams.Add(k, Origin, 0, "GET /latest/ HTTP/1.1\r\n"u8, false, k);
        Assert.Equal(1, streams.Evicted);
        Assert.Equal(2, streams.Open);
        Assert.Single(sink.Seen);
    }

    private static unsafe byte[] Record(string payload, uint offset = 0, byte flags = 0, int? dataLenOverride = null, int? sizeOverride = null)
    {
        var data = Encoding.ASCII.GetBytes(payload);
        var buf = new byte[GuardHttpDecoder.EventSize + data.Length];
        var ev = new GuardHttpEvent
        {
            Hdr = new EventHeader { Kind = (ushort)EventKind.GuardHttp, Version = WireConstants.Version, Size = (uint)(sizeOverride ?? buf.Length), TsNs = 5 },
            Offset = offset, DataLen = (ushort)(dataLenOverride ?? data.Length), Flags = flags,
        };
        ev.Meta.Cookie = 99; ev.Meta.Tgid = 4242; ev.Meta.Pid = 4243; ev.Meta.Uid = 47002; ev.Meta.Gid = 47100; ev.Meta.Family = 6; ev.Meta.Dport = 80;
        ev.Meta.Hook = (byte)GuardHook.Connect6; ev.Meta.Verdict = (byte)GuardVerdict.Audit; ev.Meta.CgroupId = 77;
        "curl"u8.CopyTo(new Span<byte>(ev.Meta.Comm, 16));
        MemoryMarshal.Write(buf, in ev);
        data.CopyTo(buf, GuardHttpDecoder.EventSize);
        return buf;
    }

    [Fact]
    public void TheDecoderReadsEveryFieldAndRefusesShortOrLyingRecords()
    {
        Assert.Equal(DecodeResult.Ok, GuardHttpDecoder.TryDecode(Record("GET / HTTP/1.1\r\n\r\n", 3, GuardConstants.HttpEnd), out var cookie, out var o, out var off, out var data, out var flags, out var ts));
        Assert.Equal((99ul, 4242u, 4243u, 47002u, 47100u, "curl", 3u, GuardConstants.HttpEnd, 5ul, 18, GuardHook.Connect6, 77ul),
                     (cookie, o.Tgid, o.Pid, o.Uid, o.Gid, o.Comm.ToString(), off, flags, ts, data.Length, o.Hook, o.CgroupId));
        Assert.Equal(DecodeResult.Truncated, GuardHttpDecoder.TryDecode(Record("abc").AsSpan(0, 20), out _, out _, out _, out _, out _, out _));
        Assert.Equal(DecodeResult.Truncated, GuardHttpDecoder.TryDecode(Record("abc", dataLenOverride: 4), out _, out _, out _, out _, out _, out _));
        Assert.Equal(DecodeResult.Truncated, GuardHttpDecoder.TryDecode(Record("abc", sizeOverride: 500), out _, out _, out _, out _, out _, out _));
        var wrongKind = Record("abc");
        wrongKind[0] = 2;
        Assert.Equal(DecodeResult.UnknownKind, GuardHttpDecoder.TryDecode(wrongKind, out _, out _, out _, out _, out _, out _));
    }

    [Fact]
    public void TheJsonSinkRedactsTokensHeadersBodiesAndQueriesAndWritesNullsForThePacketPath()
    {
        using var ms = new MemoryStream();
        var sink = new HttpJsonSink(ms, new TimeBase(0), null, "packet");
        var streams = new HttpStreams(sink, 2048);
        const string body = "{\"SecretAccessKey\":\"BODYSECRET\",\"Token\":\"BODYSECRET2\"}";
        var req = "PUT /x?token=QUERYSECRET HTTP/1.1\r\nHost: h\r\nX-aws-ec2-metadata-token: TOKENSECRET\r\nCookie: COOKIESECRET\r\n" +
                  $"Content-Length: {body.Length}\r\n\r\n{body}";
        streams.Add(1, new HttpOrigin { Family = 4, Port = 80, SourcePort = 40000 }, 0, Encoding.ASCII.GetBytes(req), true, 1);
        sink.Flush();
        var text = Encoding.UTF8.GetString(ms.ToArray());
        foreach (var secret in new[] { "QUERYSECRET", "TOKENSECRET", "COOKIESECRET", "BODYSECRET" }) Assert.DoesNotContain(secret, text);
        var e = JsonDocument.Parse(text).RootElement;
        Assert.Equal("http", e.GetProperty("kind").GetString());
        Assert.Equal(JsonValueKind.Null, e.GetProperty("pid").ValueKind);
        Assert.Equal(JsonValueKind.Null, e.GetProperty("uid").ValueKind);
        Assert.Equal("/x?token=[redacted]", e.GetProperty("target").GetString());
        Assert.Equal("""{"SecretAccessKey":"[redacted]","Token":"[redacted]"}""", e.GetProperty("body").GetString());
        Assert.Equal(["imdsv2"], e.GetProperty("classes").EnumerateArray().Select(c => c.GetString()));
    }
}

public class TcpFrameTests
{
    private static byte[] Frame(byte[] ipPacket, ushort etherType = 0x0800)
    {
        var f = new byte[14 + ipPacket.Length];
        f[12] = (byte)(etherType >> 8); f[13] = (byte)etherType;
        ipPacket.CopyTo(f, 14);
        return f;
    }

    private static byte[] Tcp(ushort dport, uint seq, byte flags, byte[] payload)
    {
        var t = new byte[20 + payload.Length];
        t[0] = 0x9c; t[1] = 0x40; t[2] = (byte)(dport >> 8); t[3] = (byte)dport;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(t.AsSpan(4), seq);
        t[12] = 5 << 4; t[13] = flags;
        payload.CopyTo(t, 20);
        return t;
    }

    private static byte[] V4(byte[] tcp, ushort frag = 0)
    {
        var ip = new byte[20 + tcp.Length];
        ip[0] = 0x45; ip[2] = (byte)(ip.Length >> 8); ip[3] = (byte)ip.Length; ip[6] = (byte)(frag >> 8); ip[7] = (byte)frag; ip[9] = 6;
        ip[12] = 10; ip[15] = 1; ip[16] = 169; ip[17] = 254; ip[18] = 169; ip[19] = 254;
        tcp.CopyTo(ip, 20);
        return ip;
    }

    private static byte[] V6(byte[] tcp, params byte[][] ext)
    {
        int extLen = ext.Sum(e => e.Length);
        var ip = new byte[40 + extLen + tcp.Length];
        ip[0] = 0x60; ip[4] = (byte)((extLen + tcp.Length) >> 8); ip[5] = (byte)(extLen + tcp.Length);
        ip[6] = ext.Length > 0 ? (byte)0 : (byte)6;
        ip[24] = 0xfd; ip[39] = 0x54;
        int off = 40;
        for (int i = 0; i < ext.Length; i++) { ext[i].CopyTo(ip, off); ip[off] = i + 1 < ext.Length ? (byte)0 : (byte)6; off += ext[i].Length; }
        tcp.CopyTo(ip, off);
        return ip;
    }

    [Fact]
    public void ParsesIpv4AndIpv6WithExtensionHeadersAndRefusesTheRest()
    {
        var get = "GET / HTTP/1.1\r\n\r\n"u8.ToArray();
        Assert.True(TcpFrame.TryParse(Frame(V4(Tcp(80, 7, 0x18, get))), out var a));
        Assert.Equal((4, "169.254.169.254", (ushort)80, 7u, get.Length), (a.Family, a.Destination.ToString(), a.DestinationPort, a.Seq, a.Payload.Length));
        Assert.True(TcpFrame.TryParse(Frame(V6(Tcp(80, 9, 0x18, get), new byte[8], [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 0x86DD), out var b));
        Assert.Equal((6, (ushort)80, get.Length), (b.Family, b.DestinationPort, b.Payload.Length));
        Assert.False(TcpFrame.TryParse(Frame(V4(Tcp(80, 7, 0x18, get), frag: 10)), out _)); // later fragment
        Assert.False(TcpFrame.TryParse(Frame(V4(Tcp(80, 7, 0x18, get))).AsSpan(0, 40), out _)); // cut short
        Assert.False(TcpFrame.TryParse(Frame(V4(Tcp(80, 7, 0x18, get)), 0x0806), out _)); // ARP
        Assert.False(TcpFrame.TryParse(new byte[10], out _));
    }

    [Fact]
    public void SegmentsBecomeRequestsFromTheSynsSequenceNumberDuplicatesIgnored()
    {
        var seen = new List<string>();
        var sink = new CollectTargets(seen);
        var packets = new PacketHttpStreams(new HttpStreams(sink, 1024), 1024);
        var req = "GET /latest/meta-data/ HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray();
        packets.Add(Frame(V4(Tcp(80, 1000, 0x02, []))), 1);
        packets.Add(Frame(V4(Tcp(80, 1001, 0x18, req[..10]))), 2);
        packets.Add(Frame(V4(Tcp(80, 1001, 0x18, req[..10]))), 3); // the same frame again (loopback: out and in)
        packets.Add(Frame(V4(Tcp(80, 1011, 0x18, req[10..]))), 4);
        packets.Add(Frame(V4(Tcp(80, 1001 + (uint)req.Length, 0x11, []))), 5);
        Assert.Equal(["/latest/meta-data/"], seen);
    }

    private sealed class CollectTargets(List<string> seen) : IHttpRequestSink
    {
        public void Write(in HttpRequestView v) => seen.Add(Encoding.Latin1.GetString(v.Request.Target.Of(v.Bytes)));
        public void Flush() { }
    }
}
