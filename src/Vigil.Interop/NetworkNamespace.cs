using System.Runtime.InteropServices;


namespace Vigil.Interop;

/// <summary>Network-namespace helpers. setns() is per thread: callers run namespace work on a
/// dedicated thread (see <see cref="RunIn{T}"/>) and never await inside it.</summary>
public static partial class NetworkNamespace
{
    /// <summary>Inode number of the calling thread's network namespace.</summary>
    public static uint CurrentInode()
    {
        var target = new FileInfo("/proc/thread-self/ns/net").LinkTarget ?? "";
        // "net:[4026531840]"
        int open = target.IndexOf('['), close = target.IndexOf(']');
        return open >= 0 && close > open ? uint.Parse(target.AsSpan(open + 1, close - open - 1)) : 0;
    }

    /// <summary>Path of a named namespace as `ip netns add` creates it.</summary>
    public static string PathOf(string name) => Path.Combine("/var/run/netns", name);

    /// <summary>Runs <paramref name="work"/> on a new thread that has entered the named namespace.
    /// The thread stays in the namespace until <paramref name="work"/> returns.</summary>
    public static T RunIn<T>(string? name, Func<T> work)
    {
        if (name is null) return work();
        var path = PathOf(name);
        if (!File.Exists(path))
            throw new ArgumentException($"network namespace '{name}' does not exist ({path} is missing; see `ip netns list`)");
        T result = default!;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                Enter(path);
                result = work();
            }
            catch (Exception e) { error = e; }
        }) { Name = $"netns {name}" };
        thread.Start();
        thread.Join();
        if (error is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        return result;
    }

    /// <summary>Moves the calling thread into the namespace at <paramref name="path"/> (needs CAP_SYS_ADMIN).</summary>
    public static void Enter(string path)
    {
        using var fd = FileDescriptor.OpenReadOnly(path, "network namespace");
        if (setns(fd.Value, CLONE_NEWNET) < 0)
        {
            int errno = Marshal.GetLastSystemError();
            throw errno == Errno.EPERM
                ? new BpfPermissionException($"entering network namespace {path}", errno, "CAP_SYS_ADMIN (setns into another namespace)")
                : Errno.FromErrno($"entering network namespace {path}", errno);
        }
    }

    /// <summary>Interfaces of the calling thread's namespace (netlink is per namespace; /sys may not be).</summary>
    public static unsafe IReadOnlyList<(int Index, string Name)> Interfaces()
    {
        var list = new List<(int, string)>();
        IfNameIndex* ni = if_nameindex();
        if (ni == null) return list;
        try
        {
            for (var p = ni; p->Index != 0; p++)
                list.Add(((int)p->Index, Marshal.PtrToStringUTF8(p->Name) ?? ""));
        }
        finally { if_freenameindex(ni); }
        return list;
    }

    /// <summary>ARPHRD_* link type of an interface of the calling thread's namespace (SIOCGIFHWADDR: the
    /// hardware address family), e.g. 1 Ethernet, 772 loopback, 65534 none (tun, WireGuard).</summary>
    public static unsafe ushort LinkType(string name)
    {
        var nameBytes = System.Text.Encoding.UTF8.GetBytes(name);
        if (nameBytes.Length >= 16) throw new ArgumentException($"interface name '{name}' is longer than 15 bytes");
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0) throw Errno.FromErrno("opening a socket to query interfaces", Marshal.GetLastSystemError());
        using var owned = new FileDescriptor(fd);
        // struct ifreq: char ifr_name[16], then the union; ifr_hwaddr.sa_family is its first field.
        var ifreq = stackalloc byte[40];
        new Span<byte>(ifreq, 40).Clear();
        nameBytes.CopyTo(new Span<byte>(ifreq, 16));
        if (ioctl(fd, SIOCGIFHWADDR, ifreq) < 0)
            throw Errno.FromErrno($"reading the link type of interface {name}", Marshal.GetLastSystemError());
        return *(ushort*)(ifreq + 16);
    }

    private const int AF_INET = 2, SOCK_DGRAM = 2, SOCK_CLOEXEC = 0x80000;
    private const ulong SIOCGIFHWADDR = 0x8927;
    [LibraryImport("libc", SetLastError = true)] private static partial int socket(int domain, int type, int protocol);
    [LibraryImport("libc", SetLastError = true)] private static unsafe partial int ioctl(int fd, ulong request, byte* arg);

    private const int CLONE_NEWNET = 0x40000000;

    [StructLayout(LayoutKind.Sequential)]
    private struct IfNameIndex { public uint Index; public nint Name; }

    [LibraryImport("libc", SetLastError = true)] private static partial int setns(int fd, int nstype);
    [LibraryImport("libc")] private static unsafe partial IfNameIndex* if_nameindex();
    [LibraryImport("libc")] private static unsafe partial void if_freenameindex(IfNameIndex* p);
}
