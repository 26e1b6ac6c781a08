using System.Runtime.InteropServices;
using Vigil.Interop;
using Vigil.Interop.Bpf;
using Vigil.Wire;

namespace Vigil.Sensors.Guard;

/// <summary>The contents of the guard's policy maps (what Vigil.Core's PolicyCompiler produces), kept
/// free of Core types so the sensor depends on the wire contract only.</summary>
public sealed record GuardMapContents(
    GuardConfig Config,
    IReadOnlyList<(LpmKey Key, GuardRules Value)> Destinations,
    IReadOnlyList<(GuardPortKey Key, GuardRules Value)> Ports,
    IReadOnlyList<(GuardPrincipalKey Key, GuardAllowValue Value)> Allow);

public sealed record GuardSensorOptions
{
    /// <summary>Scope: the cgroup whose processes (and descendants) are guarded; null = the cgroup v2 root.</summary>
    public string? CgroupPath { get; init; }
    public required GuardMapContents Policy { get; init; }
    public GuardSettings Settings { get; init; } = new() { RateWindowNs = 1_000_000_000, RateBurst = 5, WakeupBytes = 16 * 1024 };
    /// <summary>Ring-buffer size in bytes (a power of two, at least a page).</summary>
    public uint RingBytes { get; init; } = 1 << 20;
    /// <summary>Load and fill the maps, attach nothing (BPF_PROG_TEST_RUN of the egress program).</summary>
    public bool LoadOnly { get; init; }
}

/// <summary>The guard (bpf/guard.bpf.c): cgroup connect4/6 and sendmsg4/6 refuse connections the policy
/// forbids with EPERM; cgroup_skb egress drops what raw sockets send to guarded destinations. Attached
/// with BPF links to one cgroup, so nothing outlives this object (pinning comes later).</summary>
public sealed class GuardSensor : IDisposable
{
    private readonly BpfObject _obj;
    private readonly List<BpfLink> _links = new();
    private RingBufferReader? _reader;
    private GuardMapContents _policy;

    public BpfObject Object => _obj;
    /// <summary>The cgroup directory the programs are attached to (empty when LoadOnly).</summary>
    public string CgroupPath { get; private set; } = "";
    /// <summary>The policy generation the kernel holds (reported in events); 1 after start, +1 per reload.</summary>
    public uint Generation { get; private set; }

    /// <summary>Hooks attached, in attach order, as named in the start-up line.</summary>
    public static readonly string[] HookNames = ["connect4", "connect6", "sendmsg4", "sendmsg6", "cgroup_skb egress"];

    private GuardSensor(BpfObject obj, GuardMapContents policy)
    {
        _obj = obj;
        _policy = policy;
    }

    public static GuardSensor Start(GuardSensorOptions options)
    {
        KernelBtf.Require();
        CheckCapacity(options.Policy);
        // Checked first because the kernel's answers mislead: without CAP_PERFMON the verifier rejects
        // bpf_get_current_task (an "unknown helper"), without CAP_NET_ADMIN loading fails with a bare EPERM.
        if (Capabilities.Current.MissingForBpf(netAdmin: true) is { Length: > 0 } missing)
            throw new BpfPermissionException("loading the guard (cgroup sock_addr and cgroup_skb programs that read the caller's credentials)",
                Errno.EPERM, missing);
        string? cgroup = null;
        if (!options.LoadOnly)
            cgroup = options.CgroupPath is null
                ? Cgroups.FindV2Mount() ?? throw new ArgumentException("no cgroup v2 file system is mounted: the guard needs cgroup v2 (see /proc/mounts)")
                : Cgroups.Resolve(options.CgroupPath);

        var obj = BpfObject.OpenMemory(EmbeddedObjects.Read(GuardNames.Object), GuardNames.Object);
        var sensor = new GuardSensor(obj, options.Policy);
        try
        {
            obj.Rodata.SetInitialValue(options.Settings);
            obj.Map(GuardNames.MapEvents).SetMaxEntries(options.RingBytes);
            obj.Load();
            sensor.Generation = 1;
            sensor.Fill(options.Policy, previous: null, generation: 1);
            if (cgroup is not null) sensor.Attach(cgroup);
            return sensor;
        }
        catch
        {
            sensor.Dispose();
            throw;
        }
    }

