using System.Runtime.InteropServices;
using Vigil.Interop.Native;

namespace Vigil.Interop.Bpf;

/// <summary>What the kernel says of a map (the head of <c>struct bpf_map_info</c>).</summary>
public readonly record struct BpfMapInfo(uint Type, uint Id, uint KeySize, uint ValueSize, uint MaxEntries, uint Flags);

/// <summary>What the kernel says of a link: its type, ids and, for cgroup links, the cgroup and attach type;
/// for TCX links, the interface and attach type.</summary>
public readonly record struct BpfLinkInfo(uint Type, uint Id, uint ProgId, ulong CgroupId, uint AttachType, int Ifindex = 0)
{
    public const uint TypeCgroup = 3; // BPF_LINK_TYPE_CGROUP
    public const uint TypeTcx = 11;   // BPF_LINK_TYPE_TCX
}

/// <summary>The BPF file system: finding a mount, opening pinned objects, reading object info.</summary>
public static unsafe class BpfFs
{
    /// <summary>The bpffs mount to pin under: /sys/fs/bpf if it is one, else the first bpf mount in
    /// /proc/self/mounts; null when none is mounted (mounting one needs CAP_SYS_ADMIN).</summary>
    public static string? FindMount()
    {
        var mounts = File.ReadLines("/proc/self/mounts")
            .Select(l => l.Split(' '))
            .Where(f => f.Length > 2 && f[2] == "bpf")
            .Select(f => f[1].Replace("\\040", " "))
            .ToList();
        return mounts.Contains("/sys/fs/bpf") ? "/sys/fs/bpf" : mounts.FirstOrDefault();
    }

    /// <summary>True when <paramref name="path"/> lies on a bpf file system.</summary>
    public static bool IsOnBpffs(string path)
    {
        const long BpfFsMagic = 0xcafe4a11;
        var dir = path;
        while (!Directory.Exists(dir) && Path.GetDirectoryName(dir) is { Length: > 0 } parent) dir = parent;
        Libc.Statfs st;
        return Libc.statfs(dir, &st) == 0 && st.Type == BpfFsMagic;
    }

    /// <summary>Opens the object pinned at <paramref name="path"/> (BPF_OBJ_GET).</summary>
    public static FileDescriptor Get(string path)
    {
        int fd = LibBpf.bpf_obj_get(path);
        if (fd < 0) throw Errno.FromErrno($"opening the pinned BPF object {path}", -fd);
        return new FileDescriptor(fd);
    }

    public static BpfMapInfo MapInfo(int fd)
    {
        BpfMapInfoHead info = default;
        uint len = (uint)sizeof(BpfMapInfoHead);
        Errno.Check(LibBpf.bpf_obj_get_info_by_fd(fd, &info, &len), "reading map info");
        return new BpfMapInfo(info.Type, info.Id, info.KeySize, info.ValueSize, info.MaxEntries, info.MapFlags);
    }

    /// <summary>The id of the program behind <paramref name="fd"/> (the head of <c>struct bpf_prog_info</c>: type, id).</summary>
    public static uint ProgramId(int fd)
    {
        var head = stackalloc uint[2];
        uint len = 8;
        Errno.Check(LibBpf.bpf_obj_get_info_by_fd(fd, head, &len), "reading program info");
        return head[1];
    }

    public static BpfLinkInfo LinkInfo(int fd)
    {
        BpfLinkInfoHead info = default;
        uint len = (uint)sizeof(BpfLinkInfoHead);
        Errno.Check(LibBpf.bpf_obj_get_info_by_fd(fd, &info, &len), "reading link info");
        // The type-specific part is a union: tcx { __u32 ifindex; __u32 attach_type; } where cgroup has
        // { __u64 cgroup_id; __u32 attach_type; }.
        if (info.Type == BpfLinkInfo.TypeTcx)
            return new BpfLinkInfo(info.Type, info.Id, info.ProgId, 0, (uint)(info.CgroupId >> 32), (int)(uint)info.CgroupId);
        return new BpfLinkInfo(info.Type, info.Id, info.ProgId, info.CgroupId, info.AttachType);
    }
}
