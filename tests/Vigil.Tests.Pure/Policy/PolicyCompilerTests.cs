using Vigil.Core.Policy;
using Vigil.Wire;

namespace Vigil.Tests.Pure.Policy;

public class PolicyCompilerTests
{
    private static CompiledGuardPolicy Compile(string yaml)
    {
        var result = PolicyLoaderTests.Load(yaml);
        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        return PolicyCompiler.Compile(result.Policy!);
    }

    /// <summary>"4 169.254.169.254/32" or "6 fd00::/8": family and the prefix the key encodes (checks the
    /// LPM convention: IPv4 as ::ffff:a.b.c.d, prefixlen counted from the family byte).</summary>
    private static unsafe string KeyText(LpmKey key)
    {
        var bytes = new byte[16];
        for (int i = 0; i < 16; i++) bytes[i] = key.Addr[i];
        var addr = new System.Net.IPAddress(bytes);
        return key.Family == 4
            ? $"4 {addr.MapToIPv4()}/{key.Prefixlen - 8 - 96}"
            : $"6 {addr}/{key.Prefixlen - 8}";
    }

    private static List<string> Destinations(CompiledGuardPolicy c) =>
        c.Destinations.Select(d => $"{KeyText(d.Key)} rules={d.Value.Rules:x}").ToList();

