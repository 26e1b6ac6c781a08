using System.Runtime.InteropServices;
using Vigil.Core.Pipeline;
using Vigil.Core.Tcp;
using Vigil.Wire;

namespace Vigil.Tests.Pure;

public class PipelineTests
{
    private sealed class CollectingSink : ITcpPacketSink
    {
        public readonly List<(ushort Sport, int CapLen)> Seen = new();
        public readonly ManualResetEventSlim Got = new();
        public int Expect = int.MaxValue;
        public void Write(in TcpPacket packet, ReadOnlySpan<byte> captured)
        {
            lock (Seen)
            {
                Seen.Add((packet.SourcePort, captured.Length));
                if (Seen.Count >= Expect) Got.Set();
            }
        }
        public void Flush() { }
    }

    private static byte[] Record(ushort sport, int capLen = 0)
    {
        int size = (TcpEventDecoder.EventSize + capLen + 7) & ~7;
        var buf = new byte[size];
        var ev = new TcpEvent { Sport = sport, Dport = 80, Family = 4, CapLen = (ushort)capLen };
        ev.Hdr = new EventHeader { Kind = (ushort)EventKind.TcpPacket, Version = WireConstants.Version, Size = (uint)size };
        MemoryMarshal.Write(buf, in ev);
        return buf;
    }

    [Fact]
    public void DeliversInOrderWithCapturedBytesAndCountsBadRecords()
    {
        var sink = new CollectingSink { Expect = 3 };
        using var p = new TcpPipeline([sink], capacity: 16);
        p.Publish(Record(1, capLen: 40));
        p.Publish(Record(2));
        p.Publish(new byte[5]);            // truncated
        p.Publish(Record(3, capLen: 256));
        p.EndBatch();
        Assert.True(sink.Got.Wait(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken));
        p.Complete();
        Assert.Equal([(1, 40), (2, 0), (3, 256)], sink.Seen);
        Assert.Equal(4, p.Counters.Received);
        Assert.Equal(3, p.Counters.Decoded);
        Assert.Equal(1, p.Counters.Malformed);
        Assert.Equal(3, p.Counters.Written);
    }

    [Fact]
    public void AFullQueueDropsAndCountsInsteadOfBlockingTheReader()
    {
        var blocker = new ManualResetEventSlim();
        var sink = new BlockingSink(blocker);
        using var p = new TcpPipeline([sink], capacity: 4);
        for (ushort i = 0; i < 100; i++) p.Publish(Record(i)); // never blocks
        p.EndBatch();
        blocker.Set();
        p.Complete();
        Assert.Equal(100, p.Counters.Received);
        Assert.Equal(100, p.Counters.Decoded);
        Assert.True(p.Counters.DroppedQueue >= 95, $"dropped {p.Counters.DroppedQueue}");
        Assert.Equal(p.Counters.Decoded, p.Counters.Written + p.Counters.DroppedQueue);
    }

    [Fact]
    public void PublishingAllocatesNothing()
    {
        using var p = new TcpPipeline([new NullSink()], capacity: 1024);
        var record = Record(7, capLen: 128);
        Assert.Equal(0, Samples.AllocatedInSteadyState(() =>
        {
            for (int i = 0; i < 10_000; i++) p.Publish(record);
        }));
    }

    private sealed class NullSink : ITcpPacketSink
    {
        public void Write(in TcpPacket packet, ReadOnlySpan<byte> captured) { }
        public void Flush() { }
    }

    private sealed class BlockingSink(ManualResetEventSlim gate) : ITcpPacketSink
    {
        public void Write(in TcpPacket packet, ReadOnlySpan<byte> captured) => gate.Wait(TimeSpan.FromSeconds(10));
        public void Flush() { }
    }
}
