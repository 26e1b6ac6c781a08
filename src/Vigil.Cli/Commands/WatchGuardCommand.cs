using System.CommandLine;
using Vigil.Sensors.Guard;

namespace Vigil.Cli.Commands;

/// <summary>`vigil watch guard`: options → <see cref="GuardWatchSettings"/> → <see cref="GuardWatch"/>.</summary>
public static class WatchGuardCommand
{
    public static Command Create()
    {
        var policy = new Option<string?>("--policy") { Description = "guard policy file (YAML, docs/policy.md); default: the embedded default policy" };
        var enforcer = new Option<string>("--enforcer") { Description = "cgroup: connect/sendmsg hooks refuse with EPERM (needs cgroup v2); tc: TC egress on --iface interfaces answers refused connects with a RST and drops other refused packets (hosts without cgroup v2)", DefaultValueFactory = _ => "cgroup" };
        enforcer.AcceptOnlyFromAmong("cgroup", "tc");
        var cgroup = new Option<string?>("--cgroup") { Description = "cgroup enforcer: guard the processes of this cgroup v2 subtree (default: the root, i.e. every process)" };
        var iface = new Option<string[]>("--iface", "-i") { Description = "tc enforcer: guard the egress of this interface (repeatable)", AllowMultipleArgumentsPerToken = false };
        var output = new Option<string?>("--output", "-o") { Description = "table|json (default: table on a terminal, json otherwise)" };
        output.AcceptOnlyFromAmong("table", "json");
        var count = new Option<long?>("--count", "-c") { Description = "stop after N events" };
        var duration = new Option<string?>("--duration", "-d") { Description = "stop after this long (e.g. 10s, 2m)" };
        var burst = new Option<uint>("--rate-burst") { Description = "events per second per (uid, destination); more are counted, not shown", DefaultValueFactory = _ => 5 };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "also print libbpf's messages" };
        var pinDir = new Option<string?>("--pin-dir") { Description = "bpffs directory to pin the guard in, so enforcement outlives vigil and a restart adopts it (default: vigil/guard on the mounted bpffs)" };
        var noPin = new Option<bool>("--no-pin") { Description = "pin nothing: enforcement ends when vigil stops" };
        var httpBytes = new Option<uint>("--http-bytes") { Description = "HTTP audit: bytes of each allowed or audited TCP connection to a guarded destination to capture and parse (0 = off, at most 4096)", DefaultValueFactory = _ => GuardWatchSettings.DefaultHttpBytes };

        var cmd = new Command("guard", "Enforce a guard policy (metadata services and other destinations) in the kernel and show every audit or deny decision")
        {
            policy, enforcer, cgroup, iface, output, count, duration, burst, verbose, pinDir, noPin, httpBytes,
        };
        cmd.SetAction((ParseResult r, CancellationToken ct) =>
        {
            try
            {
                var settings = new GuardWatchSettings
                {
                    PolicyPath = r.GetValue(policy),
                    Enforcer = r.GetValue(enforcer) == "tc" ? GuardEnforcer.Tc : GuardEnforcer.Cgroup,
                    CgroupPath = r.GetValue(cgroup),
                    Interfaces = r.GetValue(iface) ?? [],
                    Output = r.GetValue(output) ?? (Console.IsOutputRedirected ? "json" : "table"),
                    Count = r.GetValue(count),
                    Duration = r.GetValue(duration) is { } d ? DurationParser.Parse(d) : null,
                    RateBurst = r.GetValue(burst),
                    Verbose = r.GetValue(verbose),
                    PinDirectory = r.GetValue(pinDir),
                    NoPin = r.GetValue(noPin),
                    HttpBytes = r.GetValue(httpBytes),
                };
                if (settings.HttpBytes > Wire.GuardConstants.HttpMaxBytes) throw new Core.UsageException($"--http-bytes must be at most {Wire.GuardConstants.HttpMaxBytes}");
                if (settings.NoPin && settings.PinDirectory is not null) throw new Core.UsageException("--no-pin and --pin-dir exclude each other");
                if (settings.Enforcer == GuardEnforcer.Tc && settings.Interfaces.Count == 0) throw new Core.UsageException("--enforcer tc needs at least one --iface NAME (the interfaces whose egress to guard)");
                if (settings.Enforcer == GuardEnforcer.Tc && settings.CgroupPath is not null) throw new Core.UsageException("--cgroup is the cgroup enforcer's scope; the tc enforcer guards --iface interfaces");
                if (settings.Enforcer == GuardEnforcer.Cgroup && settings.Interfaces.Count > 0) throw new Core.UsageException("--iface is for --enforcer tc (the cgroup enforcer guards a cgroup: --cgroup)");
                if (settings.Count is <= 0) throw new Core.UsageException("--count must be positive");
                if (settings.RateBurst == 0) throw new Core.UsageException("--rate-burst must be positive");
                return Task.FromResult(new GuardWatch(settings, Console.Out, Console.Error).Run(ct));
            }
            catch (Exception e)
            {
                return Task.FromResult(ExitCodes.Report(e, Console.Error));
            }
        });
        return cmd;
    }
}
