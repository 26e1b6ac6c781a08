using Vigil.Core.Naming;
using Vigil.Outputs.Tcp;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Vigil.Core.Pipeline;
using Vigil.Interop;
using Vigil.Interop.Bpf;
using Vigil.Sensors.Tcp;
using Vigil.Wire;

namespace Vigil.Bench;

/// <summary>What `vigil watch tcp --hook tc --iface X --json > /dev/null` does, for the throughput
/// benchmark: the TCP sensor on TC ingress of one interface inside a network namespace, the ring
/// drained by the pipeline, every packet serialised to JSON into <see cref="Stream.Null"/>.
/// Variants for attributing the cost: --flows-only (kernel aggregation, no events), --no-sink.
/// Prints READY once attached; stops on SIGTERM/SIGINT or after --max-seconds, then prints the
/// kernel and user-space counters.</summary>
public static class SensorHarness
{
    private struct PublishToPipeline(TcpPipeline pipeline) : IRingRecordHandler
    {
        public void OnRecord(ReadOnlySpan<byte> record) => pipeline.Publish(record);
    }

    public static int Run(Args args)
    {
        string netns = args.Require("netns");
        string iface = args.Require("iface");
        uint snaplen = (uint)args.Int("snaplen", 0);
        int maxSeconds = args.Int("max-seconds", 120);
        // --flows-only: aggregate in the kernel, emit nothing; isolates the BPF side's cost.
        bool flowsOnly = args.Get("flows-only", "false") == "true";
        // --no-sink: decode and queue every event but serialise nothing; isolates the JSON cost.
        bool noSink = args.Get("no-sink", "false") == "true";

        using var stop = new ManualResetEventSlim();
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Set(); });
        using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Set(); });

        // setns() is per thread: the whole run, attach included, happens on the namespace's thread.
        return NetworkNamespace.RunIn(netns, () =>
        {
            var options = new TcpSensorOptions
            {
                Hook = TcpHookChoice.Tc,
                Interfaces = [iface],
                Config = new TcpConfig { Families = 3, WakeupBytes = 64 * 1024, Snaplen = snaplen, FlowsOnly = (byte)(flowsOnly ? 1 : 0) },
            };
            using var sensor = TcpInspectSensor.Start(options);
            var json = new CountingNullStream();
            using var sink = new TcpJsonSink(json, TimeBase.Now(), new HostNames(sensor.InterfaceNames));
            using var pipeline = new TcpPipeline(noSink ? [] : [sink]);
            var handler = new PublishToPipeline(pipeline);
            var reader = sensor.Reader;
            Console.WriteLine($"READY attached={sensor.AttachedTo}");

            var clock = Stopwatch.StartNew();
            var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
            while (!stop.IsSet && clock.Elapsed.TotalSeconds < maxSeconds)
            {
                if (reader.Poll(ref handler, 50) > 0) pipeline.EndBatch();
            }
            // The script stops us after the traffic ends: count, then take what is left in the ring.
            var kernel = sensor.ReadCounters();
            reader.Drain(ref handler);
            pipeline.EndBatch();
            pipeline.Complete();
            var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
            var user = pipeline.Counters;
            Console.WriteLine(
                $"RESULT kind=sensor seconds={clock.Elapsed.TotalSeconds:F2} cpu_seconds={cpu.TotalSeconds:F2} " +
                $"packets={kernel[(int)TcpStat.Packets]} seen={kernel[(int)TcpStat.Seen]} not_tcp={kernel[(int)TcpStat.NotTcp]} " +
                $"malformed={kernel[(int)TcpStat.Malformed]} aggregated={kernel[(int)TcpStat.Aggregated]} emitted={kernel[(int)TcpStat.Emitted]} ring_full={kernel[(int)TcpStat.RingFull]} " +
                $"received={user.Received} decoded={user.Decoded} user_malformed={user.Malformed} dropped_queue={user.DroppedQueue} " +
                $"written={user.Written} json_bytes={json.Bytes}");
            return 0;
        });
    }
}

/// <summary>Discards what the JSON sink writes (as /dev/null would) and counts the bytes.</summary>
internal sealed class CountingNullStream : Stream
{
    public long Bytes { get; private set; }
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => Bytes;
    public override long Position { get => Bytes; set => throw new NotSupportedException(); }
    public override void Write(byte[] buffer, int offset, int count) => Bytes += count;
    public override void Write(ReadOnlySpan<byte> buffer) => Bytes += buffer.Length;
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
