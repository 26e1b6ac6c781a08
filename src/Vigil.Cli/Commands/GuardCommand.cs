using System.CommandLine;
using System.Text.Json;
using Vigil.Core.Policy;
using Vigil.Interop;
using Vigil.Interop.Bpf;
using Vigil.Sensors.Guard;
using Vigil.Wire;

namespace Vigil.Cli.Commands;

/// <summary><c>vigil guard status</c> and <c>vigil guard remove</c>: the guard pinned in a bpffs
/// directory, whether or not an agent runs.</summary>
public static class GuardCommand
{
    public static Command Create()
    {
        var guard = new Command("guard", "Show or remove the guard pinned in the kernel (enforcement that outlives vigil)");
        guard.Subcommands.Add(CreateStatus());
        guard.Subcommands.Add(CreateRemove());
        return guard;
    }

    internal static Option<string?> PinDirOption() =>
        new("--pin-dir") { Description = "the guard's bpffs pin directory (default: vigil/guard on the mounted bpffs)" };

    internal static string ResolvePinDir(string? given) =>
        given ?? GuardPins.DefaultDirectory()
        ?? throw new ArgumentException("no bpf file system is mounted, so no guard can be pinned (pass --pin-dir DIR if it is elsewhere)");

    private static Command CreateStatus()
    {
        var pinDir = PinDirOption();
        var output = new Option<string>("--output", "-o") { Description = "table or json (one object)", DefaultValueFactory = _ => "table" };
        output.AcceptOnlyFromAmong("table", "json");
        var status = new Command("status", "What the pinned guard enforces: cgroup, hooks, policy generation and rules, counters") { pinDir, output };
        status.SetAction(r => Run(() => Status(ResolvePinDir(r.GetValue(pinDir)), r.GetValue(output) ?? "table", Console.Out)));
        return status;
    }

    private static Command CreateRemove()
    {
        var pinDir = PinDirOption();
        var force = new Option<bool>("--force") { Description = "remove even while a vigil holds the directory (it then guards nothing)" };
        var remove = new Command("remove", "Detach the pinned guard's programs and remove its pins (only what Vigil pinned there)") { pinDir, force };
        remove.SetAction(r => Run(() => Remove(ResolvePinDir(r.GetValue(pinDir)), r.GetValue(force), Console.Out, Console.Error)));
        return remove;
    }

    private static int Run(Func<int> action)
    {
        try
        {
            LibbpfRuntime.EnsureLoaded();
            return action();
        }
        catch (Exception e)
        {
            return ExitCodes.Report(e, Console.Error);
        }
    }

    private static readonly Dictionary<uint, string> AttachTypes = new()
    {
        [1] = "cgroup_skb egress", [10] = "connect4", [11] = "connect6", [14] = "sendmsg4", [15] = "sendmsg6",
    };

