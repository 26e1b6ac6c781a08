using System.Text;
using Vigil.Core.Tcp;
using Vigil.Outputs.Tcp;
using Vigil.Outputs.Text;

namespace Vigil.Tests.Pure;

public class TcpTableSinkTests
{
    private static string Render(TcpPacket[] packets, int endpointWidth = TcpTableSink.DefaultEndpointWidth)
    {
        var writer = new StringWriter { NewLine = "\n" };
        var sink = new TcpTableSink(writer, Samples.Time, Samples.Names(), endpointWidth);
        foreach (var p in packets) sink.Write(in p, default);
        sink.Flush();
        return writer.ToString();
    }

    [Fact]
    public void MatchesGoldenFile() => Golden.Check("tcp-table.txt", Render(Samples.Stream()));

    [Fact]
    public void WideEndpointsKeepEveryColumnAligned()
    {
        string text = Render(Samples.Stream(), endpointWidth: 47);
        Golden.Check("tcp-table-wide.txt", text);
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        int arrow = lines[0].IndexOf("-> ", StringComparison.Ordinal);
        int flags = lines[0].IndexOf("FLAGS", StringComparison.Ordinal);
        foreach (var line in lines[1..])
        {
            Assert.Equal(arrow, line.IndexOf("-> ", StringComparison.Ordinal));
            Assert.NotEqual(' ', line[flags]);
            Assert.Equal(' ', line[flags - 1]);
        }
    }

    [Fact]
    public void RowsShowOwnerFlagsAndUnknownsAsDocumented()
    {
        var lines = Render(Samples.Stream()).Split('\n');
        Assert.StartsWith("TIME(UTC)", lines[0]);
        Assert.StartsWith("22:15:23.456789 eth0", lines[1]);
        Assert.Contains(" 4242    nginx ", lines[1]);
        Assert.Contains("www-data", lines[1]);
        Assert.Contains("192.0.2.10:40000      -> 198.51.100.7:80", lines[1]);
        Assert.Matches(@" S +1000000 +- +64240 +0$", lines[1]); // no ACK flag: ack column "-"
        Assert.Contains(" S. ", lines[6]);
        Assert.Matches(@"\[2001:db8::1\]:443 +-> \[2001:db8:85a3::8a2e:370:7334\]:51000 ", lines[6]);
        Assert.Contains(" P. ", lines[3]);
        Assert.Contains(" F. ", lines[4]);
        Assert.Matches(@"^\S+ eth0 +- +- +- +203\.0\.113\.255:65535 ", lines[5]);
        Assert.Contains(" R ", lines[5]);
        Assert.Contains(" 4321 ", lines[7]); // uid without passwd entry shown as the number
        Assert.Contains(" SEW ", lines[8]);
        Assert.Contains(" none ", lines[9]);
        Assert.Contains(" FSRP.UEW ", lines[10]);
        Assert.Contains(" verylongu+ ", lines[10]); // user cut to its column, marked with '+'
    }

    [Fact]
    public void HeaderComesFirstEvenWithoutPackets()
    {
        var writer = new StringWriter();
        new TcpTableSink(writer, Samples.Time, Samples.Names()).Flush();
        Assert.StartsWith("TIME(UTC)", writer.ToString());
        Assert.Single(writer.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void SteadyStateAllocatesNothing()
    {
        using var writer = new StreamWriter(new DiscardStream(), TextOutput.Utf8, 64 * 1024);
        var sink = new TcpTableSink(writer, Samples.Time, Samples.Names());
        var packets = Samples.Stream();
        Assert.Equal(0, Samples.AllocatedInSteadyState(() => Samples.WriteMany(sink, packets, 20_000)));
    }
}
