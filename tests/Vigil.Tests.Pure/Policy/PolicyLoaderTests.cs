using Vigil.Core.Policy;
using Vigil.Wire;

namespace Vigil.Tests.Pure.Policy;

public class PolicyLoaderTests
{
    private static readonly FakeHostPrincipals Host = new();

    internal static PolicyLoadResult Load(string yaml) => PolicyLoader.Load(yaml, "policy.yaml", Host);

    private static List<string> Errors(string yaml) => Load(yaml).Errors.Select(d => d.ToString()).ToList();

    private const string Valid = """
        version: 1
        endpoint_sets:
          - name: metadata
            addresses: [169.254.169.254, fd00:ec2::254]
        rules:
          - name: only-root
            endpoint_set: metadata
            mode: enforce
            allow:
              users: [root]
        """;

    [Fact]
    public void AValidPolicyLoadsWithEveryFieldResolved()
    {
        var result = Load("""
            version: 1
            endpoint_sets:
              - name: metadata
                description: the IMDS
                addresses:
                  - 169.254.169.254
                  - fd00:ec2::/32
                ports: [80, 8080]
                protocols: [tcp]
            rules:
              - name: agents
                description: cloud agents only
                endpoint_set: metadata
                mode: audit
                allow:
                  users: [root, 1000, "4242"]
                  groups: [adm, 27]
                  executables: [/usr/bin/cloud-init]
                  cgroups: [/system.slice/cloud-init.service]
            """);
        Assert.Empty(result.Diagnostics);
        var policy = Assert.IsType<GuardPolicy>(result.Policy);
        var set = Assert.Single(policy.EndpointSets);
        Assert.Equal("metadata", set.Name);
        Assert.Equal("the IMDS", set.Description);
        Assert.Equal(["169.254.169.254/32", "fd00:ec2::/32"], set.Addresses.Select(a => a.Prefix.ToString()));
        Assert.Equal([(ushort)80, (ushort)8080], set.Ports!);
        Assert.Equal(GuardProtocols.Tcp, set.Protocols);
        Assert.Equal(new SourcePosition(7, 9), set.Addresses[1].Location.Position);
        Assert.Equal("endpoint_sets[0].addresses[1]", set.Addresses[1].Location.Field);

        var rule = Assert.Single(policy.Rules);
        Assert.Equal((0, "agents", "metadata", GuardMode.Audit), (rule.Id, rule.Name, rule.EndpointSetName, rule.Mode));
        Assert.Equal([0u, 1000u, 4242u], rule.Allow.Users.Select(u => u.Uid));
        Assert.Equal(["root", "1000", "4242"], rule.Allow.Users.Select(u => u.Written));
        Assert.Equal([4u, 27u], rule.Allow.Groups.Select(g => g.Gid));
        Assert.Equal(131077UL, Assert.Single(rule.Allow.Executables).Identity.Inode);
        var cgroup = Assert.Single(rule.Allow.Cgroups);
        Assert.Equal(("/system.slice/cloud-init.service", 2, (ulong?)7001), (cgroup.Path, cgroup.Level, cgroup.Id));
        Assert.Equal(new PolicyLocation(new SourcePosition(19, 17), "rules[0].allow.cgroups[0]"), cgroup.Location);
    }

    [Fact]
    public void TheEmbeddedDefaultGuardsCloudMetadataInAuditModeAllowingRoot()
    {
        var result = DefaultPolicy.Load(Host);
        Assert.Empty(result.Diagnostics);
        var policy = result.Policy!;
        var set = Assert.Single(policy.EndpointSets);
        Assert.Equal("cloud-metadata", set.Name);
        Assert.True(set.AllPorts);
        Assert.Equal(GuardProtocols.All, set.Protocols);
        Assert.Equal(
            ["169.254.169.254/32", "fd00:ec2::254/128", "169.254.170.23/32", "fd00:ec2::23/128", "fd00:c1::a9fe:a9fe/128",
             "fe80::a9fe:a9fe/128", "100.100.100.200/32", "169.254.42.42/32", "fd00:42::42/128", "fd00:a9fe:a9fe::1/128"],
            set.Addresses.Select(a => a.Prefix.ToString()));
        var rule = Assert.Single(policy.Rules);
        Assert.Equal(("cloud-metadata", GuardMode.Audit), (rule.EndpointSetName, rule.Mode));
        Assert.Equal([0u], rule.Allow.Users.Select(u => u.Uid));
        Assert.Empty(rule.Allow.Groups);
        Assert.Empty(rule.Allow.Executables);
        Assert.Empty(rule.Allow.Cgroups);
    }

