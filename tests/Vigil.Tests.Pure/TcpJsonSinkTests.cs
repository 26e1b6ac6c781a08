using System.Text;
using System.Text.Json;
using Vigil.Core.Tcp;
using Vigil.Outputs.Tcp;

namespace Vigil.Tests.Pure;

public class TcpJsonSinkTests
{
    private static readonly string[] FieldOrder =
    [
        "time", "hook", "iface", "ifindex", "family", "saddr", "sport", "daddr", "dport", "seq", "ack", "flags",
        "window", "payload_len", "ip_len", "pid", "comm", "uid", "user", "gid", "cgroup_id",
    ];

    private static readonly string[] OwnerFields = ["pid", "comm", "uid", "user", "gid", "cgroup_id"];

    private static string Render(TcpPacket[] packets)
    {
        var stream = new MemoryStream();
        var sink = new TcpJsonSink(stream, Samples.Time, Samples.Names());
        foreach (var p in packets) sink.Write(in p, default);
        sink.Flush();
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    [Fact]
    public void MatchesGoldenFile() => Golden.Check("tcp.jsonl", Render(Samples.Stream()));

    [Fact]
    public void EachLineIsOneObjectWithTheDocumentedFieldsInOrder()
    {
        var lines = Render(Samples.Stream()).Split('\n');
        Assert.Equal("", lines[^1]); // every line ends with a newline
        Assert.Equal(Samples.Stream().Length, lines.Length - 1);
        foreach (var line in lines[..^1])
        {
            using var doc = JsonDocument.Parse(line);
            Assert.Equal(FieldOrder, doc.RootElement.EnumerateObject().Select(p => p.Name).ToArray());
        }
    }

    [Fact]
    public void ValuesAreTheDecodedOnes()
    {
        var lines = Render(Samples.Stream()).Split('\n');
        using var syn = JsonDocument.Parse(lines[0]);
        var r = syn.RootElement;
        // Monotonic zero 2023-11-14T22:13:20Z + 123.456789012 s.
        Assert.Equal("2023-11-14T22:15:23.456789012Z", r.GetProperty("time").GetString());
        Assert.Equal("tc", r.GetProperty("hook").GetString());
        Assert.Equal("eth0", r.GetProperty("iface").GetString());
        Assert.Equal(4, r.GetProperty("family").GetInt32());
        Assert.Equal("192.0.2.10", r.GetProperty("saddr").GetString());
        Assert.Equal(40000, r.GetProperty("sport").GetInt32());
        Assert.Equal("198.51.100.7", r.GetProperty("daddr").GetString());
        Assert.Equal(["SYN"], r.GetProperty("flags").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Assert.Equal(4242, r.GetProperty("pid").GetInt32());
        Assert.Equal("nginx", r.GetProperty("comm").GetString());
        Assert.Equal("www-data", r.GetProperty("user").GetString());
        Assert.Equal(9876UL, r.GetProperty("cgroup_id").GetUInt64());

        using var v6 = JsonDocument.Parse(lines[5]);
        r = v6.RootElement;
        Assert.Equal(6, r.GetProperty("family").GetInt32());
        Assert.Equal("2001:db8:85a3::8a2e:370:7334", r.GetProperty("daddr").GetString());
        Assert.Equal(["SYN", "ACK"], r.GetProperty("flags").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Assert.Equal("cgroup", r.GetProperty("hook").GetString());

        using var all = JsonDocument.Parse(lines[9]);
        Assert.Equal(["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"],
            all.RootElement.GetProperty("flags").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Assert.Equal("caf\u00e9-\ufffd", all.RootElement.GetProperty("comm").GetString());
    }

    [Fact]
    public void UnknownOwnerIsNullNeverZero()
    {
        var lines = Render(Samples.Stream()).Split('\n');
        using var unknown = JsonDocument.Parse(lines[4]);
        foreach (var f in OwnerFields)
            Assert.Equal(JsonValueKind.Null, unknown.RootElement.GetProperty(f).ValueKind);

        // A known owner whose uid has no passwd entry: user is null, uid is the number.
        using var noPasswd = JsonDocument.Parse(lines[6]);
        Assert.Equal(4321, noPasswd.RootElement.GetProperty("uid").GetInt32());
        Assert.Equal(JsonValueKind.Null, noPasswd.RootElement.GetProperty("user").ValueKind);
        // An interface index the host does not know: iface is null, ifindex stays.
        using var fentry = JsonDocument.Parse(lines[7]);
        Assert.Equal(JsonValueKind.Null, fentry.RootElement.GetProperty("iface").ValueKind);
        Assert.Equal(99, fentry.RootElement.GetProperty("ifindex").GetInt32());
        Assert.Equal("say \"hi\"\\now", fentry.RootElement.GetProperty("comm").GetString());
    }

    [Fact]
    public void NothingReachesTheStreamBeforeFlushOrThreshold()
    {
        var stream = new DiscardStream();
        var sink = new TcpJsonSink(stream, Samples.Time, Samples.Names());
        var p = Samples.Stream()[0];
        sink.Write(in p, default);
        Assert.Equal(0, stream.BytesWritten);
        sink.Flush();
        Assert.True(stream.BytesWritten > 0);
        long afterOne = stream.BytesWritten;
        for (int i = 0; i < TcpJsonSink.FlushThreshold / (int)afterOne + 1; i++) sink.Write(in p, default);
        Assert.True(stream.BytesWritten > afterOne, "the buffer is written out once it passes the threshold");
    }

    [Fact]
    public void SteadyStateAllocatesNothing()
    {
        var sink = new TcpJsonSink(new DiscardStream(), Samples.Time, Samples.Names());
        var packets = Samples.Stream();
        long allocated = Samples.AllocatedInSteadyState(() => Samples.WriteMany(sink, packets, 20_000));
        Assert.Equal(0, allocated);
    }
}
