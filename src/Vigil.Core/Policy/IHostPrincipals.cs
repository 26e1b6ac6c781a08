namespace Vigil.Core.Policy;

/// <summary>Looks up the names and files a policy refers to. Core stays free of the operating system:
/// the real implementation (NSS through libc, statx, the cgroup2 mount) lives in Vigil.Sensors; pure
/// unit tests use a fixed table.</summary>
public interface IHostPrincipals
{
    /// <summary>The uid of a user name, or null when the system has no such user.</summary>
    uint? FindUser(string name);

    /// <summary>The gid of a group name, or null when the system has no such group.</summary>
    uint? FindGroup(string name);

    /// <summary>The identity of the executable file at an absolute path (symbolic links followed).</summary>
    ExecutableLookup FindExecutable(string path);

    /// <summary>The id of the cgroup at a path relative to the cgroup v2 mount ("/system.slice/x.service").</summary>
    CgroupLookup FindCgroup(string path);
}

/// <summary>An executable's identity, or why there is none (missing, not a regular file, not executable).
/// <see cref="ScriptInterpreter"/> is the program named on a script's "#!" line.</summary>
public sealed record ExecutableLookup(ExecutableIdentity? Identity, string? Problem, string? ScriptInterpreter = null)
{
    public static ExecutableLookup Found(ExecutableIdentity identity, string? scriptInterpreter = null) => new(identity, null, scriptInterpreter);
    public static ExecutableLookup Failed(string problem) => new(null, problem);
}

/// <summary>A cgroup's id; null with a note when it does not exist now (or cgroup v2 is not mounted).</summary>
public sealed record CgroupLookup(ulong? Id, string? Note)
{
    public static CgroupLookup Found(ulong id) => new(id, null);
    public static CgroupLookup Missing(string note) => new(null, note);
}
