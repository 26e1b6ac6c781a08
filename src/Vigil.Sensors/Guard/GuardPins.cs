using Vigil.Interop;
using Vigil.Interop.Bpf;
using Vigil.Wire;

namespace Vigil.Sensors.Guard;

/// <summary>The guard's pin directory on a bpffs: one pin per map (named as the map) and per link
/// (<c>link_</c> + program name for the cgroup enforcer; <c>link_tc_NETNS_IFINDEX</c> for a TCX link of the TC
/// enforcer, or <c>prog_tc_NETNS_IFINDEX</c> for the program of its netlink filter, which is not a link: the
/// filter stays on its own and is found again by Vigil's handle and priority and that program's id).
/// Nothing else is ever unpinned or detached: a directory Vigil did not make holds no names Vigil would
/// touch, and a netlink filter is removed only while it still runs the program pinned here. Two locks (flock on directories, so they go with the process
/// however it ends): the directory itself while a guard runs with it — one agent per directory — and
/// its <c>reload</c> subdirectory during a policy swap, which `vigil policy apply` takes as well.</summary>
public sealed class GuardPins : IDisposable
{
    private const string LinkPrefix = "link_";
    private const string TcLinkPrefix = "link_tc_";
    private const string TcProgramPrefix = "prog_tc_";
    /// <summary>Handle and priority of the TC enforcer's netlink filters (kernels before 6.6). Priority 1: the
    /// filter runs before filters of higher numbers, which could accept the packet first.</summary>
    public const uint TcFilterHandle = 0x56494731, TcFilterPriority = 1; // "VIG1"
    private const string ReloadLock = "reload";
    private readonly FileDescriptor? _instanceLock;

    public string Directory { get; }
    /// <summary>True when pins existed when this process took the directory: it adopts a guard.</summary>
    public bool Adopted { get; }

    private GuardPins(string directory, FileDescriptor? instanceLock)
    {
        Directory = directory;
        _instanceLock = instanceLock;
        Adopted = Exists(directory);
    }

    /// <summary>The default pin directory: vigil/guard on the bpffs at /sys/fs/bpf (or wherever one is
    /// mounted); null when no bpffs is mounted.</summary>
    public static string? DefaultDirectory() => BpfFs.FindMount() is { } mount ? Path.Combine(mount, "vigil", "guard") : null;

    /// <summary>True when <paramref name="directory"/> holds a pinned guard (its state map is pinned).</summary>
    public static bool Exists(string directory) => File.Exists(Path.Combine(directory, GuardNames.MapState));

    /// <summary>Takes the directory for a running guard: creates it, and fails when another process holds it.</summary>
    public static GuardPins Take(string directory)
    {
        directory = Path.GetFullPath(directory);
        if (!BpfFs.IsOnBpffs(directory))
            throw new ArgumentException($"the pin directory {directory} is not on a bpf file system (mount -t bpf bpf /sys/fs/bpf, or pass --pin-dir on one)");
        System.IO.Directory.CreateDirectory(directory);
        System.IO.Directory.CreateDirectory(Path.Combine(directory, ReloadLock));
        var fd = FileDescriptor.OpenDirectory(directory, "guard pin directory");
        if (!fd.TryLockExclusive())
        {
            fd.Dispose();
            throw new InvalidOperationException($"another vigil is guarding with {directory}: stop it first (one guard per pin directory)");
        }
        return new GuardPins(directory, fd);
    }

    /// <summary>Opens a pinned guard for reading or a policy swap by another process (`vigil guard status`,
    /// `vigil policy apply`): no instance lock.</summary>
    public static GuardPins Open(string directory)
    {
        directory = Path.GetFullPath(directory);
        if (!Exists(directory))
            throw new ArgumentException($"no guard is pinned in {directory} (start one with `vigil watch guard`; an audit-only guard is unpinned when it stops)");
        return new GuardPins(directory, null);
    }

    /// <summary>True when a running guard holds the directory.</summary>
    public bool AgentRunning()
    {
        if (_instanceLock is not null) return true;
        using var fd = FileDescriptor.OpenDirectory(Directory, "guard pin directory");
        if (!fd.TryLockExclusive()) return true;
        fd.Unlock();
        return false;
    }

    /// <summary>Serialises policy swaps between the agent and `vigil policy apply`.</summary>
    public FileDescriptor LockReload()
    {
        var fd = FileDescriptor.OpenDirectory(Path.Combine(Directory, ReloadLock), "guard reload lock");
        if (!fd.LockExclusive(TimeSpan.FromSeconds(10)))
        {
            fd.Dispose();
            throw new TimeoutException($"another policy swap on {Directory} has not finished in 10 s");
        }
        return fd;
    }

