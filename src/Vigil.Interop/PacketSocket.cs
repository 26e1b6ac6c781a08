using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Vigil.Interop.Native;

namespace Vigil.Interop;

/// <summary>An AF_PACKET socket on one interface with a BPF socket filter, read in batches with
/// recvmmsg into buffers allocated once. Needs CAP_NET_RAW. The filter is attached before the socket is
/// bound to a protocol, so no packet reaches it unfiltered.</summary>
public sealed unsafe partial class PacketSocket : IDisposable
{
    private const int AF_PACKET = 17, SOCK_RAW = 3, SOCK_CLOEXEC = 0x80000, SOL_SOCKET = 1, SO_ATTACH_BPF = 50;
    private const ushort ETH_P_ALL = 3;
    private const int MSG_DONTWAIT = 0x40, MSG_TRUNC = 0x20, POLLIN = 1;

    [StructLayout(LayoutKind.Sequential)]
    private struct SockaddrLl
    {
        public ushort Family;
        public ushort Protocol; // network order
        public int Ifindex;
        public ushort Hatype;
        public byte Pkttype;
        public byte Halen;
        public fixed byte Addr[8];
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Iovec { public void* Base; public nuint Len; }

    [StructLayout(LayoutKind.Sequential)]
    private struct MsgHdr
    {
        public void* Name; public uint NameLen; public Iovec* Iov; public nuint IovLen;
        public void* Control; public nuint ControlLen; public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MMsgHdr { public MsgHdr Hdr; public uint Len; }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd { public int Fd; public short Events; public short Revents; }

    [LibraryImport("libc", SetLastError = true)] private static partial int socket(int domain, int type, int protocol);
    [LibraryImport("libc", SetLastError = true)] private static partial int setsockopt(int fd, int level, int name, void* value, uint len);
    [LibraryImport("libc", SetLastError = true)] private static partial int bind(int fd, void* addr, uint len);
    [LibraryImport("libc", SetLastError = true)] private static partial int recvmmsg(int fd, MMsgHdr* msgs, uint vlen, int flags, void* timeout);
    [LibraryImport("libc", SetLastError = true)] private static partial int poll(PollFd* fds, nuint n, int timeoutMs);

    private readonly FileDescriptor _fd;
    private readonly int _batch, _snap;
    private readonly byte* _buffers;
    private readonly MMsgHdr* _msgs;
    private readonly Iovec* _iovs;

    public long Received, Truncated;

    /// <param name="snap">bytes kept per packet (longer ones are cut, and counted in <see cref="Truncated"/>).</param>
    public PacketSocket(string iface, int programFd, int batch = 64, int snap = 8192)
    {
        uint ifindex = Libc.if_nametoindex(iface);
        if (ifindex == 0) throw new ArgumentException($"no network interface named {iface} in this network namespace");
        int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0); // protocol 0: receives nothing until bound
        if (fd < 0)
        {
            int e = Marshal.GetLastSystemError();
            throw e is Errno.EPERM or Errno.EACCES
                ? new BpfPermissionException("opening an AF_PACKET socket (vigil watch http)", e, "CAP_NET_RAW")
                : Errno.FromErrno("opening an AF_PACKET socket", e);
        }
        _fd = new FileDescriptor(fd);
        if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_BPF, &programFd, 4) < 0)
            throw Errno.FromErrno("attaching the socket filter (SO_ATTACH_BPF)", Marshal.GetLastSystemError());
        var sll = new SockaddrLl { Family = AF_PACKET, Protocol = BinaryPrimitives.ReverseEndianness(ETH_P_ALL), Ifindex = (int)ifindex };
        if (bind(fd, &sll, (uint)sizeof(SockaddrLl)) < 0)
            throw Errno.FromErrno($"binding the AF_PACKET socket to {iface}", Marshal.GetLastSystemError());
        _batch = batch;
        _snap = snap;
        _buffers = (byte*)NativeMemory.Alloc((nuint)(batch * snap));
        _msgs = (MMsgHdr*)NativeMemory.AllocZeroed((nuint)(batch * sizeof(MMsgHdr)));
        _iovs = (Iovec*)NativeMemory.AllocZeroed((nuint)(batch * sizeof(Iovec)));
        for (int i = 0; i < batch; i++)
        {
            _iovs[i] = new Iovec { Base = _buffers + i * snap, Len = (nuint)snap };
            _msgs[i].Hdr.Iov = &_iovs[i];
            _msgs[i].Hdr.IovLen = 1;
        }
    }

    public interface IHandler { void OnPacket(ReadOnlySpan<byte> frame); }

    /// <summary>Waits up to <paramref name="timeoutMs"/> for packets, then reads every batch that is ready
    /// (bounded: at most 16 batches per call). Returns the packets handled.</summary>
    public int Poll<T>(ref T handler, int timeoutMs) where T : IHandler
    {
        var p = new PollFd { Fd = _fd.Value, Events = POLLIN };
        if (poll(&p, 1, timeoutMs) <= 0) return 0;
        int total = 0;
        for (int round = 0; round < 16; round++)
        {
            int n = recvmmsg(_fd.Value, _msgs, (uint)_batch, MSG_DONTWAIT, null);
            if (n <= 0) break;
            for (int i = 0; i < n; i++)
            {
                int len = (int)_msgs[i].Len;
                if ((_msgs[i].Hdr.Flags & MSG_TRUNC) != 0 || len > _snap) { Truncated++; len = Math.Min(len, _snap); }
                handler.OnPacket(new ReadOnlySpan<byte>(_buffers + i * _snap, len));
                _msgs[i].Hdr.Flags = 0;
            }
            Received += n;
            total += n;
            if (n < _batch) break;
        }
        return total;
    }

    public void Dispose()
    {
        _fd.Dispose();
        NativeMemory.Free(_buffers);
        NativeMemory.Free(_msgs);
        NativeMemory.Free(_iovs);
    }
}
