using Vigil.Interop;
using Vigil.Wire;

namespace Vigil.Sensors.Guard;

/// <summary>An interface the TC enforcer guards, with the program that parses its framing.</summary>
public readonly record struct TcTarget(string Name, int Ifindex, ushort LinkType, string Program)
{
    // ARPHRD_* (include/uapi/linux/if_arp.h).
    private const ushort Ether = 1, Loopback = 772, None = 65534, RawIp = 519, Tunnel = 768, Tunnel6 = 769, Sit = 776;

    /// <summary>The program for a link type: Ethernet framing (loopback uses it too), or packets that start at
    /// the IP header (devices with no link-layer header: tun, WireGuard, IP-in-IP and SIT tunnels). Null for
    /// other framings, which the enforcer does not parse.</summary>
    public static string? ProgramFor(ushort linkType) => linkType switch
    {
        Ether or Loopback => GuardNames.ProgTcEgress,
        None or RawIp or Tunnel or Tunnel6 or Sit => GuardNames.ProgTcEgressIp,
        _ => null,
    };

    /// <summary>Resolves interface names of this network namespace; every error names the interface.</summary>
    public static IReadOnlyList<TcTarget> Resolve(IReadOnlyList<string> names)
    {
        if (names.Count == 0)
            throw new ArgumentException("the tc enforcer needs at least one --iface (the interfaces whose egress to guard)");
        var all = NetworkNamespace.Interfaces();
        var targets = new List<TcTarget>();
        foreach (var name in names.Distinct())
        {
            var match = all.FirstOrDefault(i => i.Name == name);
            if (match.Name is null)
                throw new ArgumentException($"unknown interface '{name}' (have: {string.Join(", ", all.Select(i => i.Name))})");
            ushort type = NetworkNamespace.LinkType(name);
            var program = ProgramFor(type)
                ?? throw new ArgumentException($"interface '{name}' has link type {type} (ARPHRD), which the tc enforcer does not parse: " +
                                               "it guards Ethernet, loopback and IP-only devices (tun, WireGuard, IP-in-IP)");
            targets.Add(new TcTarget(name, match.Index, type, program));
        }
        return targets;
    }
}
