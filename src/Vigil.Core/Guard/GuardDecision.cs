using Vigil.Core.Net;
using Vigil.Core.Tcp;
using Vigil.Wire;

namespace Vigil.Core.Guard;

/// <summary>One audit or deny decision of the guard, decoded from a <see cref="GuardEvent"/> record.
/// A value type: decoding allocates nothing.</summary>
public struct GuardDecision
{
    /// <summary>CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns); see <see cref="Pipeline.TimeBase"/>.</summary>
    public ulong TimestampNs;
    public GuardVerdict Verdict;
    public GuardHook Hook;
    /// <summary>Thread id; 0 when the hook has no task (the packet hooks: egress, tc-egress).</summary>
    public uint Pid;
    /// <summary>Process id; 0 when the hook has no task (the packet hooks).</summary>
    public uint Tgid;
    /// <summary>Null when the packet had no local owner (forwarded, tc-egress).</summary>
    public uint? Uid;
    /// <summary>Null when unknown (a packet hook that did not read the socket's credentials, or no owner).</summary>
    public uint? Gid;
    public Comm16 Comm;
    /// <summary>Executable inode; 0 = unknown.</summary>
    public ulong ExeInode;
    /// <summary>Executable's superblock device, kernel MKDEV encoding (major &lt;&lt; 20 | minor).</summary>
    public uint ExeDev;
    public ulong CgroupId;
    public IpAddress16 Destination;
    /// <summary>4 or 6, as judged: an IPv4-mapped IPv6 destination is 4.</summary>
    public byte Family;
    public ushort Port;
    /// <summary>IPPROTO_* (6 TCP, 17 UDP; others from raw sockets).</summary>
    public byte Protocol;
    /// <summary>The lowest violated rule id.</summary>
    public byte Rule;
    /// <summary>Every violated rule (bit i = rule i).</summary>
    public ulong Violated;
    public uint Generation;
    /// <summary>Decisions for the same (uid, destination) not reported since the previous event.</summary>
    public uint Suppressed;

    public readonly bool TaskKnown => Tgid != 0;
    public readonly uint ExeDevMajor => ExeDev >> 20;
    public readonly uint ExeDevMinor => ExeDev & 0xfffff;
}
