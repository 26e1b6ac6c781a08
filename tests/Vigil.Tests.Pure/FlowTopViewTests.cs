using System.Net;
using Vigil.Core.Tcp;
using Vigil.Outputs.Tcp;
using Vigil.Wire;

namespace Vigil.Tests.Pure;

public class FlowTopViewTests
{
    // Kernel tick rate 250 Hz, as in Debian's kernels: one jiffy is 4 ms.
    private const uint Hz = 250;
    private const ulong S = Hz; // jiffies per second
    private static FlowClock Clock(ulong now) => new(now, Hz);
    private const ulong NsPerS = 1_000_000_000;

    private static unsafe FlowKey Key(string local, ushort lport, string remote, ushort rport)
    {
        var k = new FlowKey { Lport = lport, Rport = rport, NetnsIno = 4026531840 };
        IPAddress.Parse(local).MapToIPv6().GetAddressBytes().CopyTo(new Span<byte>(k.Laddr, 16));
        IPAddress.Parse(remote).MapToIPv6().GetAddressBytes().CopyTo(new Span<byte>(k.Raddr, 16));
        return k;
    }

    private static (FlowKey, FlowValue)[] Flows(ulong now) =>
    [
        (Key("10.0.0.2", 80, "10.0.0.1", 40000), new FlowValue { Packets = 10, Bytes = 5_000, FirstJiffies = now - 5 * S, LastJiffies = now - S / 2, LastSeq = 1234, FlagsSeen = 0x1a }),
        (Key("10.0.0.2", 22, "10.0.0.9", 50000), new FlowValue { Packets = 3, Bytes = 50_000_000, FirstJiffies = now - 3 * 3600 * S, LastJiffies = now - 125 * S, LastSeq = 4_000_000_000, FlagsSeen = 0x11 }),
        (Key("2001:db8::2", 443, "2001:db8::1", 51000), new FlowValue { Packets = 10, Bytes = 6_000, FirstJiffies = now - 2 * 86400 * S, LastJiffies = now + 1, LastSeq = 7, FlagsSeen = 0x02 }),
        (Key("10.0.0.2", 8080, "10.0.0.3", 1), new FlowValue { Packets = 1, Bytes = 0, FirstJiffies = now - 1, LastJiffies = now - 1, LastSeq = 0, FlagsSeen = 0x04 }),
    ];

    [Fact]
    public void RendersByPacketsAndByBytesAsInTheGoldenFile()
    {
        ulong now = 1_000_000 * S;
        var writer = new StringWriter();
        FlowTopView.Render(writer, Flows(now), Clock(now), FlowSort.Packets, top: 3);
        writer.Write("---\n");
        FlowTopView.Render(writer, Flows(now), Clock(now), FlowSort.Bytes, top: 10, endpointWidth: 30);
        Golden.Check("flows-top.txt", writer.ToString());
    }

    [Fact]
    public void TheCliOverloadRendersTheSame()
    {
        ulong now = 1_000_000 * S;
        var a = new StringWriter();
        var b = new StringWriter();
        FlowTopView.Render(a, Flows(now), sortByBytes: true, top: 2, now: Clock(now));
        FlowTopView.Render(b, Flows(now), Clock(now), FlowSort.Bytes, top: 2);
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
    [InlineData(250u, 1000ul, 999ul, 4_000_000ul)]      // one tick at 250 Hz
    [InlineData(1000u, 5000ul, 2000ul, 3_000_000_000ul)]
    [InlineData(100u, 10ul, 20ul, 0ul)]                 // stamped after "now" was read
    public void FlowClockTurnsJiffiesIntoNanoseconds(uint hz, ulong now, ulong then, ulong expected) =>
        Assert.Equal(expected, new FlowClock(now, hz).NanosecondsSince(then));

    [Theory]
    [InlineData(0UL, "0ms")]
    [InlineData(999_999_999UL, "999ms")]
    [InlineData(12_345_000_000UL, "12.3s")]
    [InlineData(245 * NsPerS, "4m05s")]
    [InlineData((3 * 3600 + 25 * 60 + 59) * NsPerS, "3h25m")]
    [InlineData((2 * 86400 + 3 * 3600) * NsPerS, "2d03h")]
    public void FormatsDurations(ulong ns, string expected) => Assert.Equal(expected, FlowTopView.FormatDuration(ns));
}
