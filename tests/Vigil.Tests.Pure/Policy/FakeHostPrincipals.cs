using Vigil.Core.Policy;

namespace Vigil.Tests.Pure.Policy;

/// <summary>A fixed table of users, groups, executables and cgroups for pure tests of the loader and
/// compiler (end-to-end tests use the machine's real ones through the vigil binary).</summary>
internal sealed class FakeHostPrincipals : IHostPrincipals
{
    public Dictionary<string, uint> Users { get; } = new() { ["root"] = 0, ["nobody"] = 65534, ["alice"] = 1000, ["svc-agent"] = 998 };
    public Dictionary<string, uint> Groups { get; } = new() { ["root"] = 0, ["adm"] = 4, ["nogroup"] = 65534, ["metadata"] = 990 };
    public Dictionary<string, ExecutableLookup> Executables { get; } = new()
    {
        ["/usr/bin/cloud-init"] = ExecutableLookup.Found(new ExecutableIdentity("/usr/bin/cloud-init", 254, 1, 131077, 3_000_000_001)),
        ["/usr/bin/python3"] = ExecutableLookup.Found(new ExecutableIdentity("/usr/bin/python3.11", 254, 1, 131999, null)),
        ["/usr/bin/python3.11"] = ExecutableLookup.Found(new ExecutableIdentity("/usr/bin/python3.11", 254, 1, 131999, null)),
        ["/opt/agent/bin/agent"] = ExecutableLookup.Found(new ExecutableIdentity("/opt/agent/bin/agent", 259, 0x123, 42, 7)),
        ["/etc/passwd"] = ExecutableLookup.Failed("not executable (no x permission bit)"),
        ["/usr/local/bin/fetch-creds.sh"] = ExecutableLookup.Found(new ExecutableIdentity("/usr/local/bin/fetch-creds.sh", 254, 1, 5000, 9), "/bin/bash"),
    };
    public Dictionary<string, ulong> Cgroups { get; } = new()
    {
        ["/system.slice"] = 50,
        ["/system.slice/cloud-init.service"] = 7001,
        ["/kubepods.slice/kubepods-burstable.slice/pod-agent"] = 9100,
    };

    public uint? FindUser(string name) => Users.TryGetValue(name, out var uid) ? uid : null;
    public uint? FindGroup(string name) => Groups.TryGetValue(name, out var gid) ? gid : null;

    public ExecutableLookup FindExecutable(string path) =>
        Executables.TryGetValue(path, out var e) ? e : ExecutableLookup.Failed("cannot stat it: ENOENT (2): No such file or directory");

    public CgroupLookup FindCgroup(string path) =>
        Cgroups.TryGetValue(path, out var id) ? CgroupLookup.Found(id) : CgroupLookup.Missing("no directory /sys/fs/cgroup" + path);
}
