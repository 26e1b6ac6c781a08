using Vigil.Interop;
using Vigil.Interop.Bpf;
using Vigil.Wire;

namespace Vigil.Sensors.Guard;

/// <summary>The contents of the guard's policy maps (what Vigil.Core's PolicyCompiler produces), kept
/// free of Core types so the sensor depends on the wire contract only. Keys carry slot 0: the sensor
/// writes them into whichever slot is inactive. <paramref name="Description"/> is the UTF-8 text kept
/// with the slot (vigil_guard_policy) so another process can name the slot's rules.</summary>
public sealed record GuardMapContents(
    GuardConfig Config,
    IReadOnlyList<(LpmKey Key, GuardRules Value)> Destinations,
    IReadOnlyList<(GuardPortKey Key, GuardRules Value)> Ports,
    IReadOnlyList<(GuardPrincipalKey Key, GuardAllowValue Value)> Allow,
    byte[]? Description = null);

/// <summary>Where the guard is enforced.</summary>
public enum GuardEnforcer
{
    /// <summary>cgroup connect4/6 and sendmsg4/6 (EPERM at once) and the cgroup_skb egress backstop.</summary>
    Cgroup,
    /// <summary>TC egress on chosen interfaces (hosts without cgroup v2): packets to guarded destinations are
    /// judged by their socket; a refused SYN is answered with a RST, other refused packets are dropped.</summary>
    Tc,
}

public sealed record GuardSensorOptions
{
    public GuardEnforcer Enforcer { get; init; } = GuardEnforcer.Cgroup;
    /// <summary>Cgroup enforcer's scope: the cgroup whose processes (and descendants) are guarded; null = the cgroup v2 root.</summary>
    public string? CgroupPath { get; init; }
    /// <summary>TC enforcer: the interfaces (of this network namespace) whose egress is guarded.</summary>
    public IReadOnlyList<string> Interfaces { get; init; } = [];
    public required GuardMapContents Policy { get; init; }
    public GuardSettings Settings { get; init; } = new() { RateWindowNs = 1_000_000_000, RateBurst = 5, WakeupBytes = 16 * 1024 };
    /// <summary>Ring-buffer size in bytes (a power of two, at least a page).</summary>
    public uint RingBytes { get; init; } = 1 << 20;
    /// <summary>Load and fill the maps, attach nothing (BPF_PROG_TEST_RUN of the egress program).</summary>
    public bool LoadOnly { get; init; }
    /// <summary>A directory on a bpffs to pin maps and links in (created if missing), or null for none.
    /// Pinned, enforcement outlives this process; a later start with the same directory adopts it.</summary>
    public string? PinDirectory { get; init; }
}

/// <summary>The guard (bpf/guard.bpf.c). Cgroup enforcer: cgroup connect4/6 and sendmsg4/6 refuse
/// connections the policy forbids with EPERM; cgroup_skb egress drops what raw sockets send to guarded
/// destinations; attached with BPF links to one cgroup. TC enforcer: a TC egress program on each chosen
/// interface refuses packets: a SYN gets a RST, anything else is dropped (TCX links, or netlink filters before Linux 6.6). Without a pin directory
/// nothing outlives this object. With one, maps and hooks are pinned there; a start that finds them adopts
/// them — the maps are reused and each hook's program is replaced in place (BPF_LINK_UPDATE, or a netlink
/// replace) — so the hooks never run without a program and the previous policy stays in force until the
/// new one is swapped in.</summary>
public sealed class GuardSensor : IDisposable
{
    private readonly BpfObject _obj;
    private readonly List<BpfLink> _links = new();
    private readonly List<TcAttachment> _tc = new();
    private readonly GuardPins? _pins;
    private RingBufferReader? _reader;

