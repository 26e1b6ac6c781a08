using System.Net;
using Vigil.Outputs.Tcp;
using Vigil.Wire;

namespace Vigil.Tests.Pure;

public class FlowTopViewTests
{
    private const ulong S = 1_000_000_000;

    private static unsafe FlowKey Key(string local, ushort lport, string remote, ushort rport)
    {
        var k = new FlowKey { Lport = lport, Rport = rport, NetnsIno = 4026531840 };
        IPAddress.Parse(local).MapToIPv6().GetAddressBytes().CopyTo(new Span<byte>(k.Laddr, 16));
        IPAddress.Parse(remote).MapToIPv6().GetAddressBytes().CopyTo(new Span<byte>(k.Raddr, 16));
        return k;
    }

    private static (FlowKey, FlowValue)[] Flows(ulong now) =>
    [
        (Key("10.0.0.2", 80, "10.0.0.1", 40000), new FlowValue { Packets = 10, Bytes = 5_000, FirstNs = now - 5 * S, LastNs = now - S / 2, LastSeq = 1234, FlagsSeen = 0x1a }),
        (Key("10.0.0.2", 22, "10.0.0.9", 50000), new FlowValue { Packets = 3, Bytes = 50_000_000, FirstNs = now - 3 * 3600 * S, LastNs = now - 125 * S, LastSeq = 4_000_000_000, FlagsSeen = 0x11 }),
        (Key("2001:db8::2", 443, "2001:db8::1", 51000), new FlowValue { Packets = 10, Bytes = 6_000, FirstNs = now - 2 * 86400 * S, LastNs = now + 1_000, LastSeq = 7, FlagsSeen = 0x02 }),
        (Key("10.0.0.2", 8080, "10.0.0.3", 1), new FlowValue { Packets = 1, Bytes = 0, FirstNs = now - 1, LastNs = now - 1, LastSeq = 0, FlagsSeen = 0x04 }),
    ];

    [Fact]
    public void RendersByPacketsAndByBytesAsInTheGoldenFile()
    {
        ulong now = 1_000_000 * S;
        var writer = new StringWriter();
        FlowTopView.Render(writer, Flows(now), now, FlowSort.Packets, top: 3);
        writer.Write("---\n");
        FlowTopView.Render(writer, Flows(now), now, FlowSort.Bytes, top: 10, endpointWidth: 30);
        Golden.Check("flows-top.txt", writer.ToString());
    }

    [Fact]
    public void TheCliOverloadRendersTheSame()
    {
        ulong now = 1_000_000 * S;
        var a = new StringWriter();
        var b = new StringWriter();
        FlowTopView.Render(a, Flows(now), sortByBytes: true, top: 2, nowNs: now);
        FlowTopView.Render(b, Flows(now), now, FlowSort.Bytes, top: 2);
        Assert.Equal(b.ToString(), a.ToString());
        Assert.Equal(4, a.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Length); // summary, header, 2 rows
    }

    [Fact]
    public void SortsDescendingWithTiesBrokenByTheOtherCount()
    {
        ulong now = 1_000_000 * S;
        var byPackets = FlowTopView.Sorted(Flows(now), FlowSort.Packets);
        Assert.Equal([443, 80, 22, 8080], byPackets.Select(f => (int)f.Key.Lport)); // 10 pkts/6000 B before 10 pkts/5000 B
        var byBytes = FlowTopView.Sorted(Flows(now), FlowSort.Bytes);
        Assert.Equal([22, 443, 80, 8080], byBytes.Select(f => (int)f.Key.Lport));
    }

    [Theory]
    [InlineData(0UL, "0ms")]
    [InlineData(999_999_999UL, "999ms")]
    [InlineData(12_345_000_000UL, "12.3s")]
    [InlineData(245 * S, "4m05s")]
    [InlineData((3 * 3600 + 25 * 60 + 59) * S, "3h25m")]
    [InlineData((2 * 86400 + 3 * 3600) * S, "2d03h")]
    public void FormatsDurations(ulong ns, string expected) => Assert.Equal(expected, FlowTopView.FormatDuration(ns));
}
