using System.Runtime.InteropServices;

namespace Vigil.Wire;

/// <summary>Mirror of <c>enum vigil_tcp_hook</c> (bpf/include/vigil/tcp.h).</summary>
public enum TcpHook : byte
{
    Kprobe = 1,
    Fentry = 2,
    Tc = 3,
    Cgroup = 4,
}

/// <summary>Mirror of <c>enum vigil_link_type</c>.</summary>
public enum LinkType : byte
{
    Ethernet = 1,
    RawIp = 2,
}

/// <summary>Mirror of <c>enum vigil_tcp_flag</c>.</summary>
[Flags]
public enum TcpFlags : byte
{
    None = 0,
    Fin = 0x01,
    Syn = 0x02,
    Rst = 0x04,
    Psh = 0x08,
    Ack = 0x10,
    Urg = 0x20,
    Ece = 0x40,
    Cwr = 0x80,
}

/// <summary>Mirror of <c>enum vigil_tcp_stat</c>: indices of the per-CPU counters.</summary>
public enum TcpStat
{
    Packets = 0,
    NotTcp = 1,
    Malformed = 2,
    Seen = 3,
    Filtered = 4,
    Sampled = 5,
    Emitted = 6,
    RingFull = 7,
    Aggregated = 8,
    FlowFull = 9,
    Count = 10,
}

/// <summary>Mirror of <c>struct vigil_tcp_config</c> (the program's .rodata).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct TcpConfig
{
    public uint Snaplen;
    public uint SampleEvery;
    public uint WakeupBytes;
    public uint NetnsIno;
    public byte Families;
    public byte FlagsAny;
    public byte FilterPorts;
    public byte FilterSrc;
    public byte FilterDst;
    public byte FlowsOnly;
    public fixed byte Pad[2];
}

/// <summary>Mirror of <c>struct vigil_tcp_event</c>; <see cref="CapLen"/> captured bytes follow it.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct TcpEvent
{
    public EventHeader Hdr;
    public fixed byte Saddr[16];
    public fixed byte Daddr[16];
    public ushort Sport;
    public ushort Dport;
    public uint Seq;
    public uint Ack;
    public ushort Window;
    public byte Flags;
    public byte Family;
    public uint Ifindex;
    public uint PayloadLen;
    public uint IpLen;
    public uint NetnsIno;
    public ushort CapLen;
    public byte Hook;
    public byte LinkType;
    public uint Pad;
    public Owner Owner;
}

/// <summary>Mirror of <c>struct vigil_flow_key</c>: local = destination of incoming packets.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct FlowKey
{
    public fixed byte Laddr[16];
    public fixed byte Raddr[16];
    public ushort Lport;
    public ushort Rport;
    public uint NetnsIno;
}

/// <summary>Mirror of <c>struct vigil_flow_value</c>. Times are kernel jiffies (see <c>FlowClock</c>).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FlowValue
{
    public ulong Packets;
    public ulong Bytes;
    public ulong FirstJiffies;
    public ulong LastJiffies;
    public uint LastSeq;
    public uint FlagsSeen;
}

/// <summary>Mirror of <c>struct vigil_flow_pending</c>: a CPU's not yet flushed packets of one flow
/// (flows-only mode). <c>Value.Packets == 0</c>: empty.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FlowPending
{
    public FlowKey Key;
    public FlowValue Value;
}

/// <summary>Program and map names of bpf/tcp_inspect.bpf.c: string contracts, tested against the embedded object.</summary>
public static class TcpNames
{
    public const string Object = "tcp_inspect.bpf.o";
    public const string ProgTc = "vigil_tcp_tc";
    public const string ProgCgroup = "vigil_tcp_cgroup";
    public const string ProgKprobeV4 = "vigil_tcp_kprobe_v4";
    public const string ProgKprobeV6 = "vigil_tcp_kprobe_v6";
    public const string ProgFentryV4 = "vigil_tcp_fentry_v4";
    public const string ProgFentryV6 = "vigil_tcp_fentry_v6";
    public const string ProgSockState = "vigil_tcp_sock_state";
    public const string ProgClock = "vigil_tcp_clock";
    public const string MapEvents = "vigil_tcp_events";
    public const string MapStats = "vigil_tcp_stats";
    public const string MapFlows = "vigil_tcp_flows";
    public const string MapFlowSlots = "vigil_tcp_flow_slots";
    public const string MapOwners = "vigil_tcp_owners";
    public const string MapPending = "vigil_tcp_pending";
    public const string MapListeners = "vigil_tcp_listeners";
    public const string MapPorts = "vigil_tcp_ports";
    public const string MapSrc = "vigil_tcp_src";
    public const string MapDst = "vigil_tcp_dst";
    public const string Config = "vigil_tcp_cfg";

    public static readonly string[] Programs = [ProgTc, ProgCgroup, ProgKprobeV4, ProgKprobeV6, ProgFentryV4, ProgFentryV6, ProgSockState, ProgClock];
    public static readonly string[] Maps = [MapEvents, MapStats, MapFlows, MapFlowSlots, MapOwners, MapPending, MapListeners, MapPorts, MapSrc, MapDst];
}
