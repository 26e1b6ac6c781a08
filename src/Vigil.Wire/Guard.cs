using System.Runtime.InteropServices;

namespace Vigil.Wire;

/// <summary>Constants of the guard's wire contract (bpf/include/vigil/guard.h).</summary>
public static class GuardConstants
{
    /// <summary><c>VIGIL_GUARD_MAX_RULES</c>: a rule set is a 64-bit mask.</summary>
    public const int MaxRules = 64;
    /// <summary><c>VIGIL_GUARD_MAX_CGROUP_LEVEL</c>: cgroup levels are bits of a 64-bit mask, root = 0.</summary>
    public const int MaxCgroupLevel = 63;
    /// <summary><c>VIGIL_GUARD_ALLOW_CHECK_GENERATION</c>.</summary>
    public const uint AllowCheckGeneration = 1;
    /// <summary><c>VIGIL_GUARD_SLOTS</c>: policy slots of the double-buffered maps.</summary>
    public const int Slots = 2;
    /// <summary><c>VIGIL_GUARD_POLICY_TEXT_MAX</c>: bytes of policy text per slot.</summary>
    public const int PolicyTextMax = 65536 - 8;
    /// <summary><c>VIGIL_GUARD_HTTP_MAX_BYTES</c>: the largest per-connection capture budget.</summary>
    public const int HttpMaxBytes = 4096;
    /// <summary><c>VIGIL_GUARD_HTTP_END</c>: the socket sent FIN or RST.</summary>
    public const byte HttpEnd = 1;
    /// <summary><c>VIGIL_GUARD_HTTP_BUDGET</c>: this record reaches the budget.</summary>
    public const byte HttpBudget = 2;
    /// <summary><c>VIGIL_GUARD_UNKNOWN_ID</c>: an event's uid or gid that the hook could not know.</summary>
    public const uint UnknownId = 0xffffffff;
}

/// <summary>Mirror of <c>enum vigil_guard_mode</c>.</summary>
public enum GuardMode : byte
{
    Audit = 1,
    Enforce = 2,
}

/// <summary>Mirror of <c>enum vigil_guard_protocol</c> (IPPROTO_* numbers).</summary>
public enum GuardProtocol : byte
{
    Tcp = 6,
    Udp = 17,
}

/// <summary>Mirror of <c>enum vigil_guard_principal_kind</c>.</summary>
public enum GuardPrincipalKind : byte
{
    Uid = 1,
    Gid = 2,
    Exe = 3,
    Cgroup = 4,
}

/// <summary>Mirror of <c>struct vigil_guard_config</c>: the config of one policy slot.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardConfig
{
    public ulong Rules;
    public ulong EnforceRules;
    public ulong AnyPortTcp;
    public ulong AnyPortUdp;
    public ulong UidRules;
    public ulong GidRules;
    public ulong ExeRules;
    public ulong CgroupRules;
    public ulong CgroupLevels;
    public uint Generation;
    public uint Pad;
}

/// <summary>Mirror of <c>struct vigil_guard_state</c>: the one entry of vigil_guard_state.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardState
{
    /// <summary>The slot the programs use (0 or 1).</summary>
    public uint Active;
    public uint Pad;
    public GuardConfig Slot0;
    public GuardConfig Slot1;

    public readonly GuardConfig Slot(int slot) => slot == 0 ? Slot0 : Slot1;

    public void SetSlot(int slot, in GuardConfig config)
    {
        if (slot == 0) Slot0 = config;
        else Slot1 = config;
    }
}

/// <summary>Mirror of <c>struct vigil_guard_dst_key</c>: an LPM key led by the policy slot.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct GuardDstKey
{
    public uint Prefixlen;
    public byte Slot;
    public byte Family;
    public fixed byte Addr[16];
    public fixed byte Pad[2];

    /// <summary>The key of <paramref name="key"/> (a policy prefix as the tcp sensor's LPM keys write it) in <paramref name="slot"/>.</summary>
    public static GuardDstKey InSlot(in LpmKey key, byte slot)
    {
        var k = new GuardDstKey { Prefixlen = key.Prefixlen + 8, Slot = slot, Family = key.Family };
        for (int i = 0; i < 16; i++) k.Addr[i] = key.Addr[i];
        return k;
    }
}

