using System.Runtime.InteropServices;
using Vigil.Interop.Native;

namespace Vigil.Interop;

/// <summary>The identity of a file as the kernel sees it: device, inode and (where the file system
/// reports one) the inode generation.</summary>
public readonly record struct FileIdentityInfo(string ResolvedPath, uint DevMajor, uint DevMinor, ulong Inode, uint Mode, uint? Generation)
{
    public bool IsRegularFile => (Mode & 0xF000) == 0x8000;
    public bool IsExecutable => (Mode & 0x49) != 0; // any x bit (0111)
}

public static unsafe partial class FileIdentity
{
    /// <summary>statx(2) of <paramref name="path"/> with symbolic links followed; null and the errno text when it fails.</summary>
    public static FileIdentityInfo? Read(string path, out string? problem)
    {
        problem = null;
        const int AT_FDCWD = -100, STATX_BASIC_STATS = 0x7ff;
        var buf = stackalloc byte[256];
        if (statx(AT_FDCWD, path, 0, STATX_BASIC_STATS, buf) != 0)
        {
            problem = Errno.Describe(Marshal.GetLastSystemError());
            return null;
        }
        ushort mode = *(ushort*)(buf + 28);
        ulong ino = *(ulong*)(buf + 32);
        uint major = *(uint*)(buf + 136), minor = *(uint*)(buf + 140);
        return new FileIdentityInfo(RealPath(path) ?? path, major, minor, ino, mode, ReadGeneration(path));
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
