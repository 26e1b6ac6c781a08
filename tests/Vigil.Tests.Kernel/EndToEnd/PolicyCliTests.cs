using System.Text.Json;
using System.Text.RegularExpressions;
using Vigil.Interop;
using Vigil.Tests.Kernel.Support;

namespace Vigil.Tests.Kernel.EndToEnd;

/// <summary><c>vigil policy check</c> and <c>vigil policy show</c> through the real binary, resolving this
/// machine's real users, groups, files and cgroups (the pure tier uses a fixed table instead).</summary>
public partial class PolicyCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory($"vigil-policy-{Environment.ProcessId}-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string yaml)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, yaml);
        return path;
    }

    private static Proc.Result Vigil(params string[] args) => Proc.Run(Repo.Vigil, args, TimeSpan.FromSeconds(60));

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    [Fact]
    public void CheckResolvesRealUsersGroupsExecutablesAndCgroups()
    {
        var mount = Cgroups.FindV2Mount() ?? throw new InvalidOperationException("no cgroup v2 mount on this machine");
        var cgroupName = $"vigil-policy-{Environment.ProcessId}";
        var cgroupDir = Path.Combine(mount, cgroupName);
        Directory.CreateDirectory(cgroupDir);
        try
        {
            var path = Write("ok.yaml", $"""
                version: 1
                endpoint_sets:
                  - name: metadata
                    addresses: [169.254.169.254, fd00:ec2::254, "::ffff:169.254.170.23"]
                    ports: [80]
                rules:
                  - name: agents
                    endpoint_set: metadata
                    mode: enforce
                    allow:
                      users: [root, nobody, 4242]
                      groups: [nogroup]
                      executables: [/bin/sh]
                      cgroups: [/{cgroupName}]
                """);
            var r = Vigil("policy", "check", path);
            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.Empty(r.Stderr);
            Assert.Equal(
            [
                $"{path}: valid: 1 endpoint set, 1 rule (0 audit, 1 enforce)",
                $"  rule 0 agents: enforce metadata (3 addresses, ports 80, tcp+udp); allows user root (uid 0), user nobody (uid 65534), uid 4242, group nogroup (gid 65534), executable /bin/sh, cgroup /{cgroupName}",
                "  compiles to: 3 destination prefixes (2 IPv4, 1 IPv6), 2 port entries, 6 allow entries (3 uid, 1 gid, 1 executable, 1 cgroup)",
            ], Lines(r.Stdout));

            // show: what each name resolved to, checked against other tools' view of the same objects.
            var show = Vigil("policy", "show", path);
            Assert.True(show.ExitCode == 0, show.Stderr);
            var stat = Proc.Run("stat", "-L", "-c", "%i %Hd:%Ld", "/bin/sh").EnsureSuccess("stat").Stdout.Trim().Split(' ');
            var realSh = Proc.Run("realpath", "/bin/sh").EnsureSuccess("realpath").Stdout.Trim();
            // lsattr -v prints the inode generation (FS_IOC_GETVERSION), as vigil reads it.
            var generation = Lines(Proc.Run("lsattr", "-vd", realSh).EnsureSuccess("lsattr").Stdout)[0].Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
            Assert.Contains($"- /bin/sh  # {(realSh != "/bin/sh" ? realSh + ", " : "")}device {stat[1]} inode {stat[0]} generation {generation}\n", show.Stdout);
            var cgroupInode = Proc.Run("stat", "-c", "%i", cgroupDir).EnsureSuccess("stat").Stdout.Trim();
            Assert.Contains($"- /{cgroupName}  # cgroup id {cgroupInode}\n", show.Stdout);
            Assert.Contains("- nobody  # uid 65534\n", show.Stdout);
            Assert.Contains("      - 169.254.170.23\n", show.Stdout); // the mapped address is judged as IPv4
        }
        finally
        {
            Directory.Delete(cgroupDir);
        }
    }

    [Fact]
    public void CheckReportsEveryErrorWithFileLineColumnAndFieldAndExitsTwo()
    {
        var path = Write("bad.yaml", """
            version: 1
            endpoint_sets:
              - name: meta
                addresses: [169.254.169.254/33, 10.0.0.1/8, metadata.google.internal]
                ports: [70000]
            rules:
              - name: r1
                endpoint_set: metta
                mode: block
                allow:
                  users: [root, nobodyx]
                  groups: [nogroup, nogroupx]
                  executables: [/nonexistent/vigil-x, /etc/passwd]
                  cgroups: [/]
                alow: {}
            """);
        var r = Vigil("policy", "check", path);
        Assert.Equal(2, r.ExitCode);
        Assert.Empty(r.Stdout);
        var lines = Lines(r.Stderr);
        Assert.All(lines, l => Assert.Matches(DiagnosticLine(), l));
        Assert.Equal(
        [
            $"{path}:4:17: endpoint_sets[0].addresses[0]: invalid prefix length '/33' in '169.254.169.254/33': IPv4 prefixes are /0 to /32",
            $"{path}:4:37: endpoint_sets[0].addresses[1]: host bits set in '10.0.0.1/8': write 10.0.0.0/8 for the network, or 10.0.0.1/32 for the one address",
            $"{path}:4:49: endpoint_sets[0].addresses[2]: 'metadata.google.internal' is a host name, not an address: write the IP address it stands for (names are not resolved, their answers can change after the policy is checked)",
            $"{path}:5:13: endpoint_sets[0].ports[0]: port 70000 out of range (1-65535)",
            $"{path}:8:19: rules[0].endpoint_set: unknown endpoint set 'metta' (did you mean 'meta'?)",
            $"{path}:9:11: rules[0].mode: unknown mode 'block' (expected audit or enforce)",
            $"{path}:11:21: rules[0].allow.users[1]: unknown user 'nobodyx'",
            $"{path}:12:25: rules[0].allow.groups[1]: unknown group 'nogroupx'",
            $"{path}:13:21: rules[0].allow.executables[0]: executable '/nonexistent/vigil-x': cannot stat it: ENOENT (2): No such file or directory",
            $"{path}:13:43: rules[0].allow.executables[1]: executable '/etc/passwd': not executable (no x permission bit)",
            $"{path}:14:17: rules[0].allow.cgroups[0]: cgroup '/' holds every process: allowing it allows everyone",
            $"{path}:15:5: rules[0].alow: unknown field 'alow' (did you mean 'allow'?) (expected name, description, endpoint_set, mode, allow)",
        ], lines);
    }

    [Fact]
    public void AScriptIsRefusedBecauseTheKernelSeesItsInterpreter()
    {
        var script = Write("fetch-creds.sh", "#!/bin/sh -e\necho hi\n");
        File.SetUnixFileMode(script, (UnixFileMode)0x1ED);
        var path = Write("script.yaml", $$"""
            version: 1
            endpoint_sets:
              - { name: m, addresses: [169.254.169.254] }
            rules:
              - { name: r, endpoint_set: m, mode: audit, allow: { executables: [{{script}}] } }
            """);
        var r = Vigil("policy", "check", path);
        Assert.Equal(2, r.ExitCode);
        Assert.Equal($"{path}:5:69: rules[0].allow.executables[0]: '{script}' is a script run by /bin/sh: its processes run /bin/sh, so this entry would never match; allow the interpreter, a user or a cgroup instead",
            Assert.Single(Lines(r.Stderr)));
    }

    [Fact]
    public void AnAbsentCgroupIsAWarningAndTheExitCodeStaysZero()
    {
        var path = Write("warn.yaml", """
            version: 1
            endpoint_sets:
              - { name: m, addresses: [169.254.169.254] }
            rules:
              - { name: r, endpoint_set: m, mode: audit, allow: { cgroups: [/vigil-no-such-cgroup.slice] } }
            """);
        var r = Vigil("policy", "check", path);
        Assert.Equal(0, r.ExitCode);
        var warning = Assert.Single(Lines(r.Stderr));
        Assert.StartsWith($"{path}:5:65: rules[0].allow.cgroups[0]: warning: cgroup '/vigil-no-such-cgroup.slice' does not exist now", warning);
        Assert.Contains("0 allow entries", r.Stdout);
    }

    [Fact]
    public void ShowWithoutAFilePrintsTheDefaultAndItsJsonChecksAsAPolicyFile()
    {
        var yaml = Vigil("policy", "show");
        Assert.True(yaml.ExitCode == 0, yaml.Stderr);
        Assert.Contains("  - name: cloud-metadata\n", yaml.Stdout);
        Assert.Contains("    mode: audit\n", yaml.Stdout);
        Assert.Contains("        - root  # uid 0\n", yaml.Stdout);

        var json = Vigil("policy", "show", "--output", "json");
        Assert.True(json.ExitCode == 0, json.Stderr);
        var doc = JsonDocument.Parse(Assert.Single(Lines(json.Stdout))).RootElement;
        Assert.Equal("cloud-metadata", doc.GetProperty("rules")[0].GetProperty("endpoint_set").GetString());
        Assert.Equal(10, doc.GetProperty("endpoint_sets")[0].GetProperty("addresses").GetArrayLength());

        // The printed forms are policy files themselves.
        foreach (var (name, text) in new[] { ("shown.json", json.Stdout), ("shown.yaml", yaml.Stdout) })
        {
            var path = Write(name, text);
            var check = Vigil("policy", "check", path);
            Assert.True(check.ExitCode == 0, check.Stderr);
            Assert.Contains("compiles to: 10 destination prefixes (4 IPv4, 6 IPv6), 0 port entries, 1 allow entry", check.Stdout);
        }
    }

    [Theory]
    [InlineData("policy check /nonexistent/vigil-policy.yaml", "vigil: cannot read policy '/nonexistent/vigil-policy.yaml'")]
    [InlineData("policy show /nonexistent/vigil-policy.yaml", "vigil: cannot read policy '/nonexistent/vigil-policy.yaml'")]
    [InlineData("policy show --output xml", "Argument 'xml' not recognized. Must be one of: 'yaml' 'json'")]
    [InlineData("policy check", "Required argument missing")]
    public void BadInvocationsAreOneLineAndExitCodeTwo(string args, string message)
    {
        var r = Vigil(args.Split(' '));
        Assert.Equal(2, r.ExitCode);
        var lines = Lines(r.Stderr).Where(l => !l.StartsWith("Try ", StringComparison.Ordinal)).ToList();
        Assert.Single(lines);
        Assert.Contains(message, lines[0]);
    }

    [GeneratedRegex(@"^/\S+\.yaml:\d+:\d+: \S+: \S.*$")]
    private static partial Regex DiagnosticLine();
}