    public BpfObject Object => _obj;
    public GuardEnforcer Enforcer { get; private init; }
    /// <summary>The cgroup directory the programs are attached to (empty when LoadOnly or with the TC enforcer).</summary>
    public string CgroupPath { get; private set; } = "";
    /// <summary>TC enforcer: each guarded interface with how it is attached ("eth0 (tcx)").</summary>
    public IReadOnlyList<string> TcHooks { get; private set; } = [];
    /// <summary>The policy generation the kernel enforces (reported in events); +1 per swap, kept across adoption.</summary>
    public uint Generation => Maps.ActiveConfig().Generation;
    /// <summary>The pin directory, or null when not pinned.</summary>
    public string? PinDirectory => _pins?.Directory;
    /// <summary>Links found pinned and given this object's programs (0 on a fresh start).</summary>
    public int AdoptedLinks { get; private set; }
    /// <summary>The policy maps (swaps, state, the policy texts).</summary>
    public GuardMaps Maps { get; }

    /// <summary>Hooks attached, in attach order, as named in the start-up line.</summary>
    public string HookNames => Enforcer == GuardEnforcer.Cgroup
        ? "connect4, connect6, sendmsg4, sendmsg6, cgroup_skb egress"
        : "tc egress of " + string.Join(", ", TcHooks);

    private GuardSensor(BpfObject obj, GuardPins? pins, GuardEnforcer enforcer)
    {
        _obj = obj;
        _pins = pins;
        Enforcer = enforcer;
        Maps = new GuardMaps(obj, pins);
    }

    public static GuardSensor Start(GuardSensorOptions options)
    {
        KernelBtf.Require();
        GuardMaps.CheckCapacity(options.Policy);
        // Checked first because the kernel's answers mislead: without CAP_PERFMON the verifier rejects
        // bpf_get_current_task (an "unknown helper"), without CAP_NET_ADMIN loading fails with a bare EPERM.
        if (Capabilities.Current.MissingForBpf(netAdmin: true) is { Length: > 0 } missing)
            throw new BpfPermissionException("loading the guard (cgroup sock_addr and cgroup_skb programs that read the caller's credentials)",
                Errno.EPERM, missing);
        // Resolve where to attach before touching the kernel, so a typo fails with a clear message.
        string? cgroup = null;
        IReadOnlyList<TcTarget> interfaces = [];
        if (!options.LoadOnly && options.Enforcer == GuardEnforcer.Cgroup)
            cgroup = options.CgroupPath is null
                ? Cgroups.FindV2Mount() ?? throw new ArgumentException("no cgroup v2 file system is mounted: the cgroup enforcer needs cgroup v2 (see /proc/mounts); use --enforcer tc --iface NAME")
                : Cgroups.Resolve(options.CgroupPath);
        if (!options.LoadOnly && options.Enforcer == GuardEnforcer.Tc)
            interfaces = TcTarget.Resolve(options.Interfaces);

        var pins = options.PinDirectory is { } dir ? GuardPins.Take(dir) : null;
        BpfObject? obj = null;
        GuardSensor? sensor = null;
        try
        {
            if (pins?.Adopted == true) CheckSameEnforcer(pins, options.Enforcer);
            obj = BpfObject.OpenMemory(EmbeddedObjects.Read(GuardNames.Object), GuardNames.Object);
            sensor = new GuardSensor(obj, pins, options.Enforcer);
            // Only the chosen enforcer's programs are loaded (a verifier problem in the other cannot stop this one).
            var wanted = options.Enforcer == GuardEnforcer.Cgroup ? GuardNames.CgroupPrograms : GuardNames.TcPrograms;
            foreach (var p in obj.Programs) p.SetAutoload(wanted.Contains(p.Name));
            obj.Rodata.SetVariable(GuardNames.Settings, options.Settings);
            obj.Map(GuardNames.MapEvents).SetMaxEntries(options.RingBytes);
            pins?.ReuseMaps(obj);
            obj.Load();
            pins?.PinMaps(obj);
            // The policy goes in before any hook can run this object's programs; an adopted guard keeps
            // enforcing its previous policy until this swap.
            sensor.Maps.Swap(options.Policy);
            if (cgroup is not null) sensor.Attach(cgroup);
            if (options.Enforcer == GuardEnforcer.Tc && !options.LoadOnly) sensor.AttachTc(interfaces);
            return sensor;
        }
        catch
        {
            // A fresh start leaves nothing; an adopted guard keeps enforcing what it had.
            if (sensor is not null) sensor.Close(keepPinned: pins?.Adopted == true);
            else { obj?.Dispose(); pins?.Dispose(); }
            throw;
        }
    }

