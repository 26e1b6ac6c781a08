namespace Vigil.Core.Policy;

/// <summary>What the TC enforcer cannot judge. It sees packets, not calls: a packet may be sent from softirq
/// (a retransmission, data released by an ACK), where no task — so no executable — is known; it judges the
/// socket that sent the packet (its uid, the groups it was opened with, its cgroup). A policy naming an
/// executable is refused for it rather than enforced as if that executable were never allowed.</summary>
public static class PacketEnforcerLimits
{
    public static IReadOnlyList<PolicyDiagnostic> Check(GuardPolicy policy) =>
        policy.Rules
            .SelectMany(r => r.Allow.Executables)
            .Select(e => new PolicyDiagnostic(policy.Source, e.Location.Position, e.Location.Field,
                "the tc enforcer cannot judge executables (it sees packets, which may be sent from softirq with no task); " +
                "allow the program's user, group or cgroup instead, or use the cgroup enforcer"))
            .ToList();

    /// <summary><paramref name="result"/> with the limits' errors added (and no policy) when it breaks them.</summary>
    public static PolicyLoadResult Apply(PolicyLoadResult result)
    {
        if (result.Policy is not { } policy || Check(policy) is not { Count: > 0 } errors) return result;
        return new PolicyLoadResult(null, [.. result.Diagnostics, .. errors]);
    }
}