/// <summary>Mirror of <c>struct vigil_guard_policy_text</c>: user-space text describing one slot's policy.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct GuardPolicyText
{
    public uint Length;
    public uint Generation;
    public fixed byte Text[GuardConstants.PolicyTextMax];
}

/// <summary>Mirror of <c>struct vigil_guard_rules</c>: bit i = rule i.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardRules(ulong rules)
{
    public ulong Rules = rules;
}

/// <summary>Mirror of <c>struct vigil_guard_port_key</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct GuardPortKey : IEquatable<GuardPortKey>
{
    public ushort Port;
    public GuardProtocol Protocol;
    public byte Slot;
    public fixed byte Pad[4];

    public GuardPortKey(ushort port, GuardProtocol protocol)
    {
        Port = port;
        Protocol = protocol;
    }

    public readonly bool Equals(GuardPortKey other) => Port == other.Port && Protocol == other.Protocol && Slot == other.Slot;
    public override readonly bool Equals(object? obj) => obj is GuardPortKey k && Equals(k);
    public override readonly int GetHashCode() => HashCode.Combine(Port, Protocol, Slot);
    public override readonly string ToString() => $"{Protocol.ToString().ToLowerInvariant()}/{Port}";
}

/// <summary>Mirror of <c>struct vigil_guard_principal_key</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct GuardPrincipalKey : IEquatable<GuardPrincipalKey>
{
    public ulong Id;
    public uint Dev;
    public GuardPrincipalKind Kind;
    public byte Slot;
    public fixed byte Pad[2];

    public GuardPrincipalKey(GuardPrincipalKind kind, ulong id, uint dev = 0)
    {
        Kind = kind;
        Id = id;
        Dev = dev;
    }

    public readonly bool Equals(GuardPrincipalKey other) => Id == other.Id && Dev == other.Dev && Kind == other.Kind && Slot == other.Slot;
    public override readonly bool Equals(object? obj) => obj is GuardPrincipalKey k && Equals(k);
    public override readonly int GetHashCode() => HashCode.Combine(Id, Dev, Kind, Slot);
    public override readonly string ToString() => Kind == GuardPrincipalKind.Exe
        ? $"exe {Dev >> 20}:{Dev & 0xfffff} inode {Id}"
        : $"{Kind.ToString().ToLowerInvariant()} {Id}";
}

/// <summary>Mirror of <c>struct vigil_guard_allow_value</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardAllowValue(ulong rules, uint generation, uint flags)
{
    public ulong Rules = rules;
    public uint Generation = generation;
    public uint Flags = flags;
}

/// <summary>Mirror of <c>enum vigil_guard_hook</c>.</summary>
public enum GuardHook : byte
{
    Connect4 = 1,
    Connect6 = 2,
    Sendmsg4 = 3,
    Sendmsg6 = 4,
    Egress = 5,
    TcEgress = 6,
}

/// <summary>Mirror of <c>enum vigil_guard_verdict</c>.</summary>
public enum GuardVerdict : byte
{
    Audit = 1,
    Deny = 2,
}

/// <summary>Mirror of <c>enum vigil_guard_stat</c>: indices of the per-CPU counters.</summary>
public enum GuardStat
{
    Checked = 0,
    Unguarded = 1,
    Guarded = 2,
    Allowed = 3,
    Audited = 4,
    Denied = 5,
    Emitted = 6,
    RateLimited = 7,
    RingFull = 8,
    EgressPackets = 9,
    HttpTracked = 10,
    HttpNoStorage = 11,
    HttpRecords = 12,
    HttpLost = 13,
    HttpBytes = 14,
    TcPackets = 15,
    Unowned = 16,
    HostPackets = 17,
    TcResets = 18,
    Count = 19,
}

