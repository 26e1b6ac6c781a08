using System.CommandLine;
using Vigil.Core.Tcp;
using Vigil.Sensors.Tcp;

namespace Vigil.Cli.Commands;

/// <summary>`vigil watch tcp`: options → <see cref="TcpWatchSettings"/> → <see cref="TcpWatch"/>.</summary>
public static class WatchTcpCommand
{
    public static Command Create()
    {
        var hook = new Option<string>("--hook") { Description = "auto|kprobe|fentry|tc|cgroup (auto: first that works, in that order)", DefaultValueFactory = _ => "auto" };
        hook.AcceptOnlyFromAmong("auto", "kprobe", "fentry", "tc", "cgroup");
        var iface = new Option<string[]>("--iface", "-i") { Description = "TC: interface to inspect (repeatable; default: all but loopback)" };
        var netns = new Option<string?>("--netns") { Description = "inspect inside this named network namespace (ip netns)" };
        var cgroup = new Option<string?>("--cgroup") { Description = "cgroup hook: cgroup v2 path (default: the root)" };
        var port = new Option<string[]>("--port", "-p") { Description = "keep packets with this source or destination port (repeatable)" };
        var src = new Option<string[]>("--src") { Description = "keep packets from this address/CIDR (repeatable, IPv4 or IPv6)" };
        var dst = new Option<string[]>("--dst") { Description = "keep packets to this address/CIDR (repeatable)" };
        var flags = new Option<string?>("--flags") { Description = "keep packets with any of these flags, e.g. SYN,RST" };
        var v4 = new Option<bool>("-4", "--ipv4") { Description = "IPv4 only" };
        var v6 = new Option<bool>("-6", "--ipv6") { Description = "IPv6 only" };
        var sample = new Option<uint>("--sample") { Description = "keep 1 in N packets per flow (SYN, FIN, RST always kept)", DefaultValueFactory = _ => 1 };
        var flows = new Option<bool>("--flows") { Description = "aggregate per flow in the kernel and show a refreshing top view" };
        var sort = new Option<string>("--sort") { Description = "--flows: sort by packets|bytes", DefaultValueFactory = _ => "packets" };
        sort.AcceptOnlyFromAmong("packets", "bytes");
        var top = new Option<int>("--top") { Description = "--flows: rows to show", DefaultValueFactory = _ => 20 };
        var output = new Option<string?>("--output", "-o") { Description = "table|json (default: table on a terminal, json otherwise)" };
        output.AcceptOnlyFromAmong("table", "json");
        var pcap = new Option<string?>("--pcap", "-w") { Description = "also write packets to this pcap-ng file" };
        var snaplen = new Option<uint?>("--snaplen", "-s") { Description = "header bytes captured per packet for --pcap (max 256, default 128)" };
        var count = new Option<long?>("--count", "-c") { Description = "stop after N packets" };
        var duration = new Option<string?>("--duration", "-d") { Description = "stop after this long (e.g. 10s, 2m)" };
        var stats = new Option<bool>("--stats") { Description = "print loss counters every second (always printed on exit)" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "also print libbpf's messages" };
        var ringMiB = new Option<uint>("--ring-mib") { Description = "ring buffer size in MiB (power of two)", DefaultValueFactory = _ => 8 };

        var cmd = new Command("tcp", "Inspect incoming TCP packets (IPv4 and IPv6) with their owning process")
        {
            hook, iface, netns, cgroup, port, src, dst, flags, v4, v6, sample, flows, sort, top, output, pcap, snaplen,
            count, duration, stats, ringMiB, verbose,
        };
        cmd.SetAction((ParseResult r, CancellationToken ct) =>
        {
            try
            {
                var settings = new TcpWatchSettings
                {
                    Hook = Enum.Parse<TcpHookChoice>(r.GetValue(hook)!, ignoreCase: true),
                    Interfaces = r.GetValue(iface) ?? [],
                    Netns = r.GetValue(netns),
                    CgroupPath = r.GetValue(cgroup),
                    Filter = new TcpFilterSpec
                    {
                        Ports = r.GetValue(port) ?? [],
                        Sources = r.GetValue(src) ?? [],
                        Destinations = r.GetValue(dst) ?? [],
                        Flags = r.GetValue(flags),
                        OnlyIPv4 = r.GetValue(v4),
                        OnlyIPv6 = r.GetValue(v6),
                        SampleEvery = r.GetValue(sample),
                        FlowsOnly = r.GetValue(flows),
                        Snaplen = r.GetValue(pcap) is null ? 0 : r.GetValue(snaplen) ?? 128,
                    },
                    FlowSortByBytes = r.GetValue(sort) == "bytes",
                    FlowRows = r.GetValue(top),
                    Output = r.GetValue(output) ?? (Console.IsOutputRedirected ? "json" : "table"),
                    PcapPath = r.GetValue(pcap),
                    Count = r.GetValue(count),
                    Duration = r.GetValue(duration) is { } d ? DurationParser.Parse(d) : null,
                    PeriodicStats = r.GetValue(stats),
                    RingBytes = checked(r.GetValue(ringMiB) * 1024 * 1024),
                    Verbose = r.GetValue(verbose),
                };
                if (settings.Count is <= 0) throw new Core.UsageException("--count must be positive");
                return Task.FromResult(new TcpWatch(settings, Console.Out, Console.Error).Run(ct));
            }
            catch (Exception e)
            {
                return Task.FromResult(ExitCodes.Report(e, Console.Error));
            }
        });
        return cmd;
    }
}