    [Theory]
    [InlineData("169.254.169.123")] // AWS time sync
    [InlineData("169.254.169.253")] // AWS DNS
    [InlineData("168.63.129.16")]   // Azure WireServer
    [InlineData("169.254.170.2")]   // ECS task credentials: unverified, left out (docs/policy.md)
    [InlineData("fd20:ce::254")]    // Google Cloud IPv6: unverified, left out
    public void TheDefaultDoesNotGuardInfrastructureOrUnverifiedAddresses(string address)
    {
        var policy = DefaultPolicy.Load(Host).Policy!;
        var target = IpPrefixParser.Parse(address, out _, out _)!.Value;
        Assert.DoesNotContain(policy.EndpointSets.SelectMany(s => s.Addresses), a => a.Prefix.Contains(target));
    }

    public static TheoryData<string, string, string> OneError => new()
    {
        // name, the policy (Valid with one change), the one error expected
        { "yaml syntax", "version: 1\nendpoint_sets: [\n", "policy.yaml:3:1: (yaml): " },
        { "empty file", "", "policy.yaml:1:1: (yaml): the file is empty" },
        { "not a mapping", "- 1\n", "policy.yaml:1:1: (policy): expected a policy (a mapping), got a list" },
        { "two documents", Valid + "\n---\nversion: 1\n", "policy.yaml:11:1: (yaml): a policy file holds one YAML document; found a second one" },
        { "duplicate key", Valid.Replace("mode: enforce", "mode: enforce\n    mode: audit"), "policy.yaml:9:5: (yaml): duplicate key 'mode' (first at line 8)" },
        { "unknown root key", Valid + "\nrulez: []", "policy.yaml:11:1: rulez: unknown field 'rulez' (did you mean 'rules'?) (expected version, endpoint_sets, rules)" },
        { "unknown set key", Valid.Replace("    addresses:", "    adresses: [1.2.3.4]\n    addresses:"), "policy.yaml:4:5: endpoint_sets[0].adresses: unknown field 'adresses' (did you mean 'addresses'?) (expected name, description, addresses, ports, protocols)" },
        { "unknown allow key", Valid.Replace("users: [root]", "user: [root]"), "policy.yaml:10:7: rules[0].allow.user: unknown field 'user' (did you mean 'users'?) (expected users, groups, executables, cgroups)" },
        { "missing version", Valid.Replace("version: 1\n", ""), "policy.yaml:1:1: version: missing required field 'version'" },
        { "wrong version", Valid.Replace("version: 1", "version: 2"), "policy.yaml:1:10: version: unsupported version 2: this vigil reads version 1" },
        { "version as string", Valid.Replace("version: 1", "version: \"1\""), "policy.yaml:1:10: version: expected an integer, got a string ('1')" },
        { "missing addresses", Valid.Replace("    addresses: [169.254.169.254, fd00:ec2::254]\n", ""), "policy.yaml:3:5: endpoint_sets[0].addresses: missing required field 'addresses'" },
        { "addresses not a list", Valid.Replace("[169.254.169.254, fd00:ec2::254]", "169.254.169.254"), "policy.yaml:4:16: endpoint_sets[0].addresses: expected a list, got a string" },
        { "empty addresses", Valid.Replace("[169.254.169.254, fd00:ec2::254]", "[]"), "policy.yaml:4:16: endpoint_sets[0].addresses: empty list: list at least one address or prefix" },
        { "prefix /33", Valid.Replace("169.254.169.254,", "169.254.169.254/33,"), "policy.yaml:4:17: endpoint_sets[0].addresses[0]: invalid prefix length '/33' in '169.254.169.254/33': IPv4 prefixes are /0 to /32" },
        { "prefix /129", Valid.Replace("fd00:ec2::254]", "fd00:ec2::254/129]"), "policy.yaml:4:34: endpoint_sets[0].addresses[1]: invalid prefix length '/129' in 'fd00:ec2::254/129': IPv6 prefixes are /0 to /128" },
        { "host bits", Valid.Replace("169.254.169.254,", "10.0.0.1/8,"), "policy.yaml:4:17: endpoint_sets[0].addresses[0]: host bits set in '10.0.0.1/8': write 10.0.0.0/8 for the network, or 10.0.0.1/32 for the one address" },
        { "v6 host bits", Valid.Replace("fd00:ec2::254]", "fd00:ec2::254/64]"), "policy.yaml:4:34: endpoint_sets[0].addresses[1]: host bits set in 'fd00:ec2::254/64': write fd00:ec2::/64 for the network, or fd00:ec2::254/128 for the one address" },
        { "hostname", Valid.Replace("169.254.169.254,", "metadata.google.internal,"), "policy.yaml:4:17: endpoint_sets[0].addresses[0]: 'metadata.google.internal' is a host name, not an address: write the IP address it stands for (names are not resolved, their answers can change after the policy is checked)" },
        { "ambiguous v4", Valid.Replace("169.254.169.254,", "169.254.043.1,"), "policy.yaml:4:17: endpoint_sets[0].addresses[0]: invalid address '169.254.043.1': expected an IPv4 address (a.b.c.d, no leading zeros) or an IPv6 address, optionally with /prefix-length" },
        { "zone index", Valid.Replace("fd00:ec2::254]", "\"fe80::1%eth0\"]"), "policy.yaml:4:34: endpoint_sets[0].addresses[1]: 'fe80::1%eth0' has a zone index: the guard matches a destination on every interface, write the address without '%eth0'" },
        { "address as number", Valid.Replace("fd00:ec2::254]", "10]"), "policy.yaml:4:34: endpoint_sets[0].addresses[1]: expected an address or prefix (e.g. 169.254.169.254 or fd00:ec2::254/128), got an integer ('10')" },
        { "port 0", Valid.Replace("fd00:ec2::254]", "fd00:ec2::254]\n    ports: [0]"), "policy.yaml:5:13: endpoint_sets[0].ports[0]: port 0 out of range (1-65535)" },
        { "port 65536", Valid.Replace("fd00:ec2::254]", "fd00:ec2::254]\n    ports: [80, 65536]"), "policy.yaml:5:17: endpoint_sets[0].ports[1]: port 65536 out of range (1-65535)" },
        { "port as string", Valid.Replace("fd00:ec2::254]", "fd00:ec2::254]\n    ports: [\"80\"]"), "policy.yaml:5:13: endpoint_sets[0].ports[0]: expected a port number, got a string ('80')" },
        { "empty ports", Valid.Replace("fd00:ec2::254]", "fd00:ec2::254]\n    ports: []"), "policy.yaml:5:12: endpoint_sets[0].ports: empty list: leave 'ports' out to guard every port" },
        { "unknown protocol", Valid.Replace("fd00:ec2::254]", "fd00:ec2::254]\n    protocols: [tcp, icmp]"), "policy.yaml:5:22: endpoint_sets[0].protocols[1]: unknown protocol 'icmp' (expected tcp or udp)" },
        { "duplicate set name", Valid.Replace("rules:", "  - name: metadata\n    addresses: [1.2.3.4]\nrules:"), "policy.yaml:5:11: endpoint_sets[1].name: duplicate endpoint set name 'metadata' (first at line 3)" },
        { "bad set name", Valid.Replace("name: metadata", "name: \"meta data\"").Replace("endpoint_set: metadata", "endpoint_set: \"meta data\""), "policy.yaml:3:11: endpoint_sets[0].name: invalid endpoint set name 'meta data': use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit" },
        { "unknown endpoint set", Valid.Replace("endpoint_set: metadata", "endpoint_set: metdata"), "policy.yaml:7:19: rules[0].endpoint_set: unknown endpoint set 'metdata' (did you mean 'metadata'?)" },
        { "duplicate rule name", Valid.Replace("rules:", "  - name: other\n    addresses: [1.2.3.4]\nrules:") + "\n  - name: only-root\n    endpoint_set: other\n    mode: audit\n    allow: {}", "policy.yaml:13:11: rules[1].name: duplicate rule name 'only-root' (first at line 8)" },
        { "second rule on a set", Valid + "\n  - name: also\n    endpoint_set: metadata\n    mode: audit\n    allow: {}", "policy.yaml:12:19: rules[1].endpoint_set: endpoint set 'metadata' is already guarded by rule 'only-root' (line 7); a destination must satisfy every rule that guards it, so merge their allow lists into one rule" },
        { "unknown mode", Valid.Replace("mode: enforce", "mode: block"), "policy.yaml:8:11: rules[0].mode: unknown mode 'block' (expected audit or enforce)" },
        { "missing mode", Valid.Replace("    mode: enforce\n", ""), "policy.yaml:6:5: rules[0].mode: missing required field 'mode'" },
        { "missing allow", Valid.Replace("    allow:\n      users: [root]", ""), "policy.yaml:6:5: rules[0].allow: missing required field 'allow' (write 'allow: {}' to allow nobody)" },
        { "allow as list", Valid.Replace("    allow:\n      users: [root]", "    allow: [root]"), "policy.yaml:9:12: rules[0].allow: expected an allow list (users, groups, executables, cgroups) (a mapping), got a list" },
        { "empty users", Valid.Replace("users: [root]", "users: []"), "policy.yaml:10:14: rules[0].allow.users: empty list: leave 'users' out instead of an empty list" },
        { "users null", Valid.Replace("users: [root]", "users:"), "policy.yaml:10:13: rules[0].allow.users: expected a list, got nothing (null)" },
        { "unknown user", Valid.Replace("users: [root]", "users: [root, nobodyx]"), "policy.yaml:10:21: rules[0].allow.users[1]: unknown user 'nobodyx'" },
        { "uid too large", Valid.Replace("users: [root]", "users: [4294967295]"), "policy.yaml:10:15: rules[0].allow.users[0]: uid 4294967295 out of range (0-4294967294)" },
        { "negative uid", Valid.Replace("users: [root]", "users: [-1]"), "policy.yaml:10:15: rules[0].allow.users[0]: uid -1 out of range (0-4294967294)" },
        { "user as bool", Valid.Replace("users: [root]", "users: [true]"), "policy.yaml:10:15: rules[0].allow.users[0]: expected a user name or uid, got a boolean ('true')" },
        { "unknown group", Valid.Replace("users: [root]", "groups: [adm, nogroupx]"), "policy.yaml:10:21: rules[0].allow.groups[1]: unknown group 'nogroupx'" },
        { "relative executable", Valid.Replace("users: [root]", "executables: [bin/curl]"), "policy.yaml:10:21: rules[0].allow.executables[0]: 'bin/curl' is not an absolute path" },
        { "missing executable", Valid.Replace("users: [root]", "executables: [/usr/bin/nope]"), "policy.yaml:10:21: rules[0].allow.executables[0]: executable '/usr/bin/nope': cannot stat it: ENOENT (2): No such file or directory" },
        { "not executable", Valid.Replace("users: [root]", "executables: [/etc/passwd]"), "policy.yaml:10:21: rules[0].allow.executables[0]: executable '/etc/passwd': not executable (no x permission bit)" },
        { "script executable", Valid.Replace("users: [root]", "executables: [/usr/local/bin/fetch-creds.sh]"), "policy.yaml:10:21: rules[0].allow.executables[0]: '/usr/local/bin/fetch-creds.sh' is a script run by /bin/bash: its processes run /bin/bash, so this entry would never match; allow the interpreter, a user or a cgroup instead" },
        { "root cgroup", Valid.Replace("users: [root]", "cgroups: [/]"), "policy.yaml:10:17: rules[0].allow.cgroups[0]: cgroup '/' holds every process: allowing it allows everyone" },
        { "relative cgroup", Valid.Replace("users: [root]", "cgroups: [system.slice]"), "policy.yaml:10:17: rules[0].allow.cgroups[0]: 'system.slice' is not a cgroup path: write it from the cgroup v2 root, e.g. /system.slice/cloud-init.service (no '.', '..', '//' or trailing '/')" },
        { "dotdot cgroup", Valid.Replace("users: [root]", "cgroups: [/system.slice/../x]"), "policy.yaml:10:17: rules[0].allow.cgroups[0]: '/system.slice/../x' is not a cgroup path: write it from the cgroup v2 root, e.g. /system.slice/cloud-init.service (no '.', '..', '//' or trailing '/')" },
        { "empty rules", Valid[..Valid.IndexOf("rules:", StringComparison.Ordinal)] + "rules: []", "policy.yaml:5:8: rules: empty list: a policy without rules guards nothing" },
    };

