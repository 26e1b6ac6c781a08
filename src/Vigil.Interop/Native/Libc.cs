using System.Runtime.InteropServices;

namespace Vigil.Interop.Native;

/// <summary>libc calls the interop layer needs (mmap, epoll, raw bpf(), namespaces).</summary>
internal static unsafe partial class Libc
{
    private const string Library = "libc";

    public const int PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1;
    public const int EPOLLIN = 1, EPOLL_CTL_ADD = 1, EPOLL_CLOEXEC = 0x80000;
    public const int O_RDONLY = 0, O_CLOEXEC = 0x80000, O_DIRECTORY = 0x10000;
    public const long SYS_bpf = 321, SYS_setns = 308;
    public const int CLONE_NEWNET = 0x40000000;
    public const int CLOCK_MONOTONIC_COARSE = 6;
    public static readonly nint MAP_FAILED = -1;

    [LibraryImport(Library, SetLastError = true)] public static partial nint mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);
    [LibraryImport(Library, SetLastError = true)] public static partial int munmap(nint addr, nuint length);
    [LibraryImport(Library, SetLastError = true)] public static partial int epoll_create1(int flags);
    [LibraryImport(Library, SetLastError = true)] public static partial int epoll_ctl(int epfd, int op, int fd, EpollEvent* ev);
    [LibraryImport(Library, SetLastError = true)] public static partial int epoll_wait(int epfd, EpollEvent* events, int maxEvents, int timeoutMs);
    [LibraryImport(Library, SetLastError = true)] public static partial int close(int fd);
    [LibraryImport(Library, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)] public static partial int open(string path, int flags);
    [LibraryImport(Library, SetLastError = true)] public static partial long syscall(long number, long a1, long a2, long a3);
    [LibraryImport(Library, SetLastError = true)] public static partial int setns(int fd, int nstype);
    [LibraryImport(Library, SetLastError = true)] public static partial int unshare(int flags);
    [LibraryImport(Library, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)] public static partial uint if_nametoindex(string name);
    [LibraryImport(Library)] public static partial int vsnprintf(byte* buf, nuint size, byte* format, nint args);
    [LibraryImport(Library)] public static partial int getpagesize();
    [LibraryImport(Library, SetLastError = true)] public static partial int clock_getres(int clockId, Timespec* res);
    [LibraryImport(Library)] public static partial uint geteuid();
    [LibraryImport(Library)] public static partial nint strerror(int errnum);
    [LibraryImport(Library, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)] public static partial int statfs(string path, Statfs* buf);
    [LibraryImport(Library, SetLastError = true)] public static partial int flock(int fd, int operation);

    [StructLayout(LayoutKind.Sequential)]
    public struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    public const int LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;

    /// <summary>struct statfs on x86-64: f_type first, 120 bytes in all.</summary>
    [StructLayout(LayoutKind.Sequential, Size = 120)]
    public struct Statfs
    {
        public long Type;
    }

    [StructLayout(LayoutKind.Sequential, Pack = 1)] // packed on x86-64
    public struct EpollEvent
    {
        public uint Events;
        public ulong Data;
    }
}
