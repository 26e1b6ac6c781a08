using System.Runtime.InteropServices;
using Vigil.Interop.Native;

namespace Vigil.Interop;

/// <summary>An owned file descriptor (cgroup directories, namespaces, fd-owned BPF links, epoll).</summary>
public sealed class FileDescriptor : SafeHandle
{
    public FileDescriptor(int fd) : base(-1, ownsHandle: true) => SetHandle(fd);
    public override bool IsInvalid => handle == -1;
    public int Value => (int)handle;

    public static FileDescriptor OpenDirectory(string path, string purpose)
    {
        int fd = Libc.open(path, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC);
        if (fd < 0)
        {
            int errno = Marshal.GetLastSystemError();
            throw new BpfException($"opening {path} ({purpose})", errno,
                errno == Errno.ENOENT ? $"{path} does not exist" : null);
        }
        return new FileDescriptor(fd);
    }

    public static FileDescriptor OpenReadOnly(string path, string purpose)
    {
        int fd = Libc.open(path, Libc.O_RDONLY | Libc.O_CLOEXEC);
        if (fd < 0)
        {
            int errno = Marshal.GetLastSystemError();
            throw new BpfException($"opening {path} ({purpose})", errno,
                errno == Errno.ENOENT ? $"{path} does not exist" : null);
        }
        return new FileDescriptor(fd);
    }

    protected override bool ReleaseHandle() => Libc.close((int)handle) == 0;
}