    public static int Status(string dir, string output, TextWriter stdout)
    {
        using var pins = GuardPins.Open(dir);
        using var obj = pins.OpenMaps();
        var maps = new GuardMaps(obj, null);
        var state = maps.ReadState();
        int active = (int)(state.Active & 1);
        var config = state.Slot(active);
        var applied = AppliedPolicy.Parse(maps.ActiveText() ?? []);
        var counters = maps.ReadCounters();
        var cgroups = CgroupPaths.ForThisHost();
        var links = new List<(string Program, BpfLinkInfo Info)>();
        foreach (var (program, path) in pins.Links())
        {
            using var link = BpfLink.OpenPinned(path);
            links.Add((program, link.Info()));
        }
        var tcHooks = pins.TcHooks();
        var ifnames = NetworkNamespace.Interfaces().ToDictionary(i => i.Index, i => i.Name);
        bool running = pins.AgentRunning();
        var (dsts, ports, allow) = maps.Count(active);

        if (output == "json")
        {
            using var stream = new MemoryStream();
            using (var w = new Utf8JsonWriter(stream))
            {
                w.WriteStartObject();
                w.WriteString("pin_dir", pins.Directory);
                w.WriteBoolean("agent_running", running);
                w.WriteBoolean("enforcing", config.EnforceRules != 0 && (links.Count > 0 || tcHooks.Any(h => h.Attached != false)));
                w.WriteString("enforcer", tcHooks.Count > 0 ? "tc" : "cgroup");
                w.WriteNumber("generation", config.Generation);
                w.WriteNumber("active_slot", active);
                w.WriteStartArray("hooks");
                foreach (var (program, info) in links)
                {
                    w.WriteStartObject();
                    w.WriteString("program", program);
                    w.WriteString("hook", AttachTypes.GetValueOrDefault(info.AttachType, $"attach type {info.AttachType}"));
                    w.WriteNumber("link_id", info.Id);
                    w.WriteNumber("prog_id", info.ProgId);
                    w.WriteNumber("cgroup_id", info.CgroupId);
                    if (cgroups.Find(info.CgroupId) is { } p) w.WriteString("cgroup", p); else w.WriteNull("cgroup");
                    w.WriteEndObject();
                }
                foreach (var h in tcHooks)
                {
                    w.WriteStartObject();
                    w.WriteString("hook", "tc egress");
                    w.WriteString("kind", h.Kind);
                    w.WriteNumber("ifindex", h.Pin.Ifindex);
                    w.WriteNumber("netns", h.Pin.Netns);
                    if (h.Pin.InThisNamespace && ifnames.TryGetValue(h.Pin.Ifindex, out var name)) w.WriteString("interface", name); else w.WriteNull("interface");
                    if (h.LinkId != 0) w.WriteNumber("link_id", h.LinkId); else w.WriteNull("link_id");
                    w.WriteNumber("prog_id", h.ProgId);
                    if (h.Attached is { } attached) w.WriteBoolean("attached", attached); else w.WriteNull("attached");
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteStartObject("policy");
                if (applied is null) w.WriteNull("source");
                else
                {
                    w.WriteString("source", applied.Source);
                    w.WriteString("applied_by", applied.AppliedBy);
                    w.WriteString("applied_at", applied.AppliedAt.UtcDateTime.ToString("o", System.Globalization.CultureInfo.InvariantCulture));
                }
                AppliedPolicy.WriteRules(w, applied?.Rules ?? []);
                w.WriteNumber("destination_entries", dsts);
                w.WriteNumber("port_entries", ports);
                w.WriteNumber("allow_entries", allow);
                w.WriteEndObject();
                w.WriteStartObject("counters");
                foreach (var stat in Enum.GetValues<GuardStat>().Where(s => s != GuardStat.Count))
                    w.WriteNumber(JsonNamingPolicy.SnakeCaseLower.ConvertName(stat.ToString()), counters[(int)stat]);
                w.WriteEndObject();
                w.WriteEndObject();
            }
            stdout.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
            return ExitCodes.Ok;
        }

        int enforce = applied?.Rules.Count(r => r.Mode == GuardMode.Enforce) ?? System.Numerics.BitOperations.PopCount(config.EnforceRules);
        stdout.WriteLine($"guard pinned in {pins.Directory}: {(running ? "an agent is running" : "no agent running (the kernel enforces on its own)")}");
        stdout.WriteLine($"  policy generation {config.Generation} (slot {active}): {System.Numerics.BitOperations.PopCount(config.Rules)} rules, {enforce} enforce" +
                         (applied is null ? "" : $"; from {applied.Source}, applied by {applied.AppliedBy} at {applied.AppliedAt.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z"));
        foreach (var rule in applied?.Rules ?? [])
            stdout.WriteLine($"    rule {rule.Id} {rule.Name}: {PolicyText.ModeName(rule.Mode)} {rule.EndpointSet}");
        stdout.WriteLine($"  entries: {dsts} destinations, {ports} ports, {allow} allowed principals");
        if (links.Count == 0 && tcHooks.Count == 0) stdout.WriteLine("  hooks: none attached");
        foreach (var (program, info) in links)
            stdout.WriteLine($"  hook {AttachTypes.GetValueOrDefault(info.AttachType, program),-18} link {info.Id,-6} prog {info.ProgId,-6} cgroup {cgroups.Find(info.CgroupId) ?? $"id {info.CgroupId}"}");
        foreach (var h in tcHooks)
        {
            var where = h.Pin.InThisNamespace ? $"interface {ifnames.GetValueOrDefault(h.Pin.Ifindex, "?")} (ifindex {h.Pin.Ifindex}, {h.Kind})"
                                              : $"ifindex {h.Pin.Ifindex} of network namespace {h.Pin.Netns} ({h.Kind})";
            var attached = h.Attached switch { false => ": NOT ATTACHED (interface gone, or the hook was replaced)", null => ": not visible from this namespace", _ => "" };
            stdout.WriteLine($"  hook {"tc egress",-18} {(h.LinkId != 0 ? $"link {h.LinkId,-6}" : "filter     ")} prog {h.ProgId,-6} {where}{attached}");
        }
        stdout.WriteLine($"  decisions: {counters[(int)GuardStat.Checked]} checked, {counters[(int)GuardStat.Guarded]} guarded, {counters[(int)GuardStat.Allowed]} allowed, " +
                         $"{counters[(int)GuardStat.Audited]} audited, {counters[(int)GuardStat.Denied]} denied; events lost to a full ring: {counters[(int)GuardStat.RingFull]}");
        return ExitCodes.Ok;
    }

    public static int Remove(string dir, bool force, TextWriter stdout, TextWriter stderr)
    {
        using var pins = GuardPins.Open(dir);
        if (pins.AgentRunning() && !force)
        {
            stderr.WriteLine($"vigil: a vigil is guarding with {pins.Directory}: stop it first (an enforcing guard stays pinned when it stops), or pass --force");
            return ExitCodes.Failure;
        }
        var detached = pins.RemoveAll();
        stdout.WriteLine($"vigil: removed the guard pinned in {pins.Directory}: detached {(detached.Count == 0 ? "nothing" : string.Join(", ", detached))}");
        return ExitCodes.Ok;
    }
}
