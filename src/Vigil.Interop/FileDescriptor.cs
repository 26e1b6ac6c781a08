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

    /// <summary>flock(LOCK_EX | LOCK_NB): false when another open file description holds the lock. The lock
    /// goes with the descriptor (and with the process, however it ends).</summary>
    public bool TryLockExclusive()
    {
        if (Libc.flock(Value, Libc.LOCK_EX | Libc.LOCK_NB) == 0) return true;
        int errno = Marshal.GetLastSystemError();
        if (errno == Errno.EAGAIN) return false;
        throw new BpfException("locking a file (flock)", errno);
    }

    /// <summary>Waits up to <paramref name="timeout"/> for the lock (polling: flock has no timeout).</summary>
    public bool LockExclusive(TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (!TryLockExclusive())
        {
            if (DateTime.UtcNow > until) return false;
            Thread.Sleep(5);
        }
        return true;
    }

    public void Unlock() => Libc.flock(Value, Libc.LOCK_UN);

    protected override bool ReleaseHandle() => Libc.close((int)handle) == 0;
}
