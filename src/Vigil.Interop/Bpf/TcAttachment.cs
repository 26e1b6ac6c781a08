using System.Runtime.InteropServices;
using Vigil.Interop.Native;

namespace Vigil.Interop.Bpf;

public enum TcDirection { Ingress = 1, Egress = 2 }

/// <summary>A TC attachment. TCX links (Linux 6.6+) die with their fd; netlink clsact filters
/// outlive a crashed process, so those are removed explicitly on Dispose.</summary>
public abstract class TcAttachment : IDisposable
{
    public required int Ifindex { get; init; }
    public required TcDirection Direction { get; init; }
    public abstract string Kind { get; }
    public abstract void Dispose();

    private const uint BPF_LINK_CREATE = 28;
    private const uint BPF_TCX_INGRESS = 46, BPF_TCX_EGRESS = 47;

    /// <summary>Attaches with a TCX link. Throws <see cref="BpfNotSupportedException"/> on kernels before 6.6.</summary>
    public static unsafe TcAttachment AttachTcx(BpfProgram program, int ifindex, TcDirection direction)
    {
        // union bpf_attr, link_create: prog_fd, target_ifindex, attach_type, flags, then tcx {relative_fd, expected_revision}.
        var attr = stackalloc byte[64];
        new Span<byte>(attr, 64).Clear();
        *(uint*)(attr + 0) = (uint)program.Fd;
        *(uint*)(attr + 4) = (uint)ifindex;
        *(uint*)(attr + 8) = direction == TcDirection.Ingress ? BPF_TCX_INGRESS : BPF_TCX_EGRESS;
        long fd = Libc.syscall(Libc.SYS_bpf, BPF_LINK_CREATE, (long)attr, 64);
        if (fd < 0)
        {
            int errno = Marshal.GetLastSystemError();
            if (errno is Errno.EINVAL or Errno.EOPNOTSUPP or Errno.ENOTSUPP)
                throw new BpfNotSupportedException("TCX links", "6.6", $"TCX attach of {program.Name} to ifindex {ifindex}", errno);
            throw Errno.FromErrno($"TCX attach of {program.Name} to ifindex {ifindex}", errno, "CAP_NET_ADMIN + CAP_BPF");
        }
        return new TcxLink(new FileDescriptor((int)fd)) { Ifindex = ifindex, Direction = direction };
    }

    /// <summary>Attaches as a netlink clsact filter (any kernel with TC BPF); creates the clsact qdisc if missing.</summary>
    public static unsafe TcAttachment AttachNetlink(BpfProgram program, int ifindex, TcDirection direction)
    {
        var hook = new BpfTcHook { Sz = (nuint)sizeof(BpfTcHook), Ifindex = ifindex, AttachPoint = (int)direction };
        int rc = LibBpf.bpf_tc_hook_create(&hook);
        bool createdQdisc = rc == 0;
        if (rc < 0 && -rc != Errno.EEXIST)
            throw Errno.FromErrno($"creating clsact qdisc on ifindex {ifindex}", -rc, "CAP_NET_ADMIN");
        var opts = new BpfTcOpts { Sz = (nuint)sizeof(BpfTcOpts), ProgFd = program.Fd };
        rc = LibBpf.bpf_tc_attach(&hook, &opts);
        if (rc < 0)
        {
            if (createdQdisc) DestroyHook(ifindex, direction);
            throw Errno.FromErrno($"attaching TC filter {program.Name} to ifindex {ifindex}", -rc, "CAP_NET_ADMIN");
        }
        return new NetlinkFilter(opts.Handle, opts.Priority, createdQdisc) { Ifindex = ifindex, Direction = direction };
    }

    private static unsafe void DestroyHook(int ifindex, TcDirection direction)
    {
        // Destroying an ingress|egress hook removes the whole clsact qdisc: only done when we created it.
        var hook = new BpfTcHook { Sz = (nuint)sizeof(BpfTcHook), Ifindex = ifindex, AttachPoint = 3 };
        LibBpf.bpf_tc_hook_destroy(&hook);
    }

    private sealed class TcxLink(FileDescriptor fd) : TcAttachment
    {
        public override string Kind => "tcx";
        public override void Dispose() => fd.Dispose();
    }

    private sealed class NetlinkFilter(uint handle, uint priority, bool createdQdisc) : TcAttachment
    {
        private int _disposed;
        public override string Kind => "netlink clsact";

        public override unsafe void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
            var hook = new BpfTcHook { Sz = (nuint)sizeof(BpfTcHook), Ifindex = Ifindex, AttachPoint = (int)Direction };
            var opts = new BpfTcOpts { Sz = (nuint)sizeof(BpfTcOpts), Handle = handle, Priority = priority };
            LibBpf.bpf_tc_detach(&hook, &opts); // ENOENT if the interface is gone: nothing left to remove
            if (createdQdisc) DestroyHook(Ifindex, Direction);
        }
    }
}