    private string MapPath(string map) => Path.Combine(Directory, map);
    private string LinkPath(string program) => Path.Combine(Directory, LinkPrefix + program);

    /// <summary>Before load: every map that is pinned is used instead of a new one, once it is checked to
    /// have this object's definition (a guard of another Vigil version must be removed first).</summary>
    public void ReuseMaps(BpfObject obj)
    {
        foreach (var name in GuardNames.Maps)
        {
            var path = MapPath(name);
            if (!File.Exists(path)) continue;
            var map = obj.Map(name);
            using var fd = BpfFs.Get(path);
            var info = BpfFs.MapInfo(fd.Value);
            // The ring's size is an option: the pinned ring keeps its own. Everything else must agree.
            bool sameSize = name == GuardNames.MapEvents || info.MaxEntries == map.MaxEntries;
            if (info.KeySize != map.KeySize || info.ValueSize != map.ValueSize || !sameSize)
                throw new InvalidOperationException(
                    $"the pinned map {path} (key {info.KeySize} B, value {info.ValueSize} B, {info.MaxEntries} entries) is not this guard's " +
                    $"(key {map.KeySize} B, value {map.ValueSize} B, {map.MaxEntries} entries): it comes from another Vigil version; " +
                    $"`vigil guard remove --pin-dir {Directory}` first");
            map.ReuseFd(fd);
        }
    }

    /// <summary>After load: pins every map not pinned yet.</summary>
    public void PinMaps(BpfObject obj)
    {
        foreach (var name in GuardNames.Maps)
            if (!File.Exists(MapPath(name))) obj.Map(name).Pin(MapPath(name));
    }

    public BpfLink? OpenLink(string program) =>
        File.Exists(LinkPath(program)) ? BpfLink.OpenPinned(LinkPath(program)) : null;

    public void PinLink(string program, BpfLink link) => link.Pin(LinkPath(program));

    /// <summary>The cgroup enforcer's pinned links by program name.</summary>
    public IEnumerable<(string Program, string Path)> Links() =>
        GuardNames.CgroupPrograms.Select(p => (p, LinkPath(p))).Where(l => File.Exists(l.Item2));

