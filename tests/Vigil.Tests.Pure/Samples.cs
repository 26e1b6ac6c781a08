using System.Buffers.Binary;
using System.Net;
using Vigil.Core.Naming;
using Vigil.Core.Net;
using Vigil.Core.Pipeline;
using Vigil.Core.Tcp;
using Vigil.Wire;

namespace Vigil.Tests.Pure;

/// <summary>Fixed inputs shared by the output tests.</summary>
internal static class Samples
{
    /// <summary>Monotonic zero is 2023-11-14T22:13:20Z; packets are stamped about 123 s later.</summary>
    public const long UnixNsAtMonotonicZero = 1_700_000_000_000_000_000;
    public static readonly TimeBase Time = new(UnixNsAtMonotonicZero);

    public static string PasswdFixture => Path.Combine(AppContext.BaseDirectory, "fixtures", "passwd");

    public static HostNames Names() =>
        new(new Dictionary<int, string> { [2] = "eth0", [7] = "veth-vigil-7" }, PasswdFixture);

    public static SocketOwner Owner(uint pid, string comm, uint uid, uint gid, ulong cgroupId) =>
        new() { Known = true, Pid = pid, Comm = Comm16.From(comm), Uid = uid, Gid = gid, CgroupId = cgroupId };

    public static TcpPacket Packet(string source, ushort sourcePort, string destination, ushort destinationPort,
        TcpFlags flags, ulong timestampNs, SocketOwner owner = default, uint seq = 1_000_000, uint ack = 2_000_000,
        ushort window = 64240, uint payload = 0, uint ifindex = 2, TcpHook hook = TcpHook.Tc)
    {
        var src = IPAddress.Parse(source);
        bool v6 = src.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
        return new TcpPacket
        {
            TimestampNs = timestampNs,
            Family = v6 ? (byte)6 : (byte)4,
            Source = IpAddress16.From(src),
            Destination = IpAddress16.From(IPAddress.Parse(destination)),
            SourcePort = sourcePort,
            DestinationPort = destinationPort,
            Seq = seq,
            Ack = ack,
            Window = window,
            Flags = flags,
            Ifindex = ifindex,
            PayloadLength = payload,
            IpLength = (v6 ? 40u : 20u) + 20 + payload,
            Hook = hook,
            LinkType = hook == TcpHook.Tc ? LinkType.Ethernet : LinkType.RawIp,
            Owner = owner,
        };
    }

