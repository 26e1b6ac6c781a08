using System.Runtime.InteropServices;
using Vigil.Interop.Native;

namespace Vigil.Interop;

/// <summary>The identity of a file as the kernel sees it: device, inode and (where the file system
/// reports one) the inode generation. The device is the superblock's (<c>inode->i_sb->s_dev</c>, what the
/// guard reads from <c>mm->exe_file</c>), which is not always stat's st_dev: overlayfs without xino reports
/// a per-layer pseudo device and btrfs a per-subvolume one.</summary>
public readonly record struct FileIdentityInfo(string ResolvedPath, uint DevMajor, uint DevMinor, ulong Inode, uint Mode, uint? Generation)
{
    public bool IsRegularFile => (Mode & 0xF000) == 0x8000;
    public bool IsExecutable => (Mode & 0x49) != 0; // any x bit (0111)
}

public static unsafe partial class FileIdentity
{
    /// <summary>statx(2) of <paramref name="path"/> with symbolic links followed; null and the errno text when it fails.
    /// The device comes from the file's mount in <paramref name="mountInfo"/> (the mount namespace the path was
    /// resolved in: /proc/PID/mountinfo for /proc/PID/exe), else from statx's st_dev.</summary>
    public static FileIdentityInfo? Read(string path, out string? problem, string mountInfo = "/proc/self/mountinfo")
    {
        problem = null;
        const int AT_FDCWD = -100, STATX_BASIC_STATS = 0x7ff, STATX_MNT_ID = 0x1000;
        var buf = stackalloc byte[256];
        if (statx(AT_FDCWD, path, 0, STATX_BASIC_STATS | STATX_MNT_ID, buf) != 0)
        {
            problem = Errno.Describe(Marshal.GetLastSystemError());
            return null;
        }
        uint mask = *(uint*)buf;
        ushort mode = *(ushort*)(buf + 28);
        ulong ino = *(ulong*)(buf + 32);
        uint major = *(uint*)(buf + 136), minor = *(uint*)(buf + 140);
        if ((mask & STATX_MNT_ID) != 0 && SuperblockDev(mountInfo, *(ulong*)(buf + 144)) is { } sb)
            (major, minor) = sb;
        return new FileIdentityInfo(RealPath(path) ?? path, major, minor, ino, mode, ReadGeneration(path));
    }

    /// <summary>The "major:minor" of mount <paramref name="mountId"/> in a mountinfo file: the kernel prints
    /// the superblock's s_dev there. Null when the mount is not listed (another namespace) or unreadable.</summary>
    private static (uint, uint)? SuperblockDev(string mountInfo, ulong mountId)
    {
        try
        {
            var id = mountId.ToString(System.Globalization.CultureInfo.InvariantCulture) + " ";
            foreach (var line in File.ReadLines(mountInfo))
            {
                if (!line.StartsWith(id, StringComparison.Ordinal)) continue;
                var dev = line.Split(' ', 4)[2].Split(':');
                return (uint.Parse(dev[0], System.Globalization.CultureInfo.InvariantCulture), uint.Parse(dev[1], System.Globalization.CultureInfo.InvariantCulture));
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException) { }
        return null;
    }

    /// <summary>FS_IOC_GETVERSION: the inode generation (ext4, xfs, ...); null where the file system has none.</summary>
    private static uint? ReadGeneration(string path)
    {
        const ulong FS_IOC_GETVERSION = 0x80087601;
        int fd = Libc.open(path, Libc.O_RDONLY | Libc.O_CLOEXEC);
        if (fd < 0) return null;
        try
        {
            long generation = 0;
            return ioctl(fd, FS_IOC_GETVERSION, &generation) == 0 ? (uint)generation : null;
        }
        finally
        {
            Libc.close(fd);
        }
    }

    private static string? RealPath(string path)
    {
        nint p = realpath(path, 0);
        if (p == 0) return null;
        try { return Marshal.PtrToStringUTF8(p); }
        finally { free(p); }
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int statx(int dirfd, string path, int flags, uint mask, byte* buf);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int ioctl(int fd, ulong request, long* arg);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint realpath(string path, nint resolved);

    [LibraryImport("libc")]
    private static partial void free(nint p);
}
