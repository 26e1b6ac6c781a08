using System.Net;
using Vigil.Core.Net;
using Vigil.Core.Tcp;
using Vigil.Interop;
using Vigil.Tests.Kernel.Support;
using Vigil.Wire;

namespace Vigil.Tests.Kernel.TestRun;

/// <summary>--sample N (1 in N packets per flow, SYN/FIN/RST always kept), --flows (aggregate only) and the
/// ring-full path.</summary>
public class SamplingAndFlowTests
{
    private static readonly Ipv4Spec FlowA = new() { Source = IPAddress.Parse("192.0.2.1"), Destination = IPAddress.Parse("192.0.2.100") };
    private static readonly Ipv6Spec FlowB = new() { Source = IPAddress.Parse("2001:db8::1"), Destination = IPAddress.Parse("2001:db8::100") };

    private static TcpSpec Data(uint seq, int payload = 100) => new() { SourcePort = 50000, DestinationPort = 443, Seq = seq, Flags = 0x18, Payload = new byte[payload] };

    public static TheoryData<uint, int> SampleCases()
    {
        var data = new TheoryData<uint, int>();
        foreach (var n in new uint[] { 1, 2, 3, 7 })
            foreach (var m in new[] { 1, 2, 6, 7, 8, 20 })
                data.Add(n, m);
        return data;
    }

    [Theory]
    [MemberData(nameof(SampleCases))]
    public void DataPacketsOfOneFlowAreSampledOneInN(uint every, int packets)
    {
        using var h = TcpProgramHarness.Load(new TcpFilterSpec { SampleEvery = every });
        var kept = new List<uint>();
        for (int i = 0; i < packets; i++)
            kept.AddRange(h.Run(Packet.Ipv4Tcp(FlowA, Data((uint)i))).Events.Select(e => e.Packet.Seq));

        int expected = (int)((packets + every - 1) / every); // ceil(M/N)
        Assert.Equal(expected, kept.Count);
        // The first packet of a flow is always kept, then every N-th.
        Assert.Equal(Enumerable.Range(0, expected).Select(k => (uint)(k * every)), kept);
        var total = h.Counters();
        Assert.Equal((ulong)expected, total[TcpStat.Emitted]);
        Assert.Equal((ulong)(packets - expected), total[TcpStat.Sampled]);
        Assert.Equal((ulong)packets, total[TcpStat.Seen]);
    }

    [Theory]
    [InlineData(0x02)] // SYN
    [InlineData(0x12)] // SYN|ACK
    [InlineData(0x11)] // FIN|ACK
    [InlineData(0x04)] // RST
    [InlineData(0x14)] // RST|ACK
    public void SynFinRstAreAlwaysKept(byte flags)
    {
        const uint every = 5;
        using var h = TcpProgramHarness.Load(new TcpFilterSpec { SampleEvery = every });
        // Interleave control segments with data: every control segment is kept wherever it falls in the flow,
        // and it still counts as one packet of the flow for the data sampling.
        int controls = 0, dataKept = 0, flowIndex = 0;
        for (int i = 0; i < 30; i++)
        {
            bool control = i % 4 == 1;
            var tcp = Data((uint)i) with { Flags = control ? flags : (byte)0x18 };
            var outcome = h.Run(Packet.Ipv4Tcp(FlowA, tcp));
            if (control)
            {
                controls++;
                Assert.Equal((uint)i, outcome.SingleEvent().Packet.Seq);
            }
            else
            {
                bool expectKept = flowIndex % every == 0;
                Assert.True(expectKept == (outcome.Events.Count == 1), $"data packet {i} (flow packet {flowIndex}): {outcome.Delta}");
                if (expectKept) dataKept++;
            }
            flowIndex++;
        }
        var total = h.Counters();
        Assert.Equal((ulong)(controls + dataKept), total[TcpStat.Emitted]);
        Assert.Equal((ulong)(30 - controls - dataKept), total[TcpStat.Sampled]);
    }