/// <summary>Mirror of <c>struct vigil_guard_settings</c>: load-time settings in .rodata.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardSettings
{
    public ulong RateWindowNs;
    public uint RateBurst;
    public uint WakeupBytes;
    /// <summary>HTTP audit: payload bytes captured per guarded connection; 0 = off, at most <see cref="GuardConstants.HttpMaxBytes"/>.</summary>
    public uint HttpBytes;
    public uint Pad;
}

/// <summary>Mirror of <c>struct vigil_guard_event</c>: one audit or deny decision.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct GuardEvent
{
    public EventHeader Hdr;
    public fixed byte Daddr[16];
    public ulong CgroupId;
    public ulong ExeIno;
    public ulong Violated;
    public uint ExeDev;
    public uint Pid;
    public uint Tgid;
    public uint Uid;
    public uint Gid;
    public uint Generation;
    public uint Suppressed;
    public ushort Dport;
    public byte Family;
    public byte Protocol;
    public byte Verdict;
    public byte Hook;
    public byte Rule;
    public byte Pad;
    public fixed byte Comm[16];
    public uint Pad2;
}

/// <summary>Mirror of <c>struct vigil_guard_http_meta</c>: who opened a guarded connection, as connect saw it.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct GuardHttpMeta
{
    public fixed byte Daddr[16];
    public ulong Cookie;
    public ulong CgroupId;
    public ulong ExeIno;
    public ulong Rules;
    public ulong Violated;
    public uint ExeDev;
    public uint Pid;
    public uint Tgid;
    public uint Uid;
    public uint Gid;
    public uint Generation;
    public ushort Dport;
    public byte Family;
    public byte Hook;
    public byte Verdict;
    public byte Rule;
    public fixed byte Pad[2];
    public fixed byte Comm[16];
}

/// <summary>Mirror of <c>struct vigil_guard_http_event</c>: one slice of a guarded connection's first
/// bytes; <see cref="DataLen"/> payload bytes follow it in the record.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardHttpEvent
{
    public EventHeader Hdr;
    public GuardHttpMeta Meta;
    public uint Offset;
    public ushort DataLen;
    public byte Flags;
    public byte Pad;
}

/// <summary>Program and map names of bpf/guard.bpf.c.</summary>
public static class GuardNames
{
    public const string Object = "guard.bpf.o";
    public const string ProgConnect4 = "vigil_guard_connect4";
    public const string ProgConnect6 = "vigil_guard_connect6";
    public const string ProgSendmsg4 = "vigil_guard_sendmsg4";
    public const string ProgSendmsg6 = "vigil_guard_sendmsg6";
    public const string ProgEgress = "vigil_guard_egress";
    public const string ProgTcEgress = "vigil_guard_tc_egress";
    public const string ProgTcEgressIp = "vigil_guard_tc_egress_ip";
    public const string MapState = "vigil_guard_state";
    public const string MapDst = "vigil_guard_dst";
    public const string MapPorts = "vigil_guard_ports";
    public const string MapAllow = "vigil_guard_allow";
    public const string MapEvents = "vigil_guard_events";
    public const string MapStats = "vigil_guard_stats";
    public const string MapRate = "vigil_guard_rate";
    public const string MapPolicy = "vigil_guard_policy";
    public const string MapHttpSockets = "vigil_guard_http_sk";
    public const string Settings = "vigil_guard_cfg";

    /// <summary>The cgroup enforcer's programs, in attach order (connect and send first, the backstop last).</summary>
    public static readonly string[] CgroupPrograms = [ProgConnect4, ProgConnect6, ProgSendmsg4, ProgSendmsg6, ProgEgress];
    /// <summary>The TC enforcer's programs: for Ethernet framing, and for interfaces without a link-layer header.</summary>
    public static readonly string[] TcPrograms = [ProgTcEgress, ProgTcEgressIp];
    public static readonly string[] Programs = [.. CgroupPrograms, .. TcPrograms];
    public static readonly string[] Maps = [MapState, MapDst, MapPorts, MapAllow, MapEvents, MapStats, MapRate, MapPolicy, MapHttpSockets];
}
