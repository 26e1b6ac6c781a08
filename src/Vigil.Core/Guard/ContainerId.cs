using System.Text.RegularExpressions;

namespace Vigil.Core.Guard;

/// <summary>The container a cgroup path belongs to, where the path says so: the runtimes name their
/// cgroups after the container id (systemd driver: docker-ID.scope, cri-containerd-ID.scope,
/// crio-ID.scope, libpod-ID.scope; cgroupfs driver: /docker/ID, /kubepods/.../ID). Pure: no lookups.</summary>
public static partial class ContainerId
{
    /// <summary>The 64-hex-digit container id in <paramref name="cgroupPath"/>, or null. The innermost
    /// (last) match wins, so a container nested in a pod slice yields the container, not the pod.</summary>
    public static string? FromCgroupPath(string? cgroupPath)
    {
        if (string.IsNullOrEmpty(cgroupPath)) return null;
        var segments = cgroupPath.Split('/', StringSplitOptions.RemoveEmptyEntries);
        for (int i = segments.Length - 1; i >= 0; i--)
        {
            var m = Scope().Match(segments[i]);
            if (m.Success) return m.Groups["id"].Value;
            // cgroupfs driver: the bare id under a runtime's or kubepods' directory.
            if (Bare().IsMatch(segments[i]) && segments.Take(i).Any(s => s is "docker" or "containerd" or "crio" or "libpod" or "lxc" || s.StartsWith("kubepods", StringComparison.Ordinal)))
                return segments[i];
        }
        return null;
    }

    /// <summary>The runtime that named the cgroup (docker, containerd, crio, podman, kubernetes), or null.</summary>
    public static string? RuntimeOf(string? cgroupPath)
    {
        if (FromCgroupPath(cgroupPath) is null) return null;
        var p = cgroupPath!;
        if (p.Contains("cri-containerd-", StringComparison.Ordinal) || p.Contains("/containerd/", StringComparison.Ordinal)) return "containerd";
        if (p.Contains("crio-", StringComparison.Ordinal) || p.Contains("/crio/", StringComparison.Ordinal)) return "crio";
        if (p.Contains("libpod-", StringComparison.Ordinal) || p.Contains("/libpod/", StringComparison.Ordinal)) return "podman";
        if (p.Contains("docker", StringComparison.Ordinal)) return "docker";
        if (p.Contains("kubepods", StringComparison.Ordinal)) return "kubernetes";
        return null;
    }

    [GeneratedRegex("^(?:docker|cri-containerd|crio|libpod|containerd)-(?<id>[0-9a-f]{64})\\.scope$")]
    private static partial Regex Scope();

    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex Bare();
}