    /// <summary>Kernel attach type of each cgroup program (enum bpf_attach_type), to check adopted links.</summary>
    private static uint AttachType(string program) => program switch
    {
        GuardNames.ProgConnect4 => 10, // BPF_CGROUP_INET4_CONNECT
        GuardNames.ProgConnect6 => 11, // BPF_CGROUP_INET6_CONNECT
        GuardNames.ProgSendmsg4 => 14, // BPF_CGROUP_UDP4_SENDMSG
        GuardNames.ProgSendmsg6 => 15, // BPF_CGROUP_UDP6_SENDMSG
        GuardNames.ProgEgress => 1,    // BPF_CGROUP_INET_EGRESS
        _ => throw new ArgumentOutOfRangeException(nameof(program), program, "not a cgroup program of the guard"),
    };

    /// <summary>An adopted guard keeps its enforcer: switching between cgroup and TC hooks in place would
    /// leave a moment with neither.</summary>
    private static void CheckSameEnforcer(GuardPins pins, GuardEnforcer wanted)
    {
        bool cgroupPinned = pins.Links().Any(), tcPinned = pins.TcInterfaces().Count > 0;
        var pinned = cgroupPinned ? GuardEnforcer.Cgroup : tcPinned ? GuardEnforcer.Tc : wanted;
        if (pinned != wanted)
            throw new InvalidOperationException(
                $"the guard pinned in {pins.Directory} uses the {pinned.ToString().ToLowerInvariant()} enforcer, not {wanted.ToString().ToLowerInvariant()}: " +
                $"`vigil guard remove --pin-dir {pins.Directory}` it first, or start with --enforcer {pinned.ToString().ToLowerInvariant()}");
    }

    private void Attach(string cgroup)
    {
        using var dir = FileDescriptor.OpenDirectory(cgroup, "cgroup");
        ulong cgroupId = Cgroups.IdOf(cgroup);
        // Connect and send hooks first, the egress backstop last: a raw socket is the rarer case.
        foreach (var name in GuardNames.CgroupPrograms)
        {
            var program = _obj.Program(name);
            if (_pins?.OpenLink(name) is { } pinned)
            {
                _links.Add(pinned);
                var info = pinned.Info();
                if (info.Type != BpfLinkInfo.TypeCgroup || info.AttachType != AttachType(name) || info.CgroupId != cgroupId)
                    throw new InvalidOperationException(
                        $"the guard pinned in {_pins.Directory} is attached to another cgroup (id {info.CgroupId}) than {cgroup} (id {cgroupId}): " +
                        $"run `vigil guard status --pin-dir {_pins.Directory}`, then either pass that cgroup or `vigil guard remove` it first");
                pinned.Update(program);
                AdoptedLinks++;
            }
            else
            {
                var link = program.AttachCgroup(dir);
                _links.Add(link);
                _pins?.PinLink(name, link);
            }
        }
        CgroupPath = cgroup;
    }