    /// <summary>IPv4 and IPv6, known and unknown owners (and a uid with no passwd entry), every flag
    /// alone and in the usual combinations, no flag at all, a comm that needs escaping and one cut
    /// inside a UTF-8 character.</summary>
    /// <summary>Bytes this thread allocates in a second run of <paramref name="run"/>; the first run
    /// warms name caches, buffers and the JIT.</summary>
    public static long AllocatedInSteadyState(Action run)
    {
        run();
        long before = GC.GetAllocatedBytesForCurrentThread();
        run();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    /// <summary>Writes <paramref name="count"/> packets cycling through <paramref name="packets"/>, flushing every 64 as the pipeline does per batch.</summary>
    public static void WriteMany(Vigil.Core.Pipeline.ITcpPacketSink sink, TcpPacket[] packets, int count)
    {
        for (int i = 0; i < count; i++)
        {
            sink.Write(in packets[i % packets.Length], default);
            if (i % 64 == 63) sink.Flush();
        }
        sink.Flush();
    }

    public static TcpPacket[] Stream()
    {
        var nginx = Owner(4242, "nginx", 33, 33, 9876);
        var noPasswd = Owner(31337, "python3", 4321, 4321, 1);
        var odd = Owner(7, "say \"hi\"\\now", 1000, 1000, 18446744073709551615);
        var cut = new SocketOwner { Known = true, Pid = 4194304, Uid = 1001, Gid = 1001, CgroupId = 2 };
        "caf\u00e9-\u00e9"u8[..7].CopyTo(cut.Comm); // "café-" and the first byte of an "é"
        ulong t = 123_456_789_012;
        return
        [
            Packet("192.0.2.10", 40000, "198.51.100.7", 80, TcpFlags.Syn, t, nginx, ack: 0, payload: 0),
            Packet("192.0.2.10", 40000, "198.51.100.7", 80, TcpFlags.Ack, t + 1_000, nginx),
            Packet("192.0.2.10", 40000, "198.51.100.7", 80, TcpFlags.Psh | TcpFlags.Ack, t + 2_000, nginx, payload: 517),
            Packet("192.0.2.10", 40000, "198.51.100.7", 80, TcpFlags.Fin | TcpFlags.Ack, t + 3_000, nginx),
            Packet("203.0.113.255", 65535, "10.255.0.1", 1, TcpFlags.Rst, t + 4_000, seq: 0, ack: 0, window: 0),
            Packet("2001:db8::1", 443, "2001:db8:85a3::8a2e:370:7334", 51000, TcpFlags.Syn | TcpFlags.Ack, t + 5_000,
                window: 65535, hook: TcpHook.Cgroup, ifindex: 7),
            Packet("fe80::1ff:fe23:4567:890a", 22, "::1", 6000, TcpFlags.Urg | TcpFlags.Ack | TcpFlags.Psh, t + 6_000, noPasswd,
                payload: 1, hook: TcpHook.Kprobe, ifindex: 1),
            Packet("::ffff:192.0.2.1", 1234, "2001:db8::2", 80, TcpFlags.Syn | TcpFlags.Ece | TcpFlags.Cwr, t + 7_000, odd,
                ack: 0, hook: TcpHook.Fentry, ifindex: 99),
            Packet("198.51.100.1", 9, "192.0.2.2", 9, TcpFlags.None, t + 8_000, cut, seq: uint.MaxValue, ack: uint.MaxValue, window: 1),
            Packet("198.51.100.1", 9, "192.0.2.2", 9, (TcpFlags)0xff, t + 999_999_999, cut, payload: 99999),
        ];
    }

    // ---- real packet bytes (for pcap-ng) ----

    public static byte[] EthernetIPv4Tcp(string source, string destination, ushort sport, ushort dport, uint seq, uint ack,
        TcpFlags flags, int payloadLength, int vlanTags = 0)
    {
        var ip = IPv4Tcp(source, destination, sport, dport, seq, ack, flags, payloadLength);
        var frame = new byte[14 + 4 * vlanTags + ip.Length];
        new byte[] { 0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01 }.CopyTo(frame, 0);
        int at = 12;
        for (int i = 0; i < vlanTags; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(at), i == 0 && vlanTags > 1 ? (ushort)0x88A8 : (ushort)0x8100);
            BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(at + 2), (ushort)(100 + i));
            at += 4;
        }
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(at), 0x0800);
        ip.CopyTo(frame, at + 2);
        return frame;
    }

    public static byte[] IPv4Tcp(string source, string destination, ushort sport, ushort dport, uint seq, uint ack,
        TcpFlags flags, int payloadLength)
    {
        var p = new byte[20 + 20 + payloadLength];
        p[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)p.Length);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(6), 0x4000); // DF
        p[8] = 64;
        p[9] = 6;
        IPAddress.Parse(source).GetAddressBytes().CopyTo(p, 12);
        IPAddress.Parse(destination).GetAddressBytes().CopyTo(p, 16);
        uint sum = 0;
        for (int i = 0; i < 20; i += 2) sum += BinaryPrimitives.ReadUInt16BigEndian(p.AsSpan(i));
        while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(10), (ushort)~sum);
        Tcp(p.AsSpan(20), sport, dport, seq, ack, flags);
        return p;
    }

    public static byte[] IPv6Tcp(string source, string destination, ushort sport, ushort dport, uint seq, uint ack,
        TcpFlags flags, int payloadLength)
    {
        var p = new byte[40 + 20 + payloadLength];
        p[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(4), (ushort)(20 + payloadLength));
        p[6] = 6;
        p[7] = 64;
        IPAddress.Parse(source).GetAddressBytes().CopyTo(p, 8);
        IPAddress.Parse(destination).GetAddressBytes().CopyTo(p, 24);
        Tcp(p.AsSpan(40), sport, dport, seq, ack, flags);
        return p;
    }

    private static void Tcp(Span<byte> t, ushort sport, ushort dport, uint seq, uint ack, TcpFlags flags)
    {
        BinaryPrimitives.WriteUInt16BigEndian(t, sport);
        BinaryPrimitives.WriteUInt16BigEndian(t[2..], dport);
        BinaryPrimitives.WriteUInt32BigEndian(t[4..], seq);
        BinaryPrimitives.WriteUInt32BigEndian(t[8..], ack);
        t[12] = 5 << 4;
        t[13] = (byte)flags;
        BinaryPrimitives.WriteUInt16BigEndian(t[14..], 64240);
    }
}

/// <summary>A stream that keeps nothing: lets allocation tests run many writes without a growing buffer.</summary>
internal sealed class DiscardStream : Stream
{
    public long BytesWritten;
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => BytesWritten;
    public override long Position { get => BytesWritten; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => BytesWritten += count;
    public override void Write(ReadOnlySpan<byte> buffer) => BytesWritten += buffer.Length;
}
