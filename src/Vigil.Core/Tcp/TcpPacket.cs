using System.Runtime.CompilerServices;
using System.Text;
using Vigil.Core.Net;
using Vigil.Wire;

namespace Vigil.Core.Tcp;

/// <summary>A process name, 16 bytes as the kernel's TASK_COMM_LEN, NUL-padded.</summary>
[InlineArray(16)]
public struct Comm16
{
    private byte _b0;

    public readonly int Length
    {
        get
        {
            ReadOnlySpan<byte> s = this;
            int n = s.IndexOf((byte)0);
            return n < 0 ? 16 : n;
        }
    }

    public override readonly string ToString() => Encoding.UTF8.GetString(((ReadOnlySpan<byte>)this)[..Length]);

    public static Comm16 From(string s)
    {
        Comm16 c = default;
        Encoding.UTF8.GetBytes(s.AsSpan(0, Math.Min(s.Length, 15)), c);
        return c;
    }
}

/// <summary>The local process that owns the socket a packet reached (recorded at listen/connect).</summary>
public struct SocketOwner
{
    public bool Known;
    public uint Pid;
    public uint Uid;
    public uint Gid;
    public ulong CgroupId;
    public Comm16 Comm;
}

/// <summary>One incoming TCP segment, decoded from a <see cref="TcpEvent"/> record. A value type:
/// decoding allocates nothing.</summary>
public struct TcpPacket
{
    /// <summary>CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns); see <see cref="Pipeline.TimeBase"/>.</summary>
    public ulong TimestampNs;
    public byte Family; // 4 or 6
    public IpAddress16 Source;
    public IpAddress16 Destination;
    public ushort SourcePort;
    public ushort DestinationPort;
    public uint Seq;
    public uint Ack;
    public ushort Window;
    public TcpFlags Flags;
    public uint Ifindex;
    public uint PayloadLength;
    public uint IpLength;
    public uint NetnsIno;
    public TcpHook Hook;
    public LinkType LinkType;
    public ushort CapturedLength;
    public SocketOwner Owner;
}