    /// <summary>Refuses a policy that does not fit the maps before anything is written.</summary>
    private static void CheckCapacity(GuardMapContents policy)
    {
        // Sizes of the maps in bpf/guard.bpf.c (an LPM trie and two hashes).
        Check(policy.Destinations.Count, 4096, "destination prefixes");
        Check(policy.Ports.Count, 4096, "port entries");
        Check(policy.Allow.Count, 8192, "allow entries");

        static void Check(int count, int max, string what)
        {
            if (count > max) throw new ArgumentException($"the policy compiles to {count} {what}; the guard holds at most {max}");
        }
    }

    private void Attach(string cgroup)
    {
        using var dir = FileDescriptor.OpenDirectory(cgroup, "cgroup");
        // Connect and send hooks first, the egress backstop last: a raw socket is the rarer case.
        foreach (var name in GuardNames.Programs)
            _links.Add(_obj.Program(name).AttachCgroup(dir));
        CgroupPath = cgroup;
    }

    /// <summary>Replaces the policy the kernel enforces. Capacity is checked before any map is touched;
    /// new entries are written, stale ones deleted, and the config entry — which says which rules exist
    /// — last, with a new generation. On a failure the previous policy is written back.</summary>
    public void Reload(GuardMapContents policy)
    {
        CheckCapacity(policy);
        var old = _policy;
        uint generation = Generation + 1;
        try
        {
            Fill(policy, old, generation);
        }
        catch
        {
            Fill(old, policy, Generation); // best effort: the maps hold a mix until this succeeds
            throw;
        }
        _policy = policy;
        Generation = generation;
    }

    private void Fill(GuardMapContents policy, GuardMapContents? previous, uint generation)
    {
        var dst = _obj.Map(GuardNames.MapDst);
        var ports = _obj.Map(GuardNames.MapPorts);
        var allow = _obj.Map(GuardNames.MapAllow);
        foreach (var (k, v) in policy.Allow) allow.Update(k, v);
        foreach (var (k, v) in policy.Ports) ports.Update(k, v);
        foreach (var (k, v) in policy.Destinations) dst.Update(k, v);
        if (previous is not null)
        {
            foreach (var k in previous.Allow.Select(e => e.Key).Except(policy.Allow.Select(e => e.Key))) allow.Delete(k);
            foreach (var k in previous.Ports.Select(e => e.Key).Except(policy.Ports.Select(e => e.Key))) ports.Delete(k);
            var keep = policy.Destinations.Select(e => LpmText(e.Key)).ToHashSet();
            foreach (var (k, _) in previous.Destinations)
                if (!keep.Contains(LpmText(k))) dst.Delete(k);
        }
        var config = policy.Config;
        config.Generation = generation;
        _obj.Map(GuardNames.MapConfig).Update(0u, config);
    }

    /// <summary>LpmKey has fixed buffers and no equality: compare by bytes.</summary>
    private static string LpmText(LpmKey key) =>
        Convert.ToHexString(MemoryMarshal.AsBytes(new ReadOnlySpan<LpmKey>(ref key)));

    /// <summary>The event ring. One reader per sensor.</summary>
    public RingBufferReader Reader => _reader ??= new RingBufferReader(_obj.Map(GuardNames.MapEvents));

    /// <summary>Kernel counters summed over CPUs, indexed by <see cref="GuardStat"/>.</summary>
    public ulong[] ReadCounters()
    {
        int cpus = BpfMap.PossibleCpus;
        int per = (int)GuardStat.Count * 8;
        var buf = new byte[cpus * per];
        _obj.Map(GuardNames.MapStats).LookupPerCpu(0u, buf);
        var sum = new ulong[(int)GuardStat.Count];
        for (int cpu = 0; cpu < cpus; cpu++)
        {
            var slice = MemoryMarshal.Cast<byte, ulong>(buf.AsSpan(cpu * per, per));
            for (int i = 0; i < sum.Length; i++) sum[i] += slice[i];
        }
        return sum;
    }

    public BpfProgram Program(string name) => _obj.Program(name);

    public void Dispose()
    {
        // Teardown order: reader → links (detach) → object.
        _reader?.Dispose();
        foreach (var l in Enumerable.Reverse(_links)) l.Dispose();
        _links.Clear();
        _obj.Dispose();
    }
}
