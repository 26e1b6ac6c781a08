using System.Runtime.InteropServices;
using Vigil.Interop.Native;

namespace Vigil.Interop.Bpf;

/// <summary>Receives each ring-buffer record in place. Implement on a struct so the JIT can inline it.</summary>
public interface IRingRecordHandler
{
    void OnRecord(ReadOnlySpan<byte> record);
}

/// <summary>Reads a BPF ring buffer through its mmap'd pages without libbpf: records are handed out
/// in place (no copy, no allocation) and the consumer position is published once per batch.</summary>
public sealed unsafe class RingBufferReader : IDisposable
{
    private const uint BusyBit = 1u << 31, DiscardBit = 1u << 30, HeaderSize = 8;

    private readonly nint _consumerPage, _producerArea;
    private readonly nuint _producerLength;
    private readonly byte* _data;
    private readonly ulong _mask;
    private readonly FileDescriptor _epoll;
    private readonly int _pageSize;
    private int _disposed;

    public ulong Size { get; }

    public RingBufferReader(BpfMap map)
    {
        int fd = map.Fd;
        Size = map.MaxEntries;
        _mask = Size - 1;
        _pageSize = Libc.getpagesize();

        // Page 0: consumer position (read-write). Then the producer page and the data area,
        // which the kernel maps twice in a row so a record never wraps from our point of view.
        _consumerPage = Libc.mmap(0, (nuint)_pageSize, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd, 0);
        if (_consumerPage == Libc.MAP_FAILED)
            throw Errno.FromErrno($"mmap of ring buffer {map.Name} (consumer page)", Marshal.GetLastSystemError());
        _producerLength = (nuint)_pageSize + 2 * (nuint)Size;
        _producerArea = Libc.mmap(0, _producerLength, Libc.PROT_READ, Libc.MAP_SHARED, fd, _pageSize);
        if (_producerArea == Libc.MAP_FAILED)
        {
            int errno = Marshal.GetLastSystemError();
            Libc.munmap(_consumerPage, (nuint)_pageSize);
            throw Errno.FromErrno($"mmap of ring buffer {map.Name} (data pages)", errno);
        }
        _data = (byte*)_producerArea + _pageSize;

        int ep = Libc.epoll_create1(Libc.EPOLL_CLOEXEC);
        if (ep < 0) throw Errno.FromErrno("epoll_create1", Marshal.GetLastSystemError());
        _epoll = new FileDescriptor(ep);
        var ev = new Libc.EpollEvent { Events = Libc.EPOLLIN, Data = 0 };
        if (Libc.epoll_ctl(ep, Libc.EPOLL_CTL_ADD, fd, &ev) < 0)
            throw Errno.FromErrno($"epoll_ctl on ring buffer {map.Name}", Marshal.GetLastSystemError());
    }

    private ref long ConsumerPos => ref *(long*)_consumerPage;
    private ref long ProducerPos => ref *(long*)_producerArea;

    /// <summary>Bytes written by the kernel and not yet consumed.</summary>
    public long Pending => Volatile.Read(ref ProducerPos) - Volatile.Read(ref ConsumerPos);

    /// <summary>Consumes every complete record available now; returns how many were handed out.</summary>
    public int Drain<THandler>(ref THandler handler) where THandler : struct, IRingRecordHandler
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        long cons = Volatile.Read(ref ConsumerPos);
        long prod = Volatile.Read(ref ProducerPos); // acquire: record headers below are visible
        int count = 0;
        while (cons < prod)
        {
            byte* hdr = _data + ((ulong)cons & _mask);
            uint len = Volatile.Read(ref *(uint*)hdr);
            if ((len & BusyBit) != 0) break; // reserved, not yet submitted: stop here, keep order
            uint size = len & ~(BusyBit | DiscardBit);
            if ((len & DiscardBit) == 0)
            {
                handler.OnRecord(new ReadOnlySpan<byte>(hdr + HeaderSize, (int)size));
                count++;
            }
            cons += (size + HeaderSize + 7) & ~7L;
        }
        if (count > 0 || cons != Volatile.Read(ref ConsumerPos))
            Volatile.Write(ref ConsumerPos, cons); // release: one publication per batch
        return count;
    }

    /// <summary>Waits up to <paramref name="timeoutMs"/> for a wake-up, then drains.
    /// The kernel side wakes only in batches, so the timeout bounds the latency of a quiet ring.</summary>
    public int Poll<THandler>(ref THandler handler, int timeoutMs) where THandler : struct, IRingRecordHandler
    {
        int n = Drain(ref handler);
        if (n > 0) return n;
        Libc.EpollEvent ev;
        int rc = Libc.epoll_wait(_epoll.Value, &ev, 1, timeoutMs);
        if (rc < 0)
        {
            int errno = Marshal.GetLastSystemError();
            if (errno != Errno.EINTR) throw Errno.FromErrno("epoll_wait on ring buffer", errno);
        }
        return Drain(ref handler);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _epoll.Dispose();
        Libc.munmap(_producerArea, _producerLength);
        Libc.munmap(_consumerPage, (nuint)_pageSize);
    }
}
