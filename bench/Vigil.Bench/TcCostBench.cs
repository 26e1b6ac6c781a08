using System.Numerics;
using Vigil.Interop.Bpf;
using Vigil.Sensors.Tcp;
using Vigil.Wire;

namespace Vigil.Bench;

/// <summary>Per-packet cost of the TCP sensor's TC program (vigil_tcp_tc) on each of its paths,
/// measured by BPF_PROG_TEST_RUN (the kernel times --repeat runs and returns the mean).
/// Emitting paths run three times, with different readers of the ring:
/// quiet - no wake-ups and nobody reading during the timed runs (the ring is drained between
///         runs): the program's own cost;
/// poll  - the agent's set-up: a reader thread in epoll, woken by the program every 64 KiB;
/// spin  - a reader thread that spins on the ring: shows what cache-line sharing costs.</summary>
public static class TcCostBench
{
    private enum Reader { None, Quiet, Poll, Spin }

    private sealed record Path(string Name, string Description, TcpSensorOptions Options, byte[] Frame, TcpStat Expect, Reader Reader);

    private static readonly string[] Baselines =
        ["bench_nop", "bench_ktime", "bench_ktime_coarse", "bench_jiffies", "bench_lru_miss3", "bench_lru_hit_update", "bench_lru_hit", "bench_lru_hit_plain", "bench_lru_hit_2atomic", "bench_percpu_lru_hit_plain", "bench_hash_hit_plain", "bench_ringbuf", "bench_load128"];

    public static int Run(Args args)
    {
        int repeat = args.Int("repeat", 1_000_000);
        int runs = args.Int("runs", 5);
        var v4 = Frames.TcpV4(1448);
        var v6 = Frames.TcpV6(1428);
        var baseConfig = new TcpConfig { Families = 3, WakeupBytes = 64 * 1024 };
        const int warmup = 1000;
        // Quiet runs hold a whole run in the ring: 1M records of up to 264 bytes.
        uint quietRing = (uint)Math.Min(1L << 30, (long)BitOperations.RoundUpToPowerOf2((ulong)(repeat + warmup) * 264));
        TcpSensorOptions Options(TcpConfig c, ushort[]? ports = null, Reader reader = Reader.None) => new()
        {
            Hook = TcpHookChoice.Tc,
            LoadOnly = true,
            Config = reader == Reader.Quiet ? c with { WakeupBytes = uint.MaxValue } : c,
            Ports = ports ?? [],
            RingBytes = reader == Reader.Quiet ? quietRing : 8u << 20, // 8 MiB: the sensor's default
        };

        List<Path> paths =
        [
            new("filtered", "port filter 9999, packet to 5201", Options(baseConfig with { FilterPorts = 1 }, [9999]), v4, TcpStat.Filtered, Reader.None),
            new("aggregated", "flows only (LRU flow map update)", Options(baseConfig with { FlowsOnly = 1 }), v4, TcpStat.Aggregated, Reader.None),
        ];
        foreach (var reader in new[] { Reader.Quiet, Reader.Poll, Reader.Spin })
        {
            paths.Add(new("emitted", "IPv4 event, snaplen 0", Options(baseConfig, reader: reader), v4, TcpStat.Emitted, reader));
            paths.Add(new("emitted_snap128", "IPv4 event + 128 captured bytes", Options(baseConfig with { Snaplen = 128 }, reader: reader), v4, TcpStat.Emitted, reader));
            paths.Add(new("emitted_v6", "IPv6 event, snaplen 0", Options(baseConfig, reader: reader), v6, TcpStat.Emitted, reader));
        }

        // What the measurement itself costs (an empty program), and the building blocks of the paths.
        using (var baseline = BenchObjects.Open("baseline.bpf.o"))
        {
            baseline.Load();
            using var reader = new RingBufferReader(baseline.Map("bench_events"));
            var drain = new RingDrainer(reader, spin: false);
            try
            {
                foreach (var name in Baselines)
                {
                    var prog = baseline.Program(name);
                    ProgramTestRun.Run(prog, v4, 1000);
                    var nanos = Enumerable.Range(0, runs).Select(_ => (double)ProgramTestRun.Run(prog, v4, repeat).AverageNanoseconds).ToList();
                    Console.WriteLine(
                        $"RESULT kind=tc_cost path=block_{name["bench_".Length..]} repeat={repeat} runs={runs} mean_ns={nanos.Average():F1} " +
                        $"min_ns={nanos.Min()} max_ns={nanos.Max()} runs_ns={string.Join(',', nanos)} ok=1 frame_bytes={v4.Length}");
                }
            }
            finally { drain.Stop(); }
        }

        foreach (var path in paths)
        {
            using var sensor = TcpInspectSensor.Start(path.Options);
            var prog = sensor.Program(TcpNames.ProgTc);
            var drain = path.Reader is Reader.Poll or Reader.Spin ? new RingDrainer(sensor.Reader, path.Reader == Reader.Spin) : null;
            var quiet = new RingCounter();
            var before = sensor.ReadCounters();
            ProgramTestRun.Run(prog, path.Frame, warmup); // creates the flow entry, warms caches and ring pages
            var nanos = new List<double>();
            try
            {
                for (int r = 0; r < runs; r++)
                {
                    if (path.Reader == Reader.Quiet) sensor.Reader.Drain(ref quiet); // between timed runs
                    nanos.Add(ProgramTestRun.Run(prog, path.Frame, repeat).AverageNanoseconds);
                }
                if (path.Reader == Reader.Quiet) sensor.Reader.Drain(ref quiet);
            }
            finally { drain?.Stop(); }
            long drained = drain?.Records ?? quiet.Records;
            var after = sensor.ReadCounters();
            ulong Delta(TcpStat s) => after[(int)s] - before[(int)s];

            long expected = (long)repeat * runs + warmup;
            bool ok = (long)Delta(path.Expect) == expected;
            if (path.Expect == TcpStat.Emitted) ok &= drained == (long)Delta(TcpStat.Emitted) && Delta(TcpStat.RingFull) == 0;
            Console.WriteLine(
                $"RESULT kind=tc_cost path={path.Name} reader={path.Reader.ToString().ToLowerInvariant()} repeat={repeat} runs={runs} " +
                $"mean_ns={nanos.Average():F1} min_ns={nanos.Min()} max_ns={nanos.Max()} runs_ns={string.Join(',', nanos)} " +
                $"packets={Delta(TcpStat.Packets)} filtered={Delta(TcpStat.Filtered)} aggregated={Delta(TcpStat.Aggregated)} " +
                $"emitted={Delta(TcpStat.Emitted)} ring_full={Delta(TcpStat.RingFull)} drained={drained} ok={(ok ? 1 : 0)} " +
                $"frame_bytes={path.Frame.Length} desc=\"{path.Description}\"");
            if (!ok) Console.Error.WriteLine($"{path.Name}: counters do not show {expected} packets on the {path.Expect} path");
        }
        AlternatingFlows(Options(baseConfig with { FlowsOnly = 1 }), v4, args.Int("calls", 200_000));
        return 0;
    }

