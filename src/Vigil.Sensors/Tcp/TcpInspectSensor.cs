using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Vigil.Interop;
using Vigil.Interop.Bpf;
using Vigil.Wire;

namespace Vigil.Sensors.Tcp;

public enum TcpHookChoice { Auto, Kprobe, Fentry, Tc, Cgroup }

/// <summary>What to load and where to attach. Filter contents come compiled from Vigil.Core.</summary>
public sealed record TcpSensorOptions
{
    public TcpHookChoice Hook { get; init; } = TcpHookChoice.Auto;
    /// <summary>TC interfaces; empty = every non-loopback interface of the current network namespace.</summary>
    public IReadOnlyList<string> Interfaces { get; init; } = [];
    /// <summary>cgroup for the cgroup_skb hook; null = the cgroup v2 root.</summary>
    public string? CgroupPath { get; init; }
    public TcpConfig Config { get; init; } = new() { Families = 3, WakeupBytes = 64 * 1024 };
    public IReadOnlyList<ushort> Ports { get; init; } = [];
    public IReadOnlyList<LpmKey> Sources { get; init; } = [];
    public IReadOnlyList<LpmKey> Destinations { get; init; } = [];
    /// <summary>Ring-buffer size in bytes (a power of two, at least a page).</summary>
    public uint RingBytes { get; init; } = 8 << 20;
    /// <summary>Load the programs but attach nothing (BPF_PROG_TEST_RUN, benchmarks).</summary>
    public bool LoadOnly { get; init; }
}

/// <summary>The incoming-TCP sensor: one BPF object (bpf/tcp_inspect.bpf.c), loaded for one hook
/// of the fallback chain kprobe → fentry → TC → cgroup_skb, plus the socket-owner tracker.</summary>
public sealed class TcpInspectSensor : IDisposable
{
    public static readonly TcpHook[] Chain = [TcpHook.Kprobe, TcpHook.Fentry, TcpHook.Tc, TcpHook.Cgroup];

    private readonly BpfObject _obj;
    private readonly List<IDisposable> _attachments = new();
    private RingBufferReader? _reader;

    public TcpHook Hook { get; }
    /// <summary>Why earlier hooks of the chain were not used (auto mode).</summary>
    public IReadOnlyList<string> Skipped { get; private set; } = [];
    /// <summary>Where the hook is attached, for the start-up line.</summary>
    public string AttachedTo { get; private set; } = "";
    /// <summary>Null when owners are tracked; otherwise why not.</summary>
    public string? OwnerTrackingProblem { get; private set; }
    public IReadOnlyDictionary<int, string> InterfaceNames { get; private set; } = new Dictionary<int, string>();
    public BpfObject Object => _obj;
    public TcpConfig Config { get; }

    private TcpInspectSensor(BpfObject obj, TcpHook hook, TcpConfig config)
    {
        _obj = obj;
        Hook = hook;
        Config = config;
    }

    /// <summary>Starts on the requested hook, or on the first hook of the chain that works (auto).
    /// Attaching TC acts on the calling thread's network namespace.</summary>
    public static TcpInspectSensor Start(TcpSensorOptions options)
    {
        KernelBtf.Require();
        if (options.Hook != TcpHookChoice.Auto)
            return StartOn(ToHook(options.Hook), options);

        var skipped = new List<string>();
        foreach (var hook in Chain)
        {
            try
            {
                var sensor = StartOn(hook, options);
                sensor.Skipped = skipped;
                return sensor;
            }
            catch (BpfException e) when (hook != Chain[^1])
            {
                // A "not supported" carries its reason in the hint; anything else in its first line.
                skipped.Add($"{HookName(hook)}: {(e is BpfNotSupportedException && e.Hint is { } why ? why : FirstLine(e.Message))}");
            }
        }
        throw new InvalidOperationException("unreachable");
    }

    public static string HookName(TcpHook hook) => hook switch
    {
        TcpHook.Kprobe => "kprobe",
        TcpHook.Fentry => "fentry",
        TcpHook.Tc => "tc",
        TcpHook.Cgroup => "cgroup",
        _ => hook.ToString(),
    };

    private static TcpHook ToHook(TcpHookChoice c) => c switch
    {
        TcpHookChoice.Kprobe => TcpHook.Kprobe,
        TcpHookChoice.Fentry => TcpHook.Fentry,
        TcpHookChoice.Tc => TcpHook.Tc,
        TcpHookChoice.Cgroup => TcpHook.Cgroup,
        _ => throw new ArgumentOutOfRangeException(nameof(c)),
    };

    private static string FirstLine(string s) => s.Split('\n')[0];

    private static string[] ProgramsOf(TcpHook hook) => hook switch
    {
        TcpHook.Kprobe => [TcpNames.ProgKprobeV4, TcpNames.ProgKprobeV6],
        TcpHook.Fentry => [TcpNames.ProgFentryV4, TcpNames.ProgFentryV6],
        TcpHook.Tc => [TcpNames.ProgTc],
        TcpHook.Cgroup => [TcpNames.ProgCgroup],
        _ => [],
    };

