using System.Net;
using Vigil.Wire;

namespace Vigil.Core.Policy;

/// <summary>A validated guard policy: every name resolved, every reference checked. Produced only by
/// <see cref="PolicyLoader"/>; compiled to map entries by <see cref="PolicyCompiler"/>.</summary>
public sealed record GuardPolicy(string Source, int Version, IReadOnlyList<EndpointSet> EndpointSets, IReadOnlyList<GuardRule> Rules)
{
    public EndpointSet EndpointSet(string name) => EndpointSets.First(s => s.Name == name);
}

/// <summary>Where something was written: file position and field path (e.g. rules[1].allow.users[0]).</summary>
public readonly record struct PolicyLocation(SourcePosition Position, string Field)
{
    public override string ToString() => $"{Position}: {Field}";
}

[Flags]
public enum GuardProtocols : byte
{
    None = 0,
    Tcp = 1,
    Udp = 2,
    All = Tcp | Udp,
}

/// <summary>A named list of destinations: addresses or prefixes, with optional ports and protocols.</summary>
public sealed record EndpointSet(
    string Name,
    string? Description,
    IReadOnlyList<PolicyPrefix> Addresses,
    IReadOnlyList<ushort>? Ports,
    GuardProtocols Protocols,
    PolicyLocation Location)
{
    /// <summary>True when no port list was given: every port of the protocols is guarded.</summary>
    public bool AllPorts => Ports is null;
}

/// <summary>An address prefix as written and as the kernel will match it.</summary>
public sealed record PolicyPrefix(string Written, IpPrefix Prefix, PolicyLocation Location);

/// <summary>Who may connect to an endpoint set; everyone else is refused (enforce) or reported (audit).</summary>
public sealed record GuardRule(
    int Id,
    string Name,
    string? Description,
    string EndpointSetName,
    GuardMode Mode,
    AllowList Allow,
    PolicyLocation Location);

public sealed record AllowList(
    IReadOnlyList<UserPrincipal> Users,
    IReadOnlyList<GroupPrincipal> Groups,
    IReadOnlyList<ExecutablePrincipal> Executables,
    IReadOnlyList<CgroupPrincipal> Cgroups)
{
    public static AllowList Nobody { get; } = new([], [], [], []);
    public int Count => Users.Count + Groups.Count + Executables.Count + Cgroups.Count;
}

/// <summary>A user as written (name or uid) and the uid it resolved to.</summary>
public sealed record UserPrincipal(string Written, uint Uid, PolicyLocation Location);

/// <summary>A group as written (name or gid) and the gid it resolved to. Primary and supplementary groups both count.</summary>
public sealed record GroupPrincipal(string Written, uint Gid, PolicyLocation Location);

/// <summary>An executable by absolute path, and the file it resolved to when the policy was loaded.</summary>
public sealed record ExecutablePrincipal(string Path, ExecutableIdentity Identity, PolicyLocation Location);

/// <summary>A cgroup v2 path (relative to the cgroup2 mount) that allows itself and every cgroup below it.
/// <see cref="Id"/> is null when the cgroup does not exist at load time.</summary>
public sealed record CgroupPrincipal(string Path, int Level, ulong? Id, PolicyLocation Location);

/// <summary>What the kernel can see of an executable at connect time: the inode of the binary.
/// <paramref name="Generation"/> is null when the file system does not report one.</summary>
public sealed record ExecutableIdentity(string ResolvedPath, uint DevMajor, uint DevMinor, ulong Inode, uint? Generation)
{
    /// <summary>The superblock device as the kernel encodes it (MKDEV: major &lt;&lt; 20 | minor), which is
    /// what <c>inode->i_sb->s_dev</c> holds; stat()'s st_dev uses a different encoding.</summary>
    public uint KernelDev => (DevMajor << 20) | (DevMinor & 0xfffff);
}

/// <summary>An IPv4 or IPv6 prefix with no host bits set. IPv4 addresses (and IPv4-mapped IPv6 prefixes
/// of /96 and longer) are IPv4 prefixes: the kernel judges ::ffff:a.b.c.d destinations as IPv4.</summary>
public readonly record struct IpPrefix(IPAddress Network, int Length)
{
    public bool IsV4 => Network.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork;
    public int MaxLength => IsV4 ? 32 : 128;

    /// <summary>The 16 address bytes of the LPM key: IPv4 as ::ffff:a.b.c.d.</summary>
    public byte[] KeyBytes() => (IsV4 ? Network.MapToIPv6() : Network).GetAddressBytes();

    /// <summary>True when <paramref name="other"/> lies inside this prefix (same family, at least as long).</summary>
    public bool Contains(IpPrefix other)
    {
        if (IsV4 != other.IsV4 || other.Length < Length) return false;
        var a = Network.GetAddressBytes();
        var b = other.Network.GetAddressBytes();
        for (int bit = 0; bit < Length; bit++)
        {
            int mask = 0x80 >> (bit % 8);
            if ((a[bit / 8] & mask) != (b[bit / 8] & mask)) return false;
        }
        return true;
    }

    public override string ToString() => $"{Network}/{Length}";
}
