using System.Runtime.InteropServices;

namespace Vigil.Wire;

/// <summary>Mirror of <c>enum vigil_event_kind</c> (bpf/include/vigil/common.h).</summary>
public enum EventKind : ushort
{
    TcpPacket = 1,
    /// <summary><c>struct vigil_guard_event</c> (guard.h).</summary>
    Guard = 2,
    /// <summary><c>struct vigil_guard_http_event</c> + payload bytes (guard.h, HTTP audit).</summary>
    GuardHttp = 3,
}

/// <summary>Constants of the wire contract.</summary>
public static class WireConstants
{
    /// <summary><c>VIGIL_WIRE_VERSION</c>.</summary>
    public const ushort Version = 1;
    /// <summary><c>VIGIL_TCP_MAX_SNAPLEN</c>.</summary>
    public const int TcpMaxSnaplen = 256;
}

/// <summary>Mirror of <c>struct vigil_event_header</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct EventHeader
{
    public ushort Kind;
    public ushort Version;
    public uint Size;
    public ulong TsNs;
}

/// <summary>Mirror of <c>struct vigil_owner</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct Owner
{
    public ulong CgroupId;
    public uint Pid;
    public uint Uid;
    public uint Gid;
    public uint Known;
    public fixed byte Comm[16];
}

/// <summary>Mirror of <c>struct vigil_lpm_key</c>: family byte, then the address (IPv4 as ::ffff:a.b.c.d);
/// the prefix length counts from the family byte.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct LpmKey
{
    public uint Prefixlen;
    public byte Family;
    public fixed byte Addr[16];
    public fixed byte Pad[3];
}