    [Fact]
    public void EachFlowIsSampledOnItsOwn()
    {
        const uint every = 4;
        using var h = TcpProgramHarness.Load(new TcpFilterSpec { SampleEvery = every });
        var perFlow = new Dictionary<byte, int> { [4] = 0, [6] = 0 };
        for (int i = 0; i < 10; i++)
        {
            foreach (var ev in h.Run(Packet.Ipv4Tcp(FlowA, Data((uint)i))).Events) perFlow[ev.Packet.Family]++;
            foreach (var ev in h.Run(Packet.Ipv6Tcp(FlowB, Data((uint)i))).Events) perFlow[ev.Packet.Family]++;
        }
        // A third flow: same addresses as A, another remote port.
        var third = h.Run(Packet.Ipv4Tcp(FlowA, Data(0) with { SourcePort = 50001 }));
        Assert.Single(third.Events);
        Assert.Equal(3, perFlow[4]); // ceil(10/4)
        Assert.Equal(3, perFlow[6]);
        var total = h.Counters();
        Assert.Equal(7ul, total[TcpStat.Emitted]);
        Assert.Equal(14ul, total[TcpStat.Sampled]);
    }

    [Fact]
    public void FlowsModeAggregatesWithoutEvents()
    {
        using var h = TcpProgramHarness.Load(new TcpFilterSpec { FlowsOnly = true });
        byte[] flags = [0x02, 0x10, 0x18, 0x18, 0x11];
        int[] payloads = [0, 0, 1000, 460, 0];
        uint[] seqs = [100, 101, 101, 1101, 1561];
        for (int i = 0; i < flags.Length; i++)
        {
            var outcome = h.Run(Packet.Ipv4Tcp(FlowA, new TcpSpec { SourcePort = 50000, DestinationPort = 443, Seq = seqs[i], Flags = flags[i], Payload = new byte[payloads[i]] }));
            Assert.Empty(outcome.Events);
            Assert.Equal(1ul, outcome.Delta[TcpStat.Aggregated]);
        }
        var flows = h.Sensor.ReadFlows();
        var (key, value) = Assert.Single(flows);
        Assert.Equal(IpAddress16.From(FlowA.Destination), Read16(key, local: true));  // local = destination of incoming packets
        Assert.Equal(IpAddress16.From(FlowA.Source), Read16(key, local: false));
        Assert.Equal(443, key.Lport);
        Assert.Equal(50000, key.Rport);
        Assert.Equal(NetworkNamespace.CurrentInode(), key.NetnsIno);
        Assert.Equal(5ul, value.Packets);
        Assert.Equal(1460ul, value.Bytes);
        Assert.Equal(0x1bu, value.FlagsSeen); // SYN|ACK|PSH|FIN
        Assert.Equal(1561u, value.LastSeq);
        Assert.NotEqual(0ul, value.FirstJiffies);
        Assert.True(value.LastJiffies >= value.FirstJiffies);
        // The clock program reads the same clock: the flow was last seen within the last two seconds.
        ulong now = h.Sensor.ReadJiffies();
        Assert.InRange(now - value.LastJiffies, 0ul, 2ul * KernelTick.Hz);
        var total = h.Counters();
        Assert.Equal(5ul, total[TcpStat.Aggregated]);
        Assert.Equal(0ul, total[TcpStat.Emitted]);
        Assert.Equal(0ul, total[TcpStat.FlowFull]);
    }

    [Fact]
    public void FlowsModeKeepsFlowsApart()
    {
        using var h = TcpProgramHarness.Load(new TcpFilterSpec { FlowsOnly = true });
        for (int i = 0; i < 3; i++) h.Run(Packet.Ipv4Tcp(FlowA, Data((uint)i, 10)));
        for (int i = 0; i < 2; i++) h.Run(Packet.Ipv6Tcp(FlowB, Data((uint)i, 20)));
        h.Run(Packet.Ipv4Tcp(FlowA, Data(9, 30) with { SourcePort = 50001 }));
        // The reverse direction is another key: local and remote swap.
        h.Run(Packet.Ipv4Tcp(FlowA with { Source = FlowA.Destination, Destination = FlowA.Source }, Data(5, 40) with { SourcePort = 443, DestinationPort = 50000 }));

        var flows = h.Sensor.ReadFlows().ToDictionary(f => (Read16(f.Key, true).ToString(), f.Key.Lport, f.Key.Rport), f => f.Value);
        Assert.Equal(4, flows.Count);
        Assert.Equal((3ul, 30ul), (flows[("192.0.2.100", 443, 50000)].Packets, flows[("192.0.2.100", 443, 50000)].Bytes));
        Assert.Equal((2ul, 40ul), (flows[("2001:db8::100", 443, 50000)].Packets, flows[("2001:db8::100", 443, 50000)].Bytes));
        Assert.Equal((1ul, 30ul), (flows[("192.0.2.100", 443, 50001)].Packets, flows[("192.0.2.100", 443, 50001)].Bytes));
        Assert.Equal((1ul, 40ul), (flows[("192.0.2.1", 50000, 443)].Packets, flows[("192.0.2.1", 50000, 443)].Bytes));
        Assert.Equal(7ul, h.Counters()[TcpStat.Aggregated]);
    }