    /// <summary>TC enforcer: the egress hook of each interface, at the front of its chain. Pinned, a hook
    /// found for the interface gets this object's program in one step (BPF_LINK_UPDATE of the TCX link, or a
    /// netlink replace of Vigil's filter); hooks pinned for interfaces no longer named are removed last.</summary>
    private void AttachTc(IReadOnlyList<TcTarget> targets)
    {
        uint netns = NetworkNamespace.CurrentInode();
        if (_pins is not null && _pins.TcInterfaces().FirstOrDefault(p => p.Netns != netns) is { Netns: not 0 } foreign)
            throw new InvalidOperationException(
                $"the guard pinned in {_pins.Directory} guards interfaces of another network namespace (inode {foreign.Netns}): " +
                "start vigil in that namespace, or `vigil guard remove` the guard there first");
        var hooks = new List<string>();
        foreach (var target in targets)
        {
            var pin = new GuardPins.TcPin(netns, target.Ifindex);
            var program = _obj.Program(target.Program);
            string kind;
            if (_pins?.OpenTcLink(pin) is { } pinned)
            {
                _links.Add(pinned);
                var info = pinned.Info();
                if (info.Type != BpfLinkInfo.TypeTcx || info.Ifindex != target.Ifindex)
                    throw new InvalidOperationException($"the TCX link pinned in {_pins.Directory} for {target.Name} is no longer attached to it: `vigil guard remove` it first");
                pinned.Update(program);
                AdoptedLinks++;
                kind = "tcx";
            }
            else if (_pins?.TcFilterProgramId(pin) is { } pinnedProgram &&
                     TcAttachment.NetlinkProgramId(target.Ifindex, TcDirection.Egress, GuardPins.TcFilterHandle, GuardPins.TcFilterPriority) == pinnedProgram)
            {
                var filter = TcAttachment.AttachNetlink(program, target.Ifindex, TcDirection.Egress, GuardPins.TcFilterHandle, GuardPins.TcFilterPriority, replace: true);
                _tc.Add(filter);
                _pins.PinTcFilterProgram(pin, program);
                AdoptedLinks++;
                kind = filter.Kind;
            }
            else
            {
                TcAttachment a;
                try { a = TcAttachment.AttachTcx(program, target.Ifindex, TcDirection.Egress, first: true); }
                catch (BpfNotSupportedException)
                {
                    a = TcAttachment.AttachNetlink(program, target.Ifindex, TcDirection.Egress, GuardPins.TcFilterHandle, GuardPins.TcFilterPriority);
                }
                _tc.Add(a);
                if (_pins is not null)
                {
                    if (a.Kind == "tcx") _pins.PinTcLink(pin, a);
                    else _pins.PinTcFilterProgram(pin, program);
                }
                kind = a.Kind;
            }
            hooks.Add($"{target.Name} ({kind})");
        }
        // Interfaces a previous start guarded and this one does not: removed once the others are in place.
        if (_pins is not null)
            foreach (var pin in _pins.TcInterfaces().Where(p => !targets.Any(t => t.Ifindex == p.Ifindex)).ToList())
                _pins.RemoveTc(pin);
        TcHooks = hooks;
    }

    /// <summary>Replaces the policy the kernel enforces, atomically (see <see cref="GuardMaps.Swap"/>).</summary>
    public void Reload(GuardMapContents policy) => Maps.Swap(policy);

    /// <summary>The event ring. One reader per sensor.</summary>
    public RingBufferReader Reader => _reader ??= new RingBufferReader(_obj.Map(GuardNames.MapEvents));

    /// <summary>Kernel counters summed over CPUs, indexed by <see cref="GuardStat"/>.</summary>
    public ulong[] ReadCounters() => Maps.ReadCounters();

    public BpfProgram Program(string name) => _obj.Program(name);

    /// <summary>True when closing keeps the guard in the kernel: it is pinned and its policy enforces.</summary>
    public bool StaysAfterExit => _pins is not null && Maps.ActiveConfig().EnforceRules != 0;

    /// <summary>Closes this process's hold on the guard. Pinned, an enforcing guard stays in the kernel
    /// (<see cref="StaysAfterExit"/>); anything else is unpinned and detached.</summary>
    public void Dispose() => Close(keepPinned: StaysAfterExit);

    private void Close(bool keepPinned)
    {
        // Teardown order: reader → links (detach) → object.
        _reader?.Dispose();
        if (_pins is not null && !keepPinned) _pins.RemoveAll();
        foreach (var l in Enumerable.Reverse(_links)) l.Dispose();
        _links.Clear();
        foreach (var a in _tc)
        {
            if (keepPinned) a.Leave(); // a netlink filter stays, as a pinned link does
            a.Dispose();
        }
        _tc.Clear();
        _obj.Dispose();
        _pins?.Dispose();
    }
}
