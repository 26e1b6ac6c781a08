using System.Net;
using Vigil.Core.Policy;
using Vigil.Interop;
using Vigil.Interop.Bpf;
using Vigil.Sensors.Guard;
using Vigil.Wire;

namespace Vigil.Bench;

/// <summary>Per-packet cost of the guard's packet programs (BPF_PROG_TEST_RUN; the kernel times --repeat
/// runs and returns the mean), with the policy of the connect benchmark loaded (--policy, the same file
/// eng/bench.sh gives `vigil watch guard`). One row per packet program × frame (guarded/unguarded,
/// IPv4/IPv6) × HTTP capture budget, next to the empty program of the same type (what the test run
/// itself costs) and the guard's destination lookup alone.
///
/// What a test run can reach: the kernel gives the skb a dummy socket of type 0 — not SOCK_RAW and
/// without socket storage — so vigil_guard_egress takes the path of every packet of an ordinary
/// (TCP/UDP) socket whose connection is not captured: all unguarded traffic. The raw-socket judgement
/// and the capture of a guarded connection's bytes need a real socket (their cost is in the
/// BPF_ENABLE_STATS numbers of the connect benchmark); connect4/6 have no test run at all.</summary>
public static class GuardCostBench
{
    /// <summary>Packet programs, the enforcer that loads them and the empty program of their type. The TC
    /// enforcer's test runs give its frames the same dummy socket, which it passes as a kernel socket's (no
    /// file) after finding the destination guarded: its guarded rows are the whole path up to judging an
    /// owner (parse, destination and port lookups, the socket's credentials), its unguarded rows every
    /// other packet's.</summary>
    private static readonly (string Program, GuardEnforcer Enforcer, string Harness)[] PacketPrograms =
    [
        (GuardNames.ProgEgress, GuardEnforcer.Cgroup, "bench_nop_cgroup_skb"),
        (GuardNames.ProgTcEgress, GuardEnforcer.Tc, "bench_nop"),
    ];

    /// <summary>HTTP audit budgets: the default (a socket-storage lookup per packet of a full socket) and off.</summary>
    private static readonly uint[] HttpBudgets = [1024, 0];