    private static TcpInspectSensor StartOn(TcpHook hook, TcpSensorOptions options)
    {
        var config = options.Config;
        if (config.NetnsIno == 0) config.NetnsIno = NetworkNamespace.CurrentInode();
        if (config.Snaplen > WireConstants.TcpMaxSnaplen)
            throw new ArgumentException($"snaplen {config.Snaplen} exceeds the maximum of {WireConstants.TcpMaxSnaplen}");

        // Resolve interfaces before touching the kernel, so a typo fails with a clear message.
        IReadOnlyList<(int Index, string Name)> ifaces = NetworkNamespace.Interfaces();
        var names = ifaces.ToDictionary(i => i.Index, i => i.Name);
        List<(int Index, string Name)> tcTargets = [];
        if (hook == TcpHook.Tc && !options.LoadOnly)
        {
            if (options.Interfaces.Count == 0)
                tcTargets = ifaces.Where(i => i.Name != "lo").ToList();
            else
                foreach (var name in options.Interfaces)
                {
                    var match = ifaces.FirstOrDefault(i => i.Name == name);
                    if (match.Name is null)
                        throw new ArgumentException($"unknown interface '{name}' (have: {string.Join(", ", ifaces.Select(i => i.Name))})");
                    tcTargets.Add(match);
                }
            if (tcTargets.Count == 0)
                throw new ArgumentException("no interface to attach TC to (only loopback here; name one with --iface or use --hook kprobe/fentry/cgroup)");
        }

        var obj = BpfObject.OpenMemory(EmbeddedObjects.Read(TcpNames.Object), TcpNames.Object);
        var sensor = new TcpInspectSensor(obj, hook, config) { InterfaceNames = names };
        try
        {
            var wanted = new HashSet<string>(ProgramsOf(hook)) { TcpNames.ProgSockState, TcpNames.ProgClock };
            foreach (var p in obj.Programs) p.SetAutoload(wanted.Contains(p.Name));
            obj.Rodata.SetInitialValue(config);
            obj.Map(TcpNames.MapEvents).SetMaxEntries(options.RingBytes);
            try
            {
                obj.Load();
            }
            catch (BpfException e) when (hook is TcpHook.Fentry && e.Errno is Errno.EPERM or Errno.EINVAL or Errno.ENOTSUPP or Errno.ENOENT)
            {
                throw new BpfNotSupportedException("fentry (BPF trampolines)", "5.5", "loading fentry programs", e.Errno,
                    $"fentry programs do not load ({Errno.Name(e.Errno)}: kernel lockdown, no BTF for tcp_v4_rcv, or no trampolines)");
            }
            sensor.FillFilters(options);
            if (!options.LoadOnly) sensor.Attach(options, tcTargets);
            return sensor;
        }
        catch
        {
            sensor.Dispose();
            throw;
        }
    }

    private void FillFilters(TcpSensorOptions options)
    {
        var ports = _obj.Map(TcpNames.MapPorts);
        byte one = 1;
        foreach (var p in options.Ports) ports.Update((uint)p, one);
        var src = _obj.Map(TcpNames.MapSrc);
        foreach (var k in options.Sources) src.Update(k, one);
        var dst = _obj.Map(TcpNames.MapDst);
        foreach (var k in options.Destinations) dst.Update(k, one);
    }

    private void Attach(TcpSensorOptions options, List<(int Index, string Name)> tcTargets)
    {
        // Owners first, so sockets created while the hook attaches are already tracked.
        try
        {
            _attachments.Add(_obj.Program(TcpNames.ProgSockState).Attach());
        }
        catch (BpfException e)
        {
            OwnerTrackingProblem = $"owner attribution unavailable (tp_btf/inet_sock_set_state: {FirstLine(e.Message)})";
        }

        switch (Hook)
        {
            case TcpHook.Kprobe:
                AttachKernel(p => p.AttachKprobe(Target(p)), "kprobes", "4.1");
                AttachedTo = "tcp_v4_rcv, tcp_v6_rcv (kprobe)";
                break;
            case TcpHook.Fentry:
                AttachKernel(p => p.AttachTrace(), "fentry", "5.5");
                AttachedTo = "tcp_v4_rcv, tcp_v6_rcv (fentry)";
                break;
            case TcpHook.Tc:
                var kinds = new List<string>();
                foreach (var (index, name) in tcTargets)
                {
                    var prog = _obj.Program(TcpNames.ProgTc);
                    TcAttachment a;
                    try { a = TcAttachment.AttachTcx(prog, index, TcDirection.Ingress); }
                    catch (BpfNotSupportedException) { a = TcAttachment.AttachNetlink(prog, index, TcDirection.Ingress); }
                    _attachments.Add(a);
                    kinds.Add($"{name} ({a.Kind})");
                }
                AttachedTo = "ingress of " + string.Join(", ", kinds);
                break;
            case TcpHook.Cgroup:
                var path = options.CgroupPath is null
                    ? Cgroups.FindV2Mount() ?? throw new ArgumentException("no cgroup v2 file system is mounted; use --hook tc")
                    : Cgroups.Resolve(options.CgroupPath);
                using (var dir = FileDescriptor.OpenDirectory(path, "cgroup"))
                    _attachments.Add(_obj.Program(TcpNames.ProgCgroup).AttachCgroup(dir));
                AttachedTo = $"cgroup {path} (cgroup_skb ingress)";
                break;
        }
    }

