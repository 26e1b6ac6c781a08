using System.Text.Json;
using Vigil.Core.Pipeline;
using Vigil.Outputs;
using Vigil.Wire;

namespace Vigil.Tests.Pure;

public class StatsReportTests
{
    private static ulong[] Balanced()
    {
        var k = new ulong[(int)TcpStat.Count];
        k[(int)TcpStat.NotTcp] = 5;
        k[(int)TcpStat.Malformed] = 2;
        k[(int)TcpStat.Filtered] = 10;
        k[(int)TcpStat.Sampled] = 3;
        k[(int)TcpStat.Emitted] = 80;
        k[(int)TcpStat.RingFull] = 4;
        k[(int)TcpStat.Aggregated] = 0;
        k[(int)TcpStat.FlowFull] = 1; // not part of either identity
        k[(int)TcpStat.Seen] = 10 + 3 + 80 + 4;
        k[(int)TcpStat.Packets] = k[(int)TcpStat.Seen] + 5 + 2;
        return k;
    }

    private static PipelineCounters User() => new() { Received = 80, Decoded = 79, Malformed = 1, UnknownKind = 1, DroppedQueue = 2, Written = 77 };

    [Fact]
    public void BalancedCountersSatisfyTheInvariants()
    {
        var report = new StatsReport(Balanced(), User());
        Assert.True(report.PacketsBalance);
        Assert.True(report.SeenBalances);
        Assert.True(report.UserBalances);
        Assert.True(report.InvariantsHold());
        Assert.Empty(report.Violations());
    }

    [Theory]
    [InlineData(TcpStat.Packets)]
    [InlineData(TcpStat.NotTcp)]
    [InlineData(TcpStat.Malformed)]
    [InlineData(TcpStat.Filtered)]
    [InlineData(TcpStat.Sampled)]
    [InlineData(TcpStat.Emitted)]
    [InlineData(TcpStat.RingFull)]
    [InlineData(TcpStat.Aggregated)]
    public void OneMissingPacketBreaksAnInvariant(TcpStat stat)
    {
        var k = Balanced();
        k[(int)stat]++;
        var report = new StatsReport(k);
        Assert.False(report.InvariantsHold());
        Assert.Single(report.Violations());
    }

    [Fact]
    public void SeenOffBreaksBoth()
    {
        var k = Balanced();
        k[(int)TcpStat.Seen]--;
        var report = new StatsReport(k);
        Assert.False(report.PacketsBalance);
        Assert.False(report.SeenBalances);
        Assert.Equal(2, report.Violations().Count);
    }

    [Fact]
    public void UserCountersAreCheckedToo()
    {
        var user = User();
        user.Decoded--;
        var report = new StatsReport(Balanced(), user);
        Assert.False(report.InvariantsHold());
        Assert.Equal("received 80 != decoded 78 + malformed 1", Assert.Single(report.Violations()));
    }

    [Fact]
    public void JsonIsOneObjectWithEveryCounter()
    {
        string json = new StatsReport(Balanced(), User()).ToJson();
        Assert.Equal(
            "{\"kernel\":{\"packets\":104,\"seen\":97,\"not_tcp\":5,\"malformed\":2,\"filtered\":10,\"sampled\":3,\"emitted\":80,\"ring_full\":4,\"aggregated\":0,\"flow_full\":1}," +
            "\"user\":{\"received\":80,\"decoded\":79,\"malformed\":1,\"unknown_kind\":1,\"dropped_queue\":2,\"written\":77}," +
            "\"invariant_holds\":true}", json);
        using var doc = JsonDocument.Parse(new StatsReport(Balanced()).ToJson());
        Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("user").ValueKind);
    }

    [Fact]
    public void TableMatchesGoldenFile()
    {
        var k = Balanced();
        k[(int)TcpStat.RingFull]++;
        var writer = new StringWriter();
        new StatsReport(Balanced(), User()).WriteTable(writer);
        writer.Write("---\n");
        new StatsReport(k, User()).WriteTable(writer);
        Golden.Check("stats.txt", writer.ToString());
    }

    [Fact]
    public void TextForTheCliEndsWithTheJsonLine()
    {
        var writer = new StringWriter();
        StatsReport.WriteText(writer, Balanced(), User());
        var lines = writer.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("kernel", lines[0]);
        Assert.Equal(new StatsReport(Balanced(), User()).ToJson(), lines[^1]);
        Assert.StartsWith("{\"kernel\"", lines[^1]);
    }

    [Fact]
    public void RejectsShortCounterArrays() =>
        Assert.Throws<ArgumentException>(() => new StatsReport(new ulong[3]));
}
