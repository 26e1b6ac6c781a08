using Vigil.Core.Tcp;
using Vigil.Interop;
using Vigil.Interop.Bpf;
using Vigil.Sensors.Tcp;
using Vigil.Wire;

namespace Vigil.Tests.Kernel.TestRun;

/// <summary>Counter values (or differences) indexed by <see cref="TcpStat"/>.</summary>
public readonly record struct TcpCounters(ulong[] Values)
{
    public ulong this[TcpStat s] => Values[(int)s];
    public static TcpCounters operator -(TcpCounters a, TcpCounters b) => new(a.Values.Zip(b.Values, (x, y) => x - y).ToArray());

    public override string ToString()
    {
        var values = Values;
        return string.Join(' ', Enum.GetValues<TcpStat>().Where(s => s != TcpStat.Count).Select(s => $"{s}={values[(int)s]}"));
    }

    /// <summary>The two identities the program promises (bpf/include/vigil/tcp.h).</summary>
    public void AssertInvariants()
    {
        Assert.True(this[TcpStat.Packets] == this[TcpStat.Seen] + this[TcpStat.NotTcp] + this[TcpStat.Malformed],
            $"packets != seen + not_tcp + malformed: {this}");
        Assert.True(this[TcpStat.Seen] == this[TcpStat.Filtered] + this[TcpStat.Sampled] + this[TcpStat.Emitted]
                    + this[TcpStat.RingFull] + this[TcpStat.Aggregated],
            $"seen != filtered + sampled + emitted + ring_full + aggregated: {this}");
    }
}

/// <summary>One decoded event and the bytes captured after it.</summary>
public sealed record CapturedEvent(TcpPacket Packet, byte[] Captured, int RecordLength);

/// <summary>Decodes ring records with the production decoder and keeps them. Records the decoder refuses
/// are kept too, so a test can fail on them instead of losing them.</summary>
public struct CollectingHandler : IRingRecordHandler
{
    public List<CapturedEvent> Events;
    public List<DecodeResult> Rejected;

    public void OnRecord(ReadOnlySpan<byte> record)
    {
        var result = TcpEventDecoder.TryDecode(record, out var packet, out var captured);
        if (result == DecodeResult.Ok) Events.Add(new CapturedEvent(packet, captured.ToArray(), record.Length));
        else Rejected.Add(result);
    }
}

/// <summary>What one BPF_PROG_TEST_RUN did: program verdict, events it emitted, counters it moved.</summary>
public sealed record RunOutcome(uint ReturnValue, IReadOnlyList<CapturedEvent> Events, TcpCounters Delta)
{
    public CapturedEvent SingleEvent()
    {
        Assert.True(Events.Count == 1, $"expected one event, got {Events.Count}; counters moved: {Delta}");
        return Events[0];
    }
}

/// <summary>The TCP sensor loaded (LoadOnly: nothing attached) with one hook's program, run on crafted input
/// with BPF_PROG_TEST_RUN. Every run drains the ring, reads the counters and checks their invariants.</summary>
public sealed class TcpProgramHarness : IDisposable
{
    public TcpInspectSensor Sensor { get; }
    public string ProgramName { get; }

    private TcpProgramHarness(TcpInspectSensor sensor, string program)
    {
        Sensor = sensor;
        ProgramName = program;
    }

    /// <summary>Loads the sensor for <paramref name="hook"/> (Tc or Cgroup) configured as <paramref name="spec"/> compiles.</summary>
    public static TcpProgramHarness Load(TcpFilterSpec? spec = null, TcpHookChoice hook = TcpHookChoice.Tc, uint ringBytes = 1 << 20)
    {
        var compiled = TcpFilterCompiler.Compile(spec ?? new TcpFilterSpec());
        var sensor = TcpInspectSensor.Start(new TcpSensorOptions
        {
            Hook = hook,
            LoadOnly = true,
            Config = compiled.Config,
            Ports = compiled.Ports,
            Sources = compiled.Sources,
            Destinations = compiled.Destinations,
            RingBytes = ringBytes,
        });
        var program = hook switch
        {
            TcpHookChoice.Tc => TcpNames.ProgTc,
            TcpHookChoice.Cgroup => TcpNames.ProgCgroup,
            _ => throw new ArgumentOutOfRangeException(nameof(hook), "BPF_PROG_TEST_RUN runs skb programs only"),
        };
        return new TcpProgramHarness(sensor, program);
    }

    public TcpCounters Counters() => new(Sensor.ReadCounters());

    /// <summary>Runs the program once on <paramref name="frame"/>. With <paramref name="drain"/> (the default) the ring
    /// is emptied afterwards and must hold exactly the events the counters say were emitted.</summary>
    public RunOutcome Run(ReadOnlySpan<byte> frame, ReadOnlySpan<byte> context = default, bool drain = true)
    {
        var before = Counters();
        var result = ProgramTestRun.Run(Sensor.Program(ProgramName), frame, 1, context);
        var after = Counters();
        after.AssertInvariants();
        var delta = after - before;
        delta.AssertInvariants();
        Assert.Equal(1ul, delta[TcpStat.Packets]); // one run, one invocation
        var events = drain ? Drain() : [];
        if (drain) Assert.Equal(delta[TcpStat.Emitted], (ulong)events.Count);
        return new RunOutcome(result.ReturnValue, events, delta);
    }

    /// <summary>Every event in the ring now, decoded.</summary>
    public List<CapturedEvent> Drain()
    {
        var handler = new CollectingHandler { Events = [], Rejected = [] };
        Sensor.Reader.Drain(ref handler);
        Assert.True(handler.Rejected.Count == 0, $"the decoder refused records: {string.Join(", ", handler.Rejected)}");
        return handler.Events;
    }

    public void Dispose() => Sensor.Dispose();
}

/// <summary>A <c>struct __sk_buff</c> context for BPF_PROG_TEST_RUN, with offsets read from the running
/// kernel's BTF rather than remembered.</summary>
public static class SkbContext
{
    private static readonly Lazy<BtfStruct> SkBuff = new(() => BtfReader.ReadStructs("/sys/kernel/btf/vmlinux")["__sk_buff"]);

    /// <summary>A context whose only non-zero field is ingress_ifindex (the kernel accepts it from user space).</summary>
    public static byte[] WithIngressIfindex(uint ifindex)
    {
        var s = SkBuff.Value;
        var ctx = new byte[s.Size];
        var f = s.Fields.Single(x => x.Name == "ingress_ifindex");
        BitConverter.TryWriteBytes(ctx.AsSpan(f.Offset, 4), ifindex);
        return ctx;
    }
}
