using Vigil.Interop;
using Vigil.Interop.Bpf;
using Vigil.Wire;

namespace Vigil.Sensors.Guard;

/// <summary>The guard's pin directory on a bpffs: one pin per map (named as the map) and per link
/// (<c>link_</c> + program name). Nothing else is ever unpinned or detached: a directory Vigil did not
/// make holds no names Vigil would touch. Two locks (flock on directories, so they go with the process
/// however it ends): the directory itself while a guard runs with it — one agent per directory — and
/// its <c>reload</c> subdirectory during a policy swap, which `vigil policy apply` takes as well.</summary>
public sealed class GuardPins : IDisposable
{
    private const string LinkPrefix = "link_";
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

    /// <summary>The pinned links by program name.</summary>
    public IEnumerable<(string Program, string Path)> Links() =>
        GuardNames.Programs.Select(p => (p, LinkPath(p))).Where(l => File.Exists(l.Item2));

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
