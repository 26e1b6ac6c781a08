using System.Runtime.InteropServices;
using Vigil.Interop.Native;

namespace Vigil.Interop;

/// <summary>A libbpf or bpf() operation failed. Carries the operation, errno and what to do about it.</summary>
public class BpfException : Exception
{
    public string Operation { get; }
    public int Errno { get; }
    public string? Hint { get; }

    public BpfException(string operation, int errno, string? hint = null, string? detail = null)
        : base(Compose(operation, errno, hint, detail))
    {
        Operation = operation;
        Errno = errno;
        Hint = hint;
    }

    private static string Compose(string operation, int errno, string? hint, string? detail)
    {
        var msg = $"{operation} failed: {Interop.Errno.Describe(errno)}";
        if (hint is not null) msg += $" — {hint}";
        if (!string.IsNullOrEmpty(detail)) msg += Environment.NewLine + detail;
        return msg;
    }
}

/// <summary>The process lacks a capability the operation needs.</summary>
public sealed class BpfPermissionException(string operation, int errno, string capability)
    : BpfException(operation, errno, $"needs {capability} (run as root or grant it, e.g. setcap or systemd AmbientCapabilities)")
{
    public string Capability { get; } = capability;
}

/// <summary>The verifier rejected a program; <see cref="VerifierLog"/> says why.</summary>
public sealed class BpfVerifierException(string operation, int errno, string verifierLog)
    : BpfException(operation, errno, "the kernel verifier rejected the program (log below)", Tail(verifierLog))
{
    public string VerifierLog { get; } = verifierLog;

    private static string Tail(string log)
    {
        // The verifier's reason is at the end of the program's log, just before libbpf's END marker.
        int end = log.LastIndexOf("-- END PROG LOAD LOG --", StringComparison.Ordinal);
        var lines = (end > 0 ? log[..end] : log).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return string.Join('\n', lines.TakeLast(25));
    }
}

/// <summary>This kernel cannot do <see cref="Feature"/>. Callers fall back to another hook; tests skip.</summary>
public sealed class BpfNotSupportedException(string feature, string minimumKernel, string operation, int errno, string? why = null)
    : BpfException(operation, errno, why ?? $"this kernel lacks {feature} (needs Linux {minimumKernel} with it enabled)")
{
    public string Feature { get; } = feature;
    public string MinimumKernel { get; } = minimumKernel;
}

/// <summary>errno values and their names, and the single place libbpf errors become exceptions.</summary>
public static class Errno
{
    public const int EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EBADF = 9, EAGAIN = 11, ENOMEM = 12,
        EACCES = 13, EFAULT = 14, EBUSY = 16, EEXIST = 17, ENODEV = 19, EINVAL = 22, E2BIG = 7,
        ENOSPC = 28, ENOSYS = 38, ENOLINK = 67, EOPNOTSUPP = 95, ENOTSUPP = 524;

    public static string Describe(int errno)
    {
        if (errno == ENOTSUPP) return "ENOTSUPP (524): operation not supported by this kernel";
        var text = Marshal.PtrToStringUTF8(Libc.strerror(errno)) ?? "unknown error";
        return $"{Name(errno)} ({errno}): {text}";
    }

    public static string Name(int errno) => errno switch
    {
        EPERM => "EPERM", ENOENT => "ENOENT", ESRCH => "ESRCH", EINTR => "EINTR", EBADF => "EBADF",
        EAGAIN => "EAGAIN", ENOMEM => "ENOMEM", EACCES => "EACCES", EFAULT => "EFAULT", EBUSY => "EBUSY",
        EEXIST => "EEXIST", ENODEV => "ENODEV", EINVAL => "EINVAL", E2BIG => "E2BIG", ENOSPC => "ENOSPC",
        ENOSYS => "ENOSYS", EOPNOTSUPP => "EOPNOTSUPP", ENOTSUPP => "ENOTSUPP", _ => $"errno {errno}",
    };

    /// <summary>libbpf convention 1: a negative errno is returned.</summary>
    public static int Check(int ret, string operation, string? capability = null)
    {
        if (ret >= 0) return ret;
        throw FromErrno(operation, -ret, capability);
    }

    /// <summary>libbpf convention 2: NULL is returned and errno is set.</summary>
    public static nint CheckPtr(nint ptr, string operation, string? capability = null)
    {
        if (ptr != 0) return ptr;
        var errno = Marshal.GetLastSystemError();
        throw FromErrno(operation, errno == 0 ? ENOENT : errno, capability);
    }

    /// <summary>A raw syscall returned -1 and set errno.</summary>
    public static int CheckSyscall(long ret, string operation, string? capability = null)
    {
        if (ret >= 0) return (int)ret;
        throw FromErrno(operation, Marshal.GetLastSystemError(), capability);
    }

    public static BpfException FromErrno(string operation, int errno, string? capability = null) => errno switch
    {
        EPERM or EACCES => new BpfPermissionException(operation, errno,
            capability ?? (Capabilities.Current.MissingForBpf() is { Length: > 0 } missing ? missing : "CAP_BPF and CAP_PERFMON")),
        ENOSYS or EOPNOTSUPP or ENOTSUPP => new BpfNotSupportedException(operation, "?", operation, errno),
        _ => new BpfException(operation, errno),
    };
}