    [Fact]
    public unsafe void Ipv4AndIpv6AddressesBecomeLpmKeysWithTheRuleBit()
    {
        var c = Compile("""
            version: 1
            endpoint_sets:
              - name: m
                addresses: [169.254.169.254, fd00:ec2::254, 10.0.0.0/8, "fd00::/8"]
            rules:
              - name: r
                endpoint_set: m
                mode: enforce
                allow: {}
            """);
        Assert.Equal(["4 10.0.0.0/8 rules=1", "4 169.254.169.254/32 rules=1", "6 fd00::/8 rules=1", "6 fd00:ec2::254/128 rules=1"], Destinations(c));
        // The raw key of an IPv4 address: family 4, ::ffff:a.b.c.d, 8 + 96 + 32 bits.
        var v4 = c.Destinations[1].Key;
        Assert.Equal((4, 136u), (v4.Family, v4.Prefixlen));
        byte[] expected = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 169, 254, 169, 254];
        for (int i = 0; i < 16; i++) Assert.Equal(expected[i], v4.Addr[i]);
        var v6 = c.Destinations[3].Key;
        Assert.Equal((6, 136u), (v6.Family, v6.Prefixlen));
    }

    [Fact]
    public void AnIpv4MappedIpv6PrefixIsCompiledAsIpv4SoTheKernelJudgesMappedDestinationsAsIpv4()
    {
        var c = Compile("""
            version: 1
            endpoint_sets:
              - name: m
                addresses: ["::ffff:169.254.169.254", "::ffff:10.0.0.0/104", 169.254.169.254]
            rules:
              - name: r
                endpoint_set: m
                mode: enforce
                allow: {}
            """);
        // ::ffff:169.254.169.254 and 169.254.169.254 are one key; no family-6 key for the mapped range exists,
        // because the kernel looks up a ::ffff:a.b.c.d destination with family 4.
        Assert.Equal(["4 10.0.0.0/8 rules=1", "4 169.254.169.254/32 rules=1"], Destinations(c));
    }

    [Fact]
    public void LongerPrefixesCarryTheRulesOfEveryPrefixThatCoversThem()
    {
        var c = Compile("""
            version: 1
            endpoint_sets:
              - name: wide
                addresses: [169.254.0.0/16, "fd00::/8"]
              - name: imds
                addresses: [169.254.169.254, fd00:ec2::254]
              - name: other
                addresses: [169.254.169.254]
            rules:
              - name: r-wide
                endpoint_set: wide
                mode: audit
                allow: {}
              - name: r-imds
                endpoint_set: imds
                mode: enforce
                allow: {}
              - name: r-other
                endpoint_set: other
                mode: enforce
                allow: {}
            """);
        Assert.Equal(
            ["4 169.254.0.0/16 rules=1", "4 169.254.169.254/32 rules=7", "6 fd00::/8 rules=1", "6 fd00:ec2::254/128 rules=3"],
            Destinations(c));
        Assert.Equal(0b111UL, c.Config.Rules);
        Assert.Equal(0b110UL, c.Config.EnforceRules);
        Assert.Equal(["0 r-wide wide Audit", "1 r-imds imds Enforce", "2 r-other other Enforce"],
            c.Rules.Select(r => $"{r.Id} {r.Name} {r.EndpointSet} {r.Mode}"));
    }

    [Fact]
    public void PortsAndProtocolsBecomeAnyPortMasksOrPortEntries()
    {
        var c = Compile("""
            version: 1
            endpoint_sets:
              - name: all
                addresses: [169.254.169.254]
              - name: web
                addresses: [169.254.169.254]
                ports: [80, 443]
                protocols: [tcp]
              - name: dns
                addresses: [169.254.169.253]
                ports: [53, 80]
              - name: udp-any
                addresses: [100.100.100.200]
                protocols: [udp]
            rules:
              - { name: r0, endpoint_set: all, mode: audit, allow: {} }
              - { name: r1, endpoint_set: web, mode: audit, allow: {} }
              - { name: r2, endpoint_set: dns, mode: audit, allow: {} }
              - { name: r3, endpoint_set: udp-any, mode: audit, allow: {} }
            """);
        Assert.Equal(0b0001UL, c.Config.AnyPortTcp);
        Assert.Equal(0b1001UL, c.Config.AnyPortUdp);
        Assert.Equal(["tcp/53 rules=4", "tcp/80 rules=6", "tcp/443 rules=2", "udp/53 rules=4", "udp/80 rules=4"],
            c.Ports.Select(p => $"{p.Key} rules={p.Value.Rules:x}"));
    }

    [Fact]
    public void PrincipalsBecomeAllowEntriesWithTheRulesThatAllowThem()
    {
        var c = Compile("""
            version: 1
            endpoint_sets:
              - { name: a, addresses: [169.254.169.254] }
              - { name: b, addresses: [fd00:ec2::254] }
            rules:
              - name: ra
                endpoint_set: a
                mode: enforce
                allow:
                  users: [root, alice]
                  groups: [adm]
                  executables: [/usr/bin/cloud-init, /usr/bin/python3]
                  cgroups: [/system.slice/cloud-init.service, /kubepods.slice/kubepods-burstable.slice/pod-agent, /system.slice/absent.service]
              - name: rb
                endpoint_set: b
                mode: audit
                allow:
                  users: [alice, 2000]
                  groups: [990]
                  executables: [/usr/bin/python3.11, /opt/agent/bin/agent]
                  cgroups: [/system.slice]
            """);
        Assert.Equal(
        [
            "uid 0 rules=1 gen=0 flags=0",
            "uid 1000 rules=3 gen=0 flags=0",
            "uid 2000 rules=2 gen=0 flags=0",
            "gid 4 rules=1 gen=0 flags=0",
            "gid 990 rules=2 gen=0 flags=0",
            "exe 254:1 inode 131077 rules=1 gen=3000000001 flags=1", // cloud-init: ext4-like, generation checked
            "exe 254:1 inode 131999 rules=3 gen=0 flags=0",          // python3 → python3.11: one inode, both rules; no generation
            "exe 259:291 inode 42 rules=2 gen=7 flags=1",
            "cgroup 50 rules=2 gen=0 flags=0",
            "cgroup 7001 rules=1 gen=0 flags=0",
            "cgroup 9100 rules=1 gen=0 flags=0",                     // the absent cgroup has no entry
        ], c.Allow.Select(a => $"{a.Key} rules={a.Value.Rules:x} gen={a.Value.Generation} flags={a.Value.Flags}"));
        var exe = c.Allow.First(a => a.Key.Kind == GuardPrincipalKind.Exe && a.Key.Id == 42).Key;
        Assert.Equal((259u << 20) | 0x123u, exe.Dev); // MKDEV, as inode->i_sb->s_dev holds it
        Assert.Equal((0b11UL, 0b11UL, 0b11UL, 0b11UL), (c.Config.UidRules, c.Config.GidRules, c.Config.ExeRules, c.Config.CgroupRules));
        Assert.Equal((1UL << 1) | (1UL << 2) | (1UL << 3), c.Config.CgroupLevels); // /system.slice = 1, …/cloud-init.service = 2, pod = 3
        Assert.Equal(0b01UL, c.Config.EnforceRules);
    }

    [Fact]
    public void ConfigMasksNameOnlyTheKindsOfPrincipalARuleUses()
    {
        var c = Compile("""
            version: 1
            endpoint_sets:
              - { name: a, addresses: [169.254.169.254] }
              - { name: b, addresses: [169.254.170.23] }
            rules:
              - { name: ra, endpoint_set: a, mode: enforce, allow: { users: [root] } }
              - { name: rb, endpoint_set: b, mode: enforce, allow: {} }
            """);
        Assert.Equal((1UL, 0UL, 0UL, 0UL, 0UL), (c.Config.UidRules, c.Config.GidRules, c.Config.ExeRules, c.Config.CgroupRules, c.Config.CgroupLevels));
        Assert.Equal(0u, c.Config.Generation); // set by the loader of the next slice
    }

    [Fact]
    public void TheDefaultPolicyCompilesToTenPrefixesAndRootAllowed()
    {
        var c = PolicyCompiler.Compile(DefaultPolicy.Load(new FakeHostPrincipals()).Policy!);
        Assert.Equal(
        [
            "4 100.100.100.200/32 rules=1", "4 169.254.42.42/32 rules=1", "4 169.254.169.254/32 rules=1", "4 169.254.170.23/32 rules=1",
            "6 fd00:42::42/128 rules=1", "6 fd00:c1::a9fe:a9fe/128 rules=1", "6 fd00:ec2::23/128 rules=1",
            "6 fd00:ec2::254/128 rules=1", "6 fd00:a9fe:a9fe::1/128 rules=1", "6 fe80::a9fe:a9fe/128 rules=1",
        ], Destinations(c));
        Assert.Empty(c.Ports);
        Assert.Equal((1UL, 1UL, 0UL, 1UL, 1UL), (c.Config.AnyPortTcp, c.Config.AnyPortUdp, c.Config.EnforceRules, c.Config.Rules, c.Config.UidRules));
        Assert.Equal(["uid 0 rules=1"], c.Allow.Select(a => $"{a.Key} rules={a.Value.Rules:x}"));
    }
}
