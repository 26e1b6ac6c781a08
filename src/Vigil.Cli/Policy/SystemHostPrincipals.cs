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
        return ExecutableLookup.Found(new ExecutableIdentity(f.ResolvedPath, f.DevMajor, f.DevMinor, f.Inode, f.Generation), ScriptInterpreter(f.ResolvedPath));
    }

    /// <summary>The interpreter on a "#!" first line, or null for a binary (or an unreadable file).</summary>
    private static string? ScriptInterpreter(string path)
    {
        try
        {
            using var file = File.OpenRead(path);
            Span<byte> head = stackalloc byte[256];
            int n = file.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            if (n < 2 || head[0] != (byte)'#' || head[1] != (byte)'!') return null;
            var line = System.Text.Encoding.UTF8.GetString(head[2..n]).Split('\n')[0].Trim();
            return line.Split(' ', '\t')[0] is { Length: > 0 } interpreter ? interpreter : "an interpreter";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public CgroupLookup FindCgroup(string path)
    {
        if (_cgroupMount.Value is not { } mount) return CgroupLookup.Missing("no cgroup v2 file system is mounted");
        var full = mount.TrimEnd('/') + path;
        if (!Directory.Exists(full)) return CgroupLookup.Missing($"no directory {full}");
        return CgroupLookup.Found(Cgroups.IdOf(full));
    }
}