    /// <summary>The flows-only path's worst case: every packet belongs to another flow than the one before,
    /// so each one flushes the CPU's slot into the flow map. A repeated test run replays one frame, so
    /// here each call runs once (repeat=1) with frames of two flows in turn; the same single-run
    /// measurement of one flow and of an empty program (per-run timing overhead) is printed beside it.</summary>
    private static void AlternatingFlows(TcpSensorOptions options, byte[] frameA, int calls)
    {
        var frameB = (byte[])frameA.Clone();
        frameB[14 + 20] ^= 0x01; // another TCP source port: another flow
        using var sensor = TcpInspectSensor.Start(options);
        using var baseline = BenchObjects.Open("baseline.bpf.o");
        baseline.Load();
        var cases = new (string Name, BpfProgram Program, byte[][] Frames)[]
        {
            ("single_run_nop", baseline.Program("bench_nop"), [frameA]),
            ("single_run_aggregated_one_flow", sensor.Program(TcpNames.ProgTc), [frameA]),
            ("single_run_aggregated_alternating", sensor.Program(TcpNames.ProgTc), [frameA, frameB]),
        };
        foreach (var (name, program, frames) in cases)
        {
            for (int i = 0; i < 1000; i++) ProgramTestRun.Run(program, frames[i % frames.Length]);
            var before = sensor.ReadCounters();
            double total = 0;
            for (int i = 0; i < calls; i++) total += ProgramTestRun.Run(program, frames[i % frames.Length]).AverageNanoseconds;
            var after = sensor.ReadCounters();
            ulong flowFull = after[(int)TcpStat.FlowFull] - before[(int)TcpStat.FlowFull];
            Console.WriteLine(
                $"RESULT kind=tc_cost path={name} repeat=1 calls={calls} mean_ns={total / calls:F1} " +
                $"aggregated={after[(int)TcpStat.Aggregated] - before[(int)TcpStat.Aggregated]} flow_full={flowFull} ok={(flowFull == 0 ? 1 : 0)}");
        }
    }

    private struct RingCounter : IRingRecordHandler
    {
        public long Records;
        public void OnRecord(ReadOnlySpan<byte> record) => Records++;
    }

    /// <summary>Drains a ring on its own thread until stopped, counting records.</summary>
    private sealed class RingDrainer
    {
        private readonly Thread _thread;
        private volatile bool _stop;
        private RingCounter _counter;

        public long Records => _counter.Records;

        public RingDrainer(RingBufferReader reader, bool spin)
        {
            _thread = new Thread(() =>
            {
                while (!_stop)
                {
                    if (spin) reader.Drain(ref _counter);
                    else reader.Poll(ref _counter, 10);
                }
                reader.Drain(ref _counter);
            }) { Name = "ring drain", IsBackground = true };
            _thread.Start();
        }

        public void Stop()
        {
            _stop = true;
            _thread.Join();
        }
    }
}