    public static int Run(Args args)
    {
        int repeat = args.Int("repeat", 1_000_000);
        int runs = args.Int("runs", 5);
        // Only the empty programs: eng/bench.sh runs them once more with BPF_ENABLE_STATS on, to show what
        // the kernel's run-time accounting adds to every run (and so to run_time_ns per run).
        bool harnessOnly = args.Get("harness-only", "false") == "true";
        const int warmup = 1000;
        var contents = CompilePolicy(args.Require("policy"));

        // The connect benchmark's destinations (eng/bench.sh): guarded = in the policy, unguarded = not.
        // A 64-byte payload stands for a request; nothing on these paths reads it.
        var frames = new (string Name, byte[] Frame)[]
        {
            ("guarded_v4", Frames.Tcp(IPAddress.Parse("10.0.2.15"), IPAddress.Parse("169.254.169.254"), 80, 64)),
            ("guarded_v6", Frames.Tcp(IPAddress.Parse("fd00:2::15"), IPAddress.Parse("fd00:ec2::254"), 80, 64)),
            ("unguarded_v4", Frames.Tcp(IPAddress.Parse("10.0.2.15"), IPAddress.Parse("10.214.0.1"), 80, 64)),
            ("unguarded_v6", Frames.Tcp(IPAddress.Parse("fd00:2::15"), IPAddress.Parse("fd00:214::1"), 80, 64)),
        };

        double Time(BpfProgram prog, byte[] frame, out List<double> each, out uint retval)
        {
            retval = ProgramTestRun.Run(prog, frame, warmup).ReturnValue;
            each = Enumerable.Range(0, runs).Select(_ => (double)ProgramTestRun.Run(prog, frame, repeat).AverageNanoseconds).ToList();
            return each.Average();
        }

        // The harnesses and the destination lookup alone (in an LPM trie filled like vigil_guard_dst).
        var harness = new Dictionary<string, double>();
        using (var blocks = BenchObjects.Open("guard_blocks.bpf.o"))
        using (var baseline = BenchObjects.Open("baseline.bpf.o"))
        {
            blocks.Load();
            baseline.Load();
            foreach (var (name, prog) in new[] { ("bench_nop_cgroup_skb", blocks.Program("bench_nop_cgroup_skb")), ("bench_nop", baseline.Program("bench_nop")) })
            {
                harness[name] = Time(prog, frames[0].Frame, out var each, out var rv);
                Console.WriteLine($"RESULT kind=guard_cost path=harness program={name} repeat={repeat} runs={runs} mean_ns={harness[name]:F1} " +
                                  $"min_ns={each.Min()} max_ns={each.Max()} runs_ns={string.Join(',', each)} retval={rv}");
            }
            if (harnessOnly) return 0;
            var dst = blocks.Map("bench_guard_dst");
            foreach (var (key, value) in contents.Destinations) dst.Update(GuardDstKey.InSlot(key, 0), value);
            foreach (var (frame, bytes) in frames)
            {
                double mean = Time(blocks.Program("bench_guard_lpm"), bytes, out var each, out var rv);
                Console.WriteLine($"RESULT kind=guard_cost path=block_lpm program=bench_guard_lpm frame={frame} repeat={repeat} runs={runs} " +
                                  $"mean_ns={mean:F1} net_ns={mean - harness["bench_nop"]:F1} min_ns={each.Min()} max_ns={each.Max()} " +
                                  $"runs_ns={string.Join(',', each)} retval={rv} hit={(rv != 0 ? 1 : 0)}");
            }
        }

        foreach (var httpBytes in HttpBudgets)
            foreach (var (program, enforcer, harnessName) in PacketPrograms)
            {
                // The HTTP capture is the cgroup enforcer's: the TC rows are measured once.
                if (enforcer == GuardEnforcer.Tc && httpBytes != 0) continue;
                using var sensor = GuardSensor.Start(new GuardSensorOptions
                {
                    Enforcer = enforcer,
                    Policy = contents,
                    LoadOnly = true,
                    Settings = new GuardSettings { RateWindowNs = 1_000_000_000, RateBurst = 5, WakeupBytes = 16 * 1024, HttpBytes = httpBytes },
                });
                var prog = sensor.Program(program);
                foreach (var (frame, bytes) in frames)
                {
                    var before = sensor.ReadCounters();
                    double mean = Time(prog, bytes, out var each, out var rv);
                    var after = sensor.ReadCounters();
                    long expected = (long)repeat * runs + warmup;
                    // Each packet program counts every packet it sees: proof that each run reached it.
                    var seen = program == GuardNames.ProgEgress ? GuardStat.EgressPackets : GuardStat.TcPackets;
                    bool ok = (long)(after[(int)seen] - before[(int)seen]) == expected;
                    var changed = Enum.GetValues<GuardStat>().Where(s => s != GuardStat.Count && after[(int)s] != before[(int)s])
                        .Select(s => $"{s}=+{after[(int)s] - before[(int)s]}");
                    Console.WriteLine(
                        $"RESULT kind=guard_cost path=program program={program} frame={frame} http_bytes={httpBytes} repeat={repeat} runs={runs} " +
                        $"mean_ns={mean:F1} net_ns={mean - harness[harnessName]:F1} harness={harnessName} min_ns={each.Min()} max_ns={each.Max()} " +
                        $"runs_ns={string.Join(',', each)} retval={rv} ok={(ok ? 1 : 0)} counters=\"{string.Join(' ', changed)}\" frame_bytes={bytes.Length}");
                    if (!ok) Console.Error.WriteLine($"guard-cost: {program} on {frame}: {seen} did not grow by {expected}");
                }
            }
        return 0;
    }

    /// <summary>The policy file compiled as `vigil watch guard` compiles it (users by name through NSS).</summary>
    private static GuardMapContents CompilePolicy(string path)
    {
        var result = PolicyLoader.LoadFile(path, new BenchHost());
        foreach (var d in result.Diagnostics) Console.Error.WriteLine(d.ToString());
        var policy = result.Policy ?? throw new ArgumentException($"{path} is not a valid policy");
        var p = PolicyCompiler.Compile(policy);
        return new GuardMapContents(p.Config,
            p.Destinations.Select(e => (e.Key, e.Value)).ToList(),
            p.Ports.Select(e => (e.Key, e.Value)).ToList(),
            p.Allow.Select(e => (e.Key, e.Value)).ToList());
    }

    /// <summary>Users and groups from NSS; the bench policy names no executables or cgroups.</summary>
    private sealed class BenchHost : IHostPrincipals
    {
        public uint? FindUser(string name) => Accounts.FindUser(name);
        public uint? FindGroup(string name) => Accounts.FindGroup(name);
        public ExecutableLookup FindExecutable(string path) => ExecutableLookup.Failed("the benchmark policy names no executables");
        public CgroupLookup FindCgroup(string path) => CgroupLookup.Missing("the benchmark policy names no cgroups");
    }
}
