using Vigil.Interop.Bpf;
using Vigil.Sensors.Tcp;
using Vigil.Wire;

namespace Vigil.Bench;

/// <summary>Per-packet cost of the TCP sensor's TC program (vigil_tcp_tc) on each of its paths,
/// measured by BPF_PROG_TEST_RUN (the kernel times --repeat runs and returns the mean).</summary>
public static class TcCostBench
{
    private sealed record Path(string Name, string Description, TcpSensorOptions Options, byte[] Frame, TcpStat Expect);

    private static readonly string[] Baselines =
        ["bench_nop", "bench_ktime", "bench_ktime_coarse", "bench_lru_miss3", "bench_lru_hit_update", "bench_ringbuf", "bench_load128"];

    public static int Run(Args args)
    {
        int repeat = args.Int("repeat", 1_000_000);
        int runs = args.Int("runs", 5);
        // --busy-drain: the reader spins on the ring instead of waiting for the batched wake-ups.
        bool busy = args.Get("busy-drain", "false") == "true";
        var v4 = Frames.TcpV4(1448);
        var v6 = Frames.TcpV6(1428);
        var baseConfig = new TcpConfig { Families = 3, WakeupBytes = 64 * 1024 };
        TcpSensorOptions Options(TcpConfig c, ushort[]? ports = null) => new()
        {
            Hook = TcpHookChoice.Tc,
            LoadOnly = true,
            Config = c,
            Ports = ports ?? [],
            RingBytes = 64u << 20,
        };

        Path[] paths =
        [
            new("filtered", "port filter 9999, packet to 5201", Options(baseConfig with { FilterPorts = 1 }, [9999]), v4, TcpStat.Filtered),
            new("aggregated", "flows only (LRU flow map update)", Options(baseConfig with { FlowsOnly = 1 }), v4, TcpStat.Aggregated),
            new("emitted", "event into the ring, snaplen 0", Options(baseConfig), v4, TcpStat.Emitted),
            new("emitted_snap128", "event + 128 captured bytes", Options(baseConfig with { Snaplen = 128 }), v4, TcpStat.Emitted),
            new("emitted_v6", "IPv6 event, snaplen 0", Options(baseConfig), v6, TcpStat.Emitted),
        ];

        // What the measurement itself costs (an empty program), and the building blocks of the paths.
        using (var baseline = BenchObjects.Open("baseline.bpf.o"))
        {
            baseline.Load();
            using var reader = new RingBufferReader(baseline.Map("bench_events"));
            var drain = new RingDrainer(reader, busy: false);
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
            // Drain concurrently, as the agent does: epoll with the sensor's batched wake-ups.
            var drain = new RingDrainer(sensor.Reader, busy);
            var before = sensor.ReadCounters();
            const int warmup = 1000;
            ProgramTestRun.Run(prog, path.Frame, warmup); // creates the flow entry, warms caches and ring pages
            var nanos = new List<double>();
            try
            {
                for (int r = 0; r < runs; r++)
                    nanos.Add(ProgramTestRun.Run(prog, path.Frame, repeat).AverageNanoseconds);
            }
            finally { drain.Stop(); }
            var after = sensor.ReadCounters();
            ulong Delta(TcpStat s) => after[(int)s] - before[(int)s];

            long expected = (long)repeat * runs + warmup;
            bool ok = (long)Delta(path.Expect) == expected;
            if (path.Expect == TcpStat.Emitted) ok &= drain.Records == (long)Delta(TcpStat.Emitted);
            Console.WriteLine(
                $"RESULT kind=tc_cost path={path.Name} repeat={repeat} runs={runs} " +
                $"mean_ns={nanos.Average():F1} min_ns={nanos.Min()} max_ns={nanos.Max()} runs_ns={string.Join(',', nanos)} " +
                $"packets={Delta(TcpStat.Packets)} filtered={Delta(TcpStat.Filtered)} aggregated={Delta(TcpStat.Aggregated)} " +
                $"emitted={Delta(TcpStat.Emitted)} ring_full={Delta(TcpStat.RingFull)} drained={drain.Records} ok={(ok ? 1 : 0)} " +
                $"frame_bytes={path.Frame.Length} desc=\"{path.Description}\"");
            if (!ok) Console.Error.WriteLine($"{path.Name}: counters do not show {expected} packets on the {path.Expect} path");
        }
        return 0;
    }

    /// <summary>Drains a ring on its own thread until stopped, counting records.</summary>
    private sealed class RingDrainer
    {
        private struct Counter : IRingRecordHandler
        {
            public long Records;
            public void OnRecord(ReadOnlySpan<byte> record) => Records++;
        }

        private readonly Thread _thread;
        private volatile bool _stop;
        private Counter _counter;

        public long Records => _counter.Records;

        public RingDrainer(RingBufferReader reader, bool busy)
        {
            _thread = new Thread(() =>
            {
                while (!_stop)
                {
                    if (busy) reader.Drain(ref _counter);
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
