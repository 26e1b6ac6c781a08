using System.Globalization;
using Vigil.Interop;
using Vigil.Wire;

namespace Vigil.Sensors.Tcp;

/// <summary>Owners of TCP sockets that existed before the sensor started (the kernel tracker only
/// sees listen()/connect() calls made afterwards). Read from /proc like ss(8) does: the socket
/// tables of the calling thread's network namespace, matched to processes by socket inode.
/// Without CAP_SYS_PTRACE only the caller's own processes are visible: others stay unknown.</summary>
public static class ExistingSocketOwners
{
    private const string Listen = "0A", Established = "01";

    public readonly record struct Entry(FlowKey Key, Owner Owner);

    /// <summary>Reads sockets in LISTEN and ESTABLISHED state with their owning process.</summary>
    public static List<Entry> Read(uint netnsIno)
    {
        var sockets = new List<(FlowKey Key, ulong Inode, uint Uid)>();
        foreach (var (file, v6) in new[] { ("/proc/thread-self/net/tcp", false), ("/proc/thread-self/net/tcp6", true) })
        {
            if (!File.Exists(file)) continue;
            foreach (var line in File.ReadLines(file).Skip(1))
                if (TryParseLine(line, v6, netnsIno, out var key, out var inode, out var uid))
                    sockets.Add((key, inode, uid));
        }
        if (sockets.Count == 0) return [];
        var owners = ProcessesBySocketInode(sockets.Select(s => s.Inode).ToHashSet());
        var result = new List<Entry>();
        foreach (var (key, inode, _) in sockets)
            if (owners.TryGetValue(inode, out var owner)) result.Add(new Entry(key, owner));
        return result;
    }

    /// <summary>Parses one line of /proc/net/tcp{,6}. Listeners get a zero remote side;
    /// wildcard local addresses become all-zero, as the kernel tracker stores them.</summary>
    public static unsafe bool TryParseLine(string line, bool v6, uint netnsIno, out FlowKey key, out ulong inode, out uint uid)
    {
        key = default;
        inode = 0;
        uid = 0;
        var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (f.Length < 10) return false;
        string state = f[3];
        if (state != Listen && state != Established) return false;
        if (!ParseEndpoint(f[1], v6, out var laddr, out var lport) || !ParseEndpoint(f[2], v6, out var raddr, out var rport))
            return false;
        if (!uint.TryParse(f[7], out uid) || !ulong.TryParse(f[9], out inode) || inode == 0) return false;
        bool listener = state == Listen;
        if (laddr.AsSpan().IndexOfAnyExcept((byte)0) < 0 || IsMappedAny(laddr)) laddr = new byte[16];
        for (int i = 0; i < 16; i++)
        {
            key.Laddr[i] = laddr[i];
            key.Raddr[i] = listener ? (byte)0 : raddr[i];
        }
        key.Lport = lport;
        key.Rport = listener ? (ushort)0 : rport;
        key.NetnsIno = netnsIno;
        return true;
    }

    private static bool IsMappedAny(byte[] a) => a[10] == 0xff && a[11] == 0xff && a.AsSpan(12).IndexOfAnyExcept((byte)0) < 0;

    // "0100007F:1F90" (IPv4: one 32-bit word in host order) or 32 hex digits (IPv6: four words).
    private static bool ParseEndpoint(string text, bool v6, out byte[] addr, out ushort port)
    {
        addr = new byte[16];
        port = 0;
        int colon = text.IndexOf(':');
        if (colon < 0 || !ushort.TryParse(text.AsSpan(colon + 1), NumberStyles.HexNumber, null, out port)) return false;
        var hex = text.AsSpan(0, colon);
        if (v6 ? hex.Length != 32 : hex.Length != 8) return false;
        Span<byte> raw = stackalloc byte[16];
        int words = hex.Length / 8;
        for (int w = 0; w < words; w++)
        {
            if (!uint.TryParse(hex.Slice(w * 8, 8), NumberStyles.HexNumber, null, out var word)) return false;
            BitConverter.TryWriteBytes(raw.Slice(w * 4, 4), word); // host (little-endian) order = memory order
        }
        if (v6) raw.CopyTo(addr);
        else
        {
            addr[10] = 0xff;
            addr[11] = 0xff;
            raw[..4].CopyTo(addr.AsSpan(12));
        }
        return true;
    }

    private static Dictionary<ulong, Owner> ProcessesBySocketInode(HashSet<ulong> wanted)
    {
        var result = new Dictionary<ulong, Owner>();
        string? cgroupMount = Cgroups.FindV2Mount();
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
                owner ??= ReadOwner(dir, pid, cgroupMount);
                if (owner is { } o) result[inode] = o;
            }
        }
        return result;
    }

    private static unsafe Owner? ReadOwner(string dir, uint pid, string? cgroupMount)
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
                        try { o.CgroupId = Cgroups.IdOf(path); } catch (BpfException) { }
                    }
            return o;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { return null; }
    }
}
