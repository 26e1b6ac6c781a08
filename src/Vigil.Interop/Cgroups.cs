namespace Vigil.Interop;

/// <summary>cgroup v2 file-system helpers. The mount point differs between distributions
/// (unified vs hybrid layout), so it is read from /proc/mounts, never assumed.</summary>
public static class Cgroups
{
    public static string? FindV2Mount(string mounts = "/proc/mounts")
    {
        foreach (var line in File.ReadLines(mounts))
        {
            var f = line.Split(' ');
            if (f.Length > 2 && f[2] == "cgroup2") return f[1];
        }
        return null;
    }

    /// <summary>Resolves a cgroup given as an absolute path or relative to the v2 mount.</summary>
    public static string Resolve(string path)
    {
        var mount = FindV2Mount() ?? throw new ArgumentException("no cgroup v2 file system is mounted (see /proc/mounts)");
        var full = path.StartsWith(mount, StringComparison.Ordinal) ? path : Path.Combine(mount, path.TrimStart('/'));
        if (!Directory.Exists(full)) throw new ArgumentException($"cgroup '{path}' does not exist ({full})");
        return full;
    }

    /// <summary>The cgroup id the kernel reports (bpf_get_current_cgroup_id) is the directory's inode number.</summary>
    public static ulong IdOf(string directory) => StatInode(directory);

    // struct stat of x86-64 (.NET has no inode API).
    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int stat(string path, out StatBuf buf);

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct StatBuf
    {
        public ulong Dev, Ino, Nlink;
        public uint Mode, Uid, Gid, Pad0;
        public ulong Rdev;
        public long Size, Blksize, Blocks;
        public long Atime, AtimeNs, Mtime, MtimeNs, Ctime, CtimeNs;
        public long R1, R2, R3;
    }

    internal static ulong StatInode(string path) =>
        stat(path, out var st) == 0 ? st.Ino : throw new IOException($"stat {path}: {Errno.Describe(System.Runtime.InteropServices.Marshal.GetLastSystemError())}");
}
