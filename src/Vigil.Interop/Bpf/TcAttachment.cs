using System.Runtime.InteropServices;
using Vigil.Interop.Native;

namespace Vigil.Interop.Bpf;

public enum TcDirection { Ingress = 1, Egress = 2 }

/// <summary>A TC attachment. TCX links (Linux 6.6+) die with their fd unless pinned; netlink clsact
/// filters outlive a crashed process, so those are removed explicitly on Dispose (unless <see cref="Leave"/>).</summary>
public abstract class TcAttachment : IDisposable
{
    public required int Ifindex { get; init; }
    public required TcDirection Direction { get; init; }
    public abstract string Kind { get; }
    public abstract void Dispose();

    private const uint BPF_LINK_CREATE = 28;
    private const uint BPF_TCX_INGRESS = 46, BPF_TCX_EGRESS = 47;
    private const uint BPF_F_BEFORE = 1u << 3;
    private const uint BPF_TC_F_REPLACE = 1;

    /// <summary>Attaches with a TCX link, at the end of the interface's chain or, with <paramref name="first"/>,
    /// at its front (an enforcer must run before a program that could accept the packet). Throws
    /// <see cref="BpfNotSupportedException"/> on kernels before 6.6.</summary>
    public static unsafe TcAttachment AttachTcx(BpfProgram program, int ifindex, TcDirection direction, bool first = false)
    {
        // union bpf_attr, link_create: prog_fd, target_ifindex, attach_type, flags, then tcx {relative_fd, expected_revision}.
        // BPF_F_BEFORE with no relative program means "before every other one".
        var attr = stackalloc byte[64];
        new Span<byte>(attr, 64).Clear();
        *(uint*)(attr + 0) = (uint)program.Fd;
        *(uint*)(attr + 4) = (uint)ifindex;
        *(uint*)(attr + 8) = direction == TcDirection.Ingress ? BPF_TCX_INGRESS : BPF_TCX_EGRESS;
        *(uint*)(attr + 12) = first ? BPF_F_BEFORE : 0;
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

    /// <summary>Attaches as a netlink clsact filter (any kernel with TC BPF); creates the clsact qdisc if missing.
    /// <paramref name="handle"/> and <paramref name="priority"/> 0 let the kernel choose; a caller that must find its
    /// filter again (after a restart) names both, and <paramref name="replace"/> swaps the program of the filter
    /// already there in one step.</summary>
    public static unsafe TcAttachment AttachNetlink(BpfProgram program, int ifindex, TcDirection direction,
                                                    uint handle = 0, uint priority = 0, bool replace = false)
    {
        var hook = new BpfTcHook { Sz = (nuint)sizeof(BpfTcHook), Ifindex = ifindex, AttachPoint = (int)direction };
        int rc = LibBpf.bpf_tc_hook_create(&hook);
        bool createdQdisc = rc == 0;
        if (rc < 0 && -rc != Errno.EEXIST)
            throw Errno.FromErrno($"creating clsact qdisc on ifindex {ifindex}", -rc, "CAP_NET_ADMIN");
        var opts = new BpfTcOpts
        {
            Sz = (nuint)sizeof(BpfTcOpts), ProgFd = program.Fd, Handle = handle, Priority = priority,
            Flags = replace ? BPF_TC_F_REPLACE : 0,
        };
        rc = LibBpf.bpf_tc_attach(&hook, &opts);
        if (rc < 0)
        {
            if (createdQdisc) DestroyHook(ifindex);
            throw Errno.FromErrno($"attaching TC filter {program.Name} to ifindex {ifindex}" +
                                  (rc == -Errno.EEXIST ? $" (a filter with handle {handle:x} and priority {priority} is already there)" : ""),
                                  -rc, "CAP_NET_ADMIN");
        }
        return new NetlinkFilter(opts.Handle, opts.Priority, createdQdisc) { Ifindex = ifindex, Direction = direction };
    }

    /// <summary>The id of the program in the netlink filter (handle, priority) on the interface, or null when there is none.</summary>
    public static unsafe uint? NetlinkProgramId(int ifindex, TcDirection direction, uint handle, uint priority)
    {
        var hook = new BpfTcHook { Sz = (nuint)sizeof(BpfTcHook), Ifindex = ifindex, AttachPoint = (int)direction };
        var opts = new BpfTcOpts { Sz = (nuint)sizeof(BpfTcOpts), Handle = handle, Priority = priority };
        int rc = LibBpf.bpf_tc_query(&hook, &opts);
        if (rc == -Errno.ENOENT || rc == -Errno.EINVAL || rc == -Errno.ENODEV) return null; // no such filter, qdisc or interface
        Errno.Check(rc, $"querying TC filter {handle:x}/{priority} on ifindex {ifindex}");
        return opts.ProgId;
    }

    /// <summary>Removes the netlink filter (handle, priority); false when it was not there.</summary>
    public static unsafe bool DetachNetlink(int ifindex, TcDirection direction, uint handle, uint priority)
    {
        var hook = new BpfTcHook { Sz = (nuint)sizeof(BpfTcHook), Ifindex = ifindex, AttachPoint = (int)direction };
        var opts = new BpfTcOpts { Sz = (nuint)sizeof(BpfTcOpts), Handle = handle, Priority = priority };
        int rc = LibBpf.bpf_tc_detach(&hook, &opts);
        if (rc == -Errno.ENOENT || rc == -Errno.EINVAL || rc == -Errno.ENODEV) return false;
        Errno.Check(rc, $"removing TC filter {handle:x}/{priority} from ifindex {ifindex}");
        return true;
    }

    /// <summary>Pins a TCX link, so it outlives this process. Netlink filters outlive it anyway (see <see cref="Leave"/>).</summary>
    public virtual void Pin(string path) =>
        throw new InvalidOperationException($"a {Kind} attachment is not a link and cannot be pinned");

    /// <summary>Leaves the attachment in place when disposed: a netlink filter stays on its interface (what a
    /// pinned TCX link does by itself).</summary>
    public virtual void Leave() { }

    private static unsafe void DestroyHook(int ifindex)
    {
        // Destroying an ingress|egress hook removes the whole clsact qdisc: only done when we created it.
        var hook = new BpfTcHook { Sz = (nuint)sizeof(BpfTcHook), Ifindex = ifindex, AttachPoint = 3 };
        LibBpf.bpf_tc_hook_destroy(&hook);
    }

    private sealed class TcxLink(FileDescriptor fd) : TcAttachment
    {
        public override string Kind => "tcx";
        public override void Pin(string path) => Errno.Check(LibBpf.bpf_obj_pin(fd.Value, path), $"pinning a TCX link at {path}");
        public override void Dispose() => fd.Dispose();
    }

    private sealed class NetlinkFilter(uint handle, uint priority, bool createdQdisc) : TcAttachment
    {
        private int _done;
        public override string Kind => "netlink clsact";

        public override void Leave() => Interlocked.Exchange(ref _done, 1);

        public override void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) != 0) return;
            DetachNetlink(Ifindex, Direction, handle, priority); // false if the interface is gone: nothing left to remove
            if (createdQdisc) DestroyHook(Ifindex);
        }
    }
}