    /// <summary>Each CPU adds up its current flow in a slot and flushes it into the map when another flow
    /// arrives; interleaved flows flush on every packet. Either way the totals are exact, and the packets
    /// still in a slot count too.</summary>
    [Fact]
    public void FlowsModeTotalsAreExactWhenFlowsInterleave()
    {
        using var h = TcpProgramHarness.Load(new TcpFilterSpec { FlowsOnly = true });
        var flowC = Data(0, 7) with { SourcePort = 50002 };
        for (int i = 0; i < 50; i++)
        {
            h.Run(Packet.Ipv4Tcp(FlowA, Data((uint)i, 10)));
            h.Run(Packet.Ipv6Tcp(FlowB, Data((uint)i, 20)));
            if (i % 10 == 0) h.Run(Packet.Ipv4Tcp(FlowA, flowC with { Seq = (uint)i, Flags = (byte)(i == 40 ? 0x11 : 0x10) }));
        }
        for (int i = 0; i < 5; i++) h.Run(Packet.Ipv4Tcp(FlowA, Data((uint)(100 + i), 10))); // a run of one flow

        var flows = h.Sensor.ReadFlows().ToDictionary(f => (Read16(f.Key, true).ToString(), f.Key.Lport, f.Key.Rport), f => f.Value);
        Assert.Equal(3, flows.Count);
        var a = flows[("192.0.2.100", 443, 50000)];
        var b = flows[("2001:db8::100", 443, 50000)];
        var c = flows[("192.0.2.100", 443, 50002)];
        Assert.Equal((55ul, 550ul, 104u), (a.Packets, a.Bytes, a.LastSeq));
        Assert.Equal((50ul, 1000ul, 49u), (b.Packets, b.Bytes, b.LastSeq));
        Assert.Equal((5ul, 35ul, 40u, 0x11u), (c.Packets, c.Bytes, c.LastSeq, c.FlagsSeen));
        var total = h.Counters();
        Assert.Equal(110ul, total[TcpStat.Aggregated]);
        Assert.Equal(0ul, total[TcpStat.FlowFull]);
    }

    /// <summary>With a one-page ring and no reader, 30 records of 136 bytes fit (the producer may run at most
    /// size-1 bytes ahead); the rest are counted as ring_full, and seen still adds up.</summary>
    [Fact]
    public void FullRingIsCountedNotLost()
    {
        using var h = TcpProgramHarness.Load(ringBytes: 4096);
        for (int i = 0; i < 40; i++) h.Run(Packet.Ipv4Tcp(FlowA, Data((uint)i)), drain: false);
        var total = h.Counters();
        Assert.Equal(30ul, total[TcpStat.Emitted]);
        Assert.Equal(10ul, total[TcpStat.RingFull]);
        var events = h.Drain();
        Assert.Equal(Enumerable.Range(0, 30).Select(i => (uint)i), events.Select(e => e.Packet.Seq));
        // Room again after the reader caught up.
        Assert.Single(h.Run(Packet.Ipv4Tcp(FlowA, Data(99))).Events);
    }

    private static unsafe IpAddress16 Read16(FlowKey key, bool local) =>
        IpAddress16.From(new ReadOnlySpan<byte>(local ? key.Laddr : key.Raddr, 16));
}
