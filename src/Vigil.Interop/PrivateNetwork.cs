using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Vigil.Interop.Native;

namespace Vigil.Interop;

/// <summary>A new, empty network namespace that exists for one piece of work only.</summary>
public static class PrivateNetworkNamespace
{
    /// <summary>Runs <paramref name="work"/> on a dedicated thread that first moves into a new network
    /// namespace (<c>unshare(CLONE_NEWNET)</c>, needs CAP_SYS_ADMIN). Nothing names the namespace, so
    /// the kernel frees it — with every interface, qdisc and filter in it — once the thread has
    /// exited and <paramref name="work"/> has closed its sockets. Namespace membership is per
    /// thread: <paramref name="work"/> must not await.</summary>
    public static T Run<T>(Func<T> work, string threadName = "vigil-netns")
    {
        T result = default!;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                if (Libc.unshare(Libc.CLONE_NEWNET) != 0)
                {
                    int errno = Marshal.GetLastSystemError();
                    throw errno is Errno.EPERM or Errno.EACCES
                        ? new BpfPermissionException("creating a private network namespace (unshare CLONE_NEWNET)", errno, "CAP_SYS_ADMIN")
                        : Errno.FromErrno("creating a private network namespace (unshare CLONE_NEWNET)", errno);
                }
                result = work();
            }
            catch (Exception e) { error = e; }
        }) { Name = threadName, IsBackground = true };
        thread.Start();
        thread.Join();
        if (error is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        return result;
    }
}

/// <summary>veth pairs in the calling thread's network namespace, through rtnetlink (no iproute2 needed).</summary>
public static unsafe partial class Veth
{
    private const int AF_NETLINK = 16, SOCK_RAW = 3, SOCK_CLOEXEC = 0x80000, NETLINK_ROUTE = 0;
    private const ushort RTM_NEWLINK = 16, RTM_DELLINK = 17, NLMSG_ERROR = 2;
    private const ushort NLM_F_REQUEST = 1, NLM_F_ACK = 4, NLM_F_EXCL = 0x200, NLM_F_CREATE = 0x400;
    private const ushort IFLA_IFNAME = 3, IFLA_LINKINFO = 18, IFLA_INFO_KIND = 1, IFLA_INFO_DATA = 2, VETH_INFO_PEER = 1;

    /// <summary>Creates the pair <paramref name="name"/> ↔ <paramref name="peer"/>; returns the ifindex of <paramref name="name"/>.</summary>
    public static int Create(string name, string peer)
    {
        var msg = new NetlinkMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        msg.IfInfo(0);
        msg.AttrString(IFLA_IFNAME, name);
        int linkInfo = msg.BeginNested(IFLA_LINKINFO);
        msg.AttrString(IFLA_INFO_KIND, "veth", terminate: false);
        int data = msg.BeginNested(IFLA_INFO_DATA);
        int peerInfo = msg.BeginNested(VETH_INFO_PEER);
        msg.IfInfo(0); // VETH_INFO_PEER carries a struct ifinfomsg, then the peer's attributes
        msg.AttrString(IFLA_IFNAME, peer);
        msg.EndNested(peerInfo);
        msg.EndNested(data);
        msg.EndNested(linkInfo);
        Request(msg, $"creating veth pair {name}/{peer}");
        uint index = Libc.if_nametoindex(name);
        if (index == 0) throw Errno.FromErrno($"looking up interface {name}", Marshal.GetLastSystemError());
        return (int)index;
    }

    /// <summary>Deletes <paramref name="name"/> (and so its peer). False if it did not exist.</summary>
    public static bool Delete(string name)
    {
        uint index = Libc.if_nametoindex(name);
        if (index == 0) return false;
        var msg = new NetlinkMessage(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK);
        msg.IfInfo((int)index);
        Request(msg, $"deleting interface {name}");
        return true;
    }

    private static void Request(NetlinkMessage msg, string operation)
    {
        int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        if (fd < 0) throw Errno.FromErrno($"{operation}: netlink socket", Marshal.GetLastSystemError());
        using var owned = new FileDescriptor(fd);
        var bytes = msg.Finish();
        fixed (byte* p = bytes)
            if (send(fd, p, (nuint)bytes.Length, 0) < 0)
                throw Errno.FromErrno(operation, Marshal.GetLastSystemError(), "CAP_NET_ADMIN");
        var reply = stackalloc byte[4096];
        // The kernel answers a request that asks for an ACK with exactly one NLMSG_ERROR (error 0 = done).
        for (int attempt = 0; attempt < 16; attempt++)
        {
            nint n = recv(fd, reply, 4096, 0);
            if (n < 0) throw Errno.FromErrno($"{operation}: netlink reply", Marshal.GetLastSystemError());
            var span = new ReadOnlySpan<byte>(reply, (int)n);
            if (span.Length < 20 || BinaryPrimitives.ReadUInt16LittleEndian(span[4..]) != NLMSG_ERROR) continue;
            int error = BinaryPrimitives.ReadInt32LittleEndian(span[16..]);
            if (error == 0) return;
            throw Errno.FromErrno(operation, -error, "CAP_NET_ADMIN");
        }
        throw new BpfException(operation, Errno.EAGAIN, "no acknowledgement from the kernel");
    }

    /// <summary>One rtnetlink request: nlmsghdr, then the payload, attributes 4-byte aligned.</summary>
    private sealed class NetlinkMessage
    {
        private readonly byte[] _buf = new byte[512];
        private int _len = 16;

        public NetlinkMessage(ushort type, ushort flags)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(4), type);
            BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(6), flags);
            BinaryPrimitives.WriteUInt32LittleEndian(_buf.AsSpan(8), 1); // sequence number
        }

        /// <summary>struct ifinfomsg { family, pad, type, index, flags, change } = 16 bytes.</summary>
        public void IfInfo(int index)
        {
            _buf.AsSpan(_len, 16).Clear();
            BinaryPrimitives.WriteInt32LittleEndian(_buf.AsSpan(_len + 4), index);
            _len += 16;
        }

        public void AttrString(ushort type, string value, bool terminate = true)
        {
            var bytes = Encoding.ASCII.GetBytes(terminate ? value + "\0" : value);
            int start = BeginNested(type);
            bytes.CopyTo(_buf, _len);
            _len += bytes.Length;
            EndNested(start);
        }

        /// <summary>Starts an attribute; its length is patched by <see cref="EndNested"/>. (No NLA_F_NESTED
        /// flag: rtnetlink parses these attributes leniently, as iproute2 sends them.)</summary>
        public int BeginNested(ushort type)
        {
            int start = _len;
            BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(start + 2), type);
            _len += 4;
            return start;
        }

        public void EndNested(int start)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(start), (ushort)(_len - start));
            _len = (_len + 3) & ~3;
        }

        public byte[] Finish()
        {
            BinaryPrimitives.WriteUInt32LittleEndian(_buf.AsSpan(0), (uint)_len);
            return _buf[.._len];
        }
    }

    [LibraryImport("libc", SetLastError = true)] private static partial int socket(int domain, int type, int protocol);
    [LibraryImport("libc", SetLastError = true)] private static partial nint send(int fd, byte* buf, nuint len, int flags);
    [LibraryImport("libc", SetLastError = true)] private static partial nint recv(int fd, byte* buf, nuint len, int flags);
}