    /// <summary>An interface the TC enforcer guards, named as the kernel does: the inode of its network
    /// namespace (ifindexes are per namespace) and its ifindex.</summary>
    public readonly record struct TcPin(uint Netns, int Ifindex)
    {
        public override string ToString() => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Netns}_{Ifindex}");
        public bool InThisNamespace => Netns == NetworkNamespace.CurrentInode();
    }

    private string TcLinkPath(TcPin pin) => Path.Combine(Directory, TcLinkPrefix + pin);
    private string TcProgramPath(TcPin pin) => Path.Combine(Directory, TcProgramPrefix + pin);

    /// <summary>Interfaces the TC enforcer pinned a hook for (a TCX link or a netlink filter's program).</summary>
    public IReadOnlyList<TcPin> TcInterfaces()
    {
        var pins = new SortedSet<(uint, int)>();
        foreach (var name in System.IO.Directory.EnumerateFiles(Directory).Select(Path.GetFileName))
        {
            var rest = name!.StartsWith(TcLinkPrefix, StringComparison.Ordinal) ? name[TcLinkPrefix.Length..]
                     : name.StartsWith(TcProgramPrefix, StringComparison.Ordinal) ? name[TcProgramPrefix.Length..] : null;
            var parts = rest?.Split('_');
            if (parts is [var ns, var index] &&
                uint.TryParse(ns, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out uint netns) &&
                int.TryParse(index, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int ifindex))
                pins.Add((netns, ifindex));
        }
        return pins.Select(p => new TcPin(p.Item1, p.Item2)).ToList();
    }

    public BpfLink? OpenTcLink(TcPin pin) =>
        File.Exists(TcLinkPath(pin)) ? BpfLink.OpenPinned(TcLinkPath(pin)) : null;

    public void PinTcLink(TcPin pin, TcAttachment link) => link.Pin(TcLinkPath(pin));

    /// <summary>The id of the program pinned for the netlink filter on the interface, or null.</summary>
    public uint? TcFilterProgramId(TcPin pin)
    {
        if (!File.Exists(TcProgramPath(pin))) return null;
        using var fd = BpfFs.Get(TcProgramPath(pin));
        return BpfFs.ProgramId(fd.Value);
    }

    /// <summary>Records <paramref name="program"/> as the one in Vigil's netlink filter on the interface.</summary>
    public void PinTcFilterProgram(TcPin pin, BpfProgram program)
    {
        File.Delete(TcProgramPath(pin));
        program.Pin(TcProgramPath(pin));
    }

    /// <summary>A TC enforcer hook as pinned: <paramref name="Attached"/> is false when the link was detached or
    /// the netlink filter no longer runs the pinned program (the interface went away, or someone replaced it);
    /// null when that cannot be seen from here (a netlink filter in another network namespace).</summary>
    public readonly record struct PinnedTcHook(TcPin Pin, string Kind, uint LinkId, uint ProgId, bool? Attached);

    public IReadOnlyList<PinnedTcHook> TcHooks()
    {
        var hooks = new List<PinnedTcHook>();
        foreach (var pin in TcInterfaces())
        {
            if (OpenTcLink(pin) is { } link)
                using (link)
                {
                    var info = link.Info();
                    hooks.Add(new PinnedTcHook(pin, "tcx", info.Id, info.ProgId, info.Ifindex == pin.Ifindex));
                }
            else if (TcFilterProgramId(pin) is { } prog)
                hooks.Add(new PinnedTcHook(pin, "netlink clsact", 0, prog, pin.InThisNamespace ? NetlinkFilterRuns(pin, prog) : null));
        }
        return hooks;
    }

    private static bool NetlinkFilterRuns(TcPin pin, uint prog) =>
        TcAttachment.NetlinkProgramId(pin.Ifindex, TcDirection.Egress, TcFilterHandle, TcFilterPriority) == prog;

    /// <summary>Detaches the TC enforcer's hook on the interface — the pinned TCX link (from any namespace), or
    /// Vigil's netlink filter if it still runs the pinned program (only from the interface's own namespace:
    /// netlink reaches no other) — and removes its pins. Returns what it detached.</summary>
    public string? RemoveTc(TcPin pin)
    {
        string? detached = null;
        if (TcFilterProgramId(pin) is { } prog)
        {
            if (!pin.InThisNamespace)
                throw new InvalidOperationException(
                    $"the guard pinned in {Directory} has a netlink TC filter in another network namespace (inode {pin.Netns}), " +
                    "which netlink cannot reach from here: run this command inside that namespace (e.g. ip netns exec NAME vigil …)");
            if (NetlinkFilterRuns(pin, prog) && TcAttachment.DetachNetlink(pin.Ifindex, TcDirection.Egress, TcFilterHandle, TcFilterPriority))
                detached = $"tc egress of ifindex {pin.Ifindex} (netlink clsact)";
            File.Delete(TcProgramPath(pin));
        }
        if (File.Exists(TcLinkPath(pin)))
        {
            using (var link = BpfLink.OpenPinned(TcLinkPath(pin)))
            {
                try { link.Detach(); detached = $"tc egress of ifindex {pin.Ifindex} (tcx)"; }
                catch (BpfException e) when (e.Errno == Errno.ENOLINK) { } // its interface was removed
            }
            File.Delete(TcLinkPath(pin));
        }
        return detached;
    }

    /// <summary>Opens the pinned maps without creating any: an object whose programs are not loaded,
    /// with every map reused from its pin.</summary>
    public BpfObject OpenMaps()
    {
        var missing = GuardNames.Maps.Where(m => !File.Exists(MapPath(m))).ToList();
        if (missing.Count > 0) throw new InvalidOperationException($"the guard pinned in {Directory} lacks {string.Join(", ", missing)}: `vigil guard remove` it");
        var obj = BpfObject.OpenMemory(EmbeddedObjects.Read(GuardNames.Object), GuardNames.Object);
        try
        {
            foreach (var p in obj.Programs) p.SetAutoload(false);
            ReuseMaps(obj);
            obj.Load();
            return obj;
        }
        catch
        {
            obj.Dispose();
            throw;
        }
    }

    /// <summary>Detaches every pinned link (BPF_LINK_DETACH: at once, whoever else holds it), then
    /// removes every pin and the directory. Returns what it detached.</summary>
    public List<string> RemoveAll()
    {
        var detached = new List<string>();
        // A TC hook this namespace cannot remove (RemoveTc throws) stops the removal before anything is detached.
        foreach (var pin in TcInterfaces().OrderBy(p => p.InThisNamespace))
            if (RemoveTc(pin) is { } tc) detached.Add(tc);
        foreach (var (program, path) in Links().ToList())
        {
            using (var link = BpfLink.OpenPinned(path))
            {
                try { link.Detach(); }
                catch (BpfException e) when (e.Errno == Errno.ENOLINK) { } // already detached (its cgroup was removed)
            }
            File.Delete(path);
            detached.Add(program);
        }
        foreach (var map in GuardNames.Maps) File.Delete(MapPath(map));
        try
        {
            System.IO.Directory.Delete(Path.Combine(Directory, ReloadLock));
            System.IO.Directory.Delete(Directory);
        }
        catch (IOException) { } // something else was put there: leave it
        return detached;
    }

    public void Dispose() => _instanceLock?.Dispose();
}
