namespace Vigil.Core.Guard;

/// <summary>What an output needs to name the parts of a decision. Implemented in the CLI over the policy
/// (rule names), the cgroup2 mount (cgroup paths), /proc (executables) and /etc/passwd (users).</summary>
public interface IGuardNames
{
    /// <summary>The policy's name for a rule id, or null if unknown.</summary>
    string? RuleName(int rule);
    /// <summary>The cgroup's path relative to the cgroup2 mount ("/system.slice/x.service"), or null.</summary>
    string? CgroupPath(ulong cgroupId);
    /// <summary>The path of the decision's executable, or null when it cannot be known (process gone, egress).</summary>
    string? ExecutablePath(in GuardDecision decision);
    string? UserName(uint uid);
    string CommText(in Tcp.Comm16 comm);
}