    [Theory]
    [MemberData(nameof(OneError))]
    public void EachProblemIsOneErrorWithFileLineColumnAndField(string name, string yaml, string expected)
    {
        var errors = Errors(yaml);
        Assert.True(errors.Count == 1, $"{name}: expected one error, got {errors.Count}: {string.Join(" | ", errors)}");
        if (expected.EndsWith(": ", StringComparison.Ordinal)) Assert.StartsWith(expected, errors[0]);
        else Assert.Equal(expected, errors[0]);
        Assert.Null(Load(yaml).Policy); // nothing to apply
    }

    [Fact]
    public void EveryErrorIsReportedNotJustTheFirst()
    {
        var errors = Errors("""
            version: 1
            endpoint_sets:
              - name: meta
                addresses: [169.254.169.254/33, metadata.google.internal]
                ports: [70000]
            rules:
              - name: r1
                endpoint_set: metta
                mode: block
                allow:
                  users: [nobodyx]
                  groups: [nogroupx]
            """);
        Assert.Equal(
        [
            "policy.yaml:4:17: endpoint_sets[0].addresses[0]: invalid prefix length '/33' in '169.254.169.254/33': IPv4 prefixes are /0 to /32",
            "policy.yaml:4:37: endpoint_sets[0].addresses[1]: 'metadata.google.internal' is a host name, not an address: write the IP address it stands for (names are not resolved, their answers can change after the policy is checked)",
            "policy.yaml:5:13: endpoint_sets[0].ports[0]: port 70000 out of range (1-65535)",
            "policy.yaml:8:19: rules[0].endpoint_set: unknown endpoint set 'metta' (did you mean 'meta'?)",
            "policy.yaml:9:11: rules[0].mode: unknown mode 'block' (expected audit or enforce)",
            "policy.yaml:11:15: rules[0].allow.users[0]: unknown user 'nobodyx'",
            "policy.yaml:12:16: rules[0].allow.groups[0]: unknown group 'nogroupx'",
        ], errors);
    }

