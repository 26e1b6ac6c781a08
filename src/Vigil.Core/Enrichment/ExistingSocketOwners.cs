using Vigil.Core.Tcp;
using Vigil.Wire;

namespace Vigil.Core.Enrichment;

/// <summary>Owners of TCP sockets that existed before the sensor started (the kernel tracker only
/// sees listen()/connect() calls made afterwards). Read from /proc like ss(8) does: the socket
/// tables of the calling thread's network namespace, matched to processes by socket inode.
/// Without CAP_SYS_PTRACE only the caller's own processes are visible: others stay unknown.</summary>
public static class ExistingSocketOwners
{
    public readonly record struct Entry(FlowKey Key, Owner Owner);

    /// <summary>Reads sockets in LISTEN and ESTABLISHED state with their owning process.
    /// <paramref name="cgroupMount"/> is the cgroup v2 mount (null: no cgroup ids);
    /// <paramref name="cgroupId"/> maps a cgroup directory to its id (its inode number).</summary>
    public static List<Entry> Read(uint netnsIno, string? cgroupMount, Func<string, ulong> cgroupId)
    {
        var sockets = new List<(FlowKey Key, ulong Inode, uint Uid)>();
        foreach (var (file, v6) in new[] { ("/proc/thread-self/net/tcp", false), ("/proc/thread-self/net/tcp6", true) })
        {
            if (!File.Exists(file)) continue;
            foreach (var line in File.ReadLines(file).Skip(1))
                if (ProcNetTcp.TryParseLine(line, v6, netnsIno, out var key, out var inode, out var uid))
                    sockets.Add((key, inode, uid));
        }
        if (sockets.Count == 0) return [];
        var owners = ProcessesBySocketInode(sockets.Select(s => s.Inode).ToHashSet(), cgroupMount, cgroupId);
        var result = new List<Entry>();
        foreach (var (key, inode, _) in sockets)
            if (owners.TryGetValue(inode, out var owner)) result.Add(new Entry(key, owner));
        return result;
    }

    private static Dictionary<ulong, Owner> ProcessesBySocketInode(HashSet<ulong> wanted, string? cgroupMount, Func<string, ulong> cgroupId)
    {
        var result = new Dictionary<ulong, Owner>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!uint.TryParse(Path.GetFileName(dir), out var pid)) continue;
            string[] fds;
            try { fds = Directory.GetFiles(Path.Combine(dir, "fd")); }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException) { continue; }
            Owner? owner = null;
            foreach (var fd in fds)
            {
                string? target;
                try { target = new FileInfo(fd).LinkTarget; } // raw text, e.g. "socket:[1234]"
                catch (Exception e) when (e is UnauthorizedAccessException or IOException) { continue; }
                if (target is null || !target.StartsWith("socket:[", StringComparison.Ordinal)) continue;
                if (!ulong.TryParse(target.AsSpan(8, target.Length - 9), out var inode) || !wanted.Contains(inode)) continue;
                if (result.ContainsKey(inode)) continue; // shared socket: first (lowest) pid wins
                owner ??= ReadOwner(dir, pid, cgroupMount, cgroupId);
                if (owner is { } o) result[inode] = o;
            }
        }
        return result;
    }

    private static unsafe Owner? ReadOwner(string dir, uint pid, string? cgroupMount, Func<string, ulong> cgroupId)
    {
        try
        {
            var o = new Owner { Pid = pid, Known = 1 };
            var comm = File.ReadAllText(Path.Combine(dir, "comm")).TrimEnd('\n');
            var bytes = System.Text.Encoding.UTF8.GetBytes(comm);
            for (int i = 0; i < Math.Min(bytes.Length, 15); i++) o.Comm[i] = bytes[i];
            foreach (var line in File.ReadLines(Path.Combine(dir, "status")))
            {
                // "Uid:\treal\teffective\tsaved\tfs": the kernel tracker's bpf_get_current_uid_gid() reports the real ids.
                if (line.StartsWith("Uid:", StringComparison.Ordinal)) o.Uid = uint.Parse(line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1]);
                else if (line.StartsWith("Gid:", StringComparison.Ordinal)) o.Gid = uint.Parse(line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1]);
            }
            if (cgroupMount is not null)
                foreach (var line in File.ReadLines(Path.Combine(dir, "cgroup")))
                    if (line.StartsWith("0::", StringComparison.Ordinal))
                    {
                        var path = Path.Combine(cgroupMount, line[3..].TrimStart('/'));
                        try { o.CgroupId = cgroupId(path); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // cgroup gone meanwhile
                    }
            return o;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { return null; }
    }
}