    private static string Target(BpfProgram p) => p.Name.EndsWith("v4", StringComparison.Ordinal) ? "tcp_v4_rcv" : "tcp_v6_rcv";

    private void AttachKernel(Func<BpfProgram, BpfLink> attach, string feature, string minKernel)
    {
        foreach (var name in ProgramsOf(Hook))
        {
            var prog = _obj.Program(name);
            try { _attachments.Add(attach(prog)); }
            catch (BpfException e) when (e is not BpfPermissionException || Hook == TcpHook.Kprobe)
            {
                // ENOENT from a kprobe: no kprobe PMU (CONFIG_KPROBES off) or the symbol is not probeable.
                throw new BpfNotSupportedException(feature, minKernel, $"attaching {name}", e.Errno,
                    $"{feature} unavailable (attaching to {Target(prog)} failed with {Errno.Name(e.Errno)})");
            }
        }
    }

    /// <summary>The event ring. One reader per sensor.</summary>
    public RingBufferReader Reader => _reader ??= new RingBufferReader(_obj.Map(TcpNames.MapEvents));

    /// <summary>Kernel counters summed over CPUs, indexed by <see cref="TcpStat"/>.</summary>
    public ulong[] ReadCounters() => _obj.Map(TcpNames.MapStats).SumPerCpuCounters(0, (int)TcpStat.Count);

    /// <summary>Snapshot of the flows: the flow map plus each CPU's not yet flushed slot.</summary>
    public List<(FlowKey Key, FlowValue Value)> ReadFlows(int max = 65536)
    {
        var map = _obj.Map(TcpNames.MapFlows);
        var result = new List<(FlowKey, FlowValue)>();
        foreach (var key in map.Keys<FlowKey>(max))
            if (map.TryLookup(key, out FlowValue v)) result.Add((key, v));
        var slots = new FlowPending[BpfMap.PossibleCpus];
        _obj.Map(TcpNames.MapFlowSlots).LookupPerCpu(0u, MemoryMarshal.AsBytes(slots.AsSpan()));
        FlowSlots.Merge(result, slots);
        return result;
    }

    /// <summary>Now, in the clock of flow times (FlowValue.FirstJiffies/LastJiffies; the tick rate is
    /// <see cref="KernelTick.Hz"/>): runs the never attached clock program, which reads the kernel's jiffies.</summary>
    public ulong ReadJiffies()
    {
        Span<byte> context = stackalloc byte[SkBuffContextBytes];
        context.Clear();
        Span<byte> contextOut = stackalloc byte[SkBuffContextBytes];
        ProgramTestRun.Run(_obj.Program(TcpNames.ProgClock), ClockFrame, 1, context, contextOut);
        // cb[0] and cb[1] of struct __sk_buff (offset 48): the low and high half of jiffies.
        ulong jiffies = BinaryPrimitives.ReadUInt32LittleEndian(contextOut[48..]) |
                        (ulong)BinaryPrimitives.ReadUInt32LittleEndian(contextOut[52..]) << 32;
        return jiffies;
    }

    /// <summary>Larger than struct __sk_buff on any kernel (192 bytes in 6.x); the kernel checks the rest is zero.</summary>
    private const int SkBuffContextBytes = 256;

    /// <summary>The smallest frame BPF_PROG_TEST_RUN takes for a TC program: an Ethernet header.</summary>
    private static readonly byte[] ClockFrame = new byte[14];

    /// <summary>Records the owner of a socket that existed before the sensor started
    /// (a listener has a zero remote port and is counted for its local port).</summary>
    public bool SeedOwner(in FlowKey key, in Owner owner)
    {
        if (!_obj.Map(TcpNames.MapOwners).TryInsert(key, owner)) return false;
        if (key.Rport == 0)
        {
            var listeners = _obj.Map(TcpNames.MapListeners);
            uint port = key.Lport;
            listeners.TryLookup(port, out uint count);
            listeners.Update(port, count + 1);
        }
        return true;
    }

    public BpfProgram Program(string name) => _obj.Program(name);

    public void Dispose()
    {
        // Teardown order: readers → links → object.
        _reader?.Dispose();
        foreach (var a in Enumerable.Reverse(_attachments)) a.Dispose();
        _attachments.Clear();
        _obj.Dispose();
    }
}