    [Fact]
    public void MoreThanSixtyFourRulesIsAnErrorAtTheSixtyFifth()
    {
        var sets = string.Concat(Enumerable.Range(0, 65).Select(i => $"  - name: s{i}\n    addresses: [10.0.{i}.0/24]\n"));
        var rules = string.Concat(Enumerable.Range(0, 65).Select(i => $"  - name: r{i}\n    endpoint_set: s{i}\n    mode: audit\n    allow: {{}}\n"));
        var result = Load($"version: 1\nendpoint_sets:\n{sets}rules:\n{rules}");
        var error = Assert.Single(result.Errors);
        Assert.Equal($"policy.yaml:{3 + 65 * 2 + 1 + 64 * 4}:5: rules[64]: too many rules: at most 64", error.ToString());
    }

    [Fact]
    public void WarningsDoNotInvalidateAPolicy()
    {
        var result = Load("""
            version: 1
            endpoint_sets:
              - name: metadata
                addresses: [169.254.169.254, 169.254.169.254, "::/0"]
              - name: unused
                addresses: [10.0.0.0/8]
            rules:
              - name: r
                endpoint_set: metadata
                mode: audit
                allow:
                  users: [root, 0]
                  cgroups: [/system.slice/not-yet.service]
            """);
        Assert.NotNull(result.Policy);
        Assert.Equal(
        [
            "policy.yaml:4:34: endpoint_sets[0].addresses[1]: warning: 169.254.169.254/32 is listed twice (first at line 4)",
            "policy.yaml:4:51: endpoint_sets[0].addresses[2]: warning: '::/0' does not cover IPv4 destinations: IPv4-mapped addresses (::ffff:a.b.c.d) are judged as the IPv4 address they carry; add IPv4 prefixes for those",
            "policy.yaml:5:5: endpoint_sets[1]: warning: endpoint set 'unused' is not guarded by any rule",
            "policy.yaml:12:21: rules[0].allow.users[1]: warning: already allowed at line 12",
            "policy.yaml:13:17: rules[0].allow.cgroups[0]: warning: cgroup '/system.slice/not-yet.service' does not exist now (no directory /sys/fs/cgroup/system.slice/not-yet.service); it gets an allow entry when the policy is applied after it exists",
        ], result.Diagnostics.Select(d => d.ToString()));
        Assert.Null(result.Policy!.Rules[0].Allow.Cgroups[0].Id);
    }

    [Fact]
    public void AnchorsAndAliasesAreResolved()
    {
        var result = Load("""
            version: 1
            endpoint_sets:
              - name: a
                addresses: &meta [169.254.169.254]
              - name: b
                addresses: *meta
                ports: [80]
            rules:
              - name: ra
                endpoint_set: a
                mode: audit
                allow: &admins
                  users: [root]
              - name: rb
                endpoint_set: b
                mode: enforce
                allow: *admins
            """);
        Assert.Empty(result.Diagnostics);
        Assert.Equal("169.254.169.254/32", result.Policy!.EndpointSets[1].Addresses[0].Prefix.ToString());
        Assert.Equal(0u, result.Policy.Rules[1].Allow.Users[0].Uid);
    }

    [Fact]
    public void AllowEmptyMappingAllowsNobody()
    {
        var result = Load(Valid.Replace("    allow:\n      users: [root]", "    allow: {}"));
        Assert.Empty(result.Diagnostics);
        Assert.Equal(0, result.Policy!.Rules[0].Allow.Count);
    }
}
