using Vigil.Wire;

namespace Vigil.Core.Policy;

/// <summary>One entry of a BPF map.</summary>
public readonly record struct MapEntry<TKey, TValue>(TKey Key, TValue Value);

/// <summary>What a rule id stands for; events carry the id, user space shows the name.</summary>
public sealed record CompiledRule(int Id, string Name, string EndpointSet, GuardMode Mode);

/// <summary>A policy as the kernel holds it (bpf/include/vigil/guard.h): the config entry and the contents
/// of vigil_guard_dst, vigil_guard_ports and vigil_guard_allow. Plain data; loading it into maps is the
/// enforcement sensor's job.</summary>
public sealed record CompiledGuardPolicy(
    GuardConfig Config,
    IReadOnlyList<CompiledRule> Rules,
    IReadOnlyList<MapEntry<LpmKey, GuardRules>> Destinations,
    IReadOnlyList<MapEntry<GuardPortKey, GuardRules>> Ports,
    IReadOnlyList<MapEntry<GuardPrincipalKey, GuardAllowValue>> Allow)
{
    public int AllowCount(GuardPrincipalKind kind) => Allow.Count(e => e.Key.Kind == kind);
}

public static class PolicyCompiler
{
    public static CompiledGuardPolicy Compile(GuardPolicy policy)
    {
        var config = new GuardConfig();
        var ruleInfo = new List<CompiledRule>();
        var prefixes = new List<(IpPrefix Prefix, ulong Bit)>();
        var ports = new Dictionary<GuardPortKey, ulong>();
        var allow = new Dictionary<GuardPrincipalKey, GuardAllowValue>();

        foreach (var rule in policy.Rules)
        {
            ulong bit = 1UL << rule.Id;
            var set = policy.EndpointSet(rule.EndpointSetName);
            ruleInfo.Add(new CompiledRule(rule.Id, rule.Name, set.Name, rule.Mode));
            config.Rules |= bit;
            if (rule.Mode == GuardMode.Enforce) config.EnforceRules |= bit;

            foreach (var address in set.Addresses) prefixes.Add((address.Prefix, bit));

            foreach (var (flag, protocol) in new[] { (GuardProtocols.Tcp, GuardProtocol.Tcp), (GuardProtocols.Udp, GuardProtocol.Udp) })
            {
                if ((set.Protocols & flag) == 0) continue;
                if (set.AllPorts)
                {
                    if (protocol == GuardProtocol.Tcp) config.AnyPortTcp |= bit;
                    else config.AnyPortUdp |= bit;
                    continue;
                }
                foreach (var port in set.Ports!)
                {
                    var key = new GuardPortKey(port, protocol);
                    ports[key] = ports.GetValueOrDefault(key) | bit;
                }
            }

            foreach (var user in rule.Allow.Users) Add(new GuardPrincipalKey(GuardPrincipalKind.Uid, user.Uid), bit);
            foreach (var group in rule.Allow.Groups) Add(new GuardPrincipalKey(GuardPrincipalKind.Gid, group.Gid), bit);
            foreach (var exe in rule.Allow.Executables)
            {
                var id = exe.Identity;
                var key = new GuardPrincipalKey(GuardPrincipalKind.Exe, id.Inode, id.KernelDev);
                var value = allow.GetValueOrDefault(key);
                value.Rules |= bit;
                value.Generation = id.Generation ?? 0;
                value.Flags = id.Generation is null ? 0 : GuardConstants.AllowCheckGeneration;
                allow[key] = value;
            }
            foreach (var cgroup in rule.Allow.Cgroups)
            {
                if (cgroup.Id is not { } cgroupId) continue; // absent now: no id to match (the loader re-resolves)
                Add(new GuardPrincipalKey(GuardPrincipalKind.Cgroup, cgroupId), bit);
                config.CgroupLevels |= 1UL << cgroup.Level;
            }
        }

        foreach (var (key, value) in allow)
        {
            switch (key.Kind)
            {
                case GuardPrincipalKind.Uid: config.UidRules |= value.Rules; break;
                case GuardPrincipalKind.Gid: config.GidRules |= value.Rules; break;
                case GuardPrincipalKind.Exe: config.ExeRules |= value.Rules; break;
                case GuardPrincipalKind.Cgroup: config.CgroupRules |= value.Rules; break;
            }
        }

        return new CompiledGuardPolicy(
            config,
            ruleInfo,
            Destinations(prefixes),
            ports.OrderBy(p => p.Key.Protocol).ThenBy(p => p.Key.Port).Select(p => new MapEntry<GuardPortKey, GuardRules>(p.Key, new GuardRules(p.Value))).ToList(),
            allow.OrderBy(a => a.Key.Kind).ThenBy(a => a.Key.Dev).ThenBy(a => a.Key.Id).Select(a => new MapEntry<GuardPrincipalKey, GuardAllowValue>(a.Key, a.Value)).ToList());

        void Add(GuardPrincipalKey key, ulong bit)
        {
            var value = allow.GetValueOrDefault(key);
            value.Rules |= bit;
            allow[key] = value;
        }
    }

    /// <summary>One LPM entry per distinct prefix. An LPM trie answers with the longest match only, so each
    /// entry carries the rules of every prefix that covers it: a /32 inside a guarded /16 still answers
    /// for the /16's rules.</summary>
    private static List<MapEntry<LpmKey, GuardRules>> Destinations(List<(IpPrefix Prefix, ulong Bit)> prefixes)
    {
        var distinct = prefixes.Select(p => p.Prefix).Distinct()
            .OrderBy(p => p.IsV4 ? 0 : 1)
            .ThenBy(p => Convert.ToHexString(p.KeyBytes()), StringComparer.Ordinal)
            .ThenBy(p => p.Length)
            .ToList();
        return distinct.Select(p =>
        {
            ulong rules = 0;
            foreach (var (covering, bit) in prefixes)
                if (covering.Contains(p)) rules |= bit;
            return new MapEntry<LpmKey, GuardRules>(ToLpmKey(p), new GuardRules(rules));
        }).ToList();
    }

    /// <summary>The key of vigil_guard_dst: family byte, then the address (IPv4 as ::ffff:a.b.c.d); the
    /// prefix length counts from the family byte (struct vigil_lpm_key).</summary>
    public static unsafe LpmKey ToLpmKey(IpPrefix prefix)
    {
        var key = new LpmKey
        {
            Family = (byte)(prefix.IsV4 ? 4 : 6),
            Prefixlen = (uint)(8 + (prefix.IsV4 ? 96 + prefix.Length : prefix.Length)),
        };
        var bytes = prefix.KeyBytes();
        for (int i = 0; i < 16; i++) key.Addr[i] = bytes[i];
        return key;
    }
}
