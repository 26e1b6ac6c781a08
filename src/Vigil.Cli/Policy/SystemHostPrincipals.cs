using Vigil.Core.Policy;
using Vigil.Interop;

namespace Vigil.Cli.Policy;

/// <summary>The machine's users and groups (NSS), files (statx) and cgroups (the cgroup v2 mount) for
/// policy validation and compilation.</summary>
public sealed class SystemHostPrincipals : IHostPrincipals
{
    private readonly Lazy<string?> _cgroupMount = new(() => Cgroups.FindV2Mount());

    public uint? FindUser(string name) => Accounts.FindUser(name);

    public uint? FindGroup(string name) => Accounts.FindGroup(name);

    public ExecutableLookup FindExecutable(string path)
    {
        var info = FileIdentity.Read(path, out var problem);
        if (info is not { } f) return ExecutableLookup.Failed($"cannot stat it: {problem}");
        if (!f.IsRegularFile) return ExecutableLookup.Failed("not a regular file");
        if (!f.IsExecutable) return ExecutableLookup.Failed("not executable (no x permission bit)");
        return ExecutableLookup.Found(new ExecutableIdentity(f.ResolvedPath, f.DevMajor, f.DevMinor, f.Inode, f.Generation));
    }

    public CgroupLookup FindCgroup(string path)
    {
        if (_cgroupMount.Value is not { } mount) return CgroupLookup.Missing("no cgroup v2 file system is mounted");
        var full = mount.TrimEnd('/') + path;
        if (!Directory.Exists(full)) return CgroupLookup.Missing($"no directory {full}");
        return CgroupLookup.Found(Cgroups.IdOf(full));
    }
}
