using System.Diagnostics;

namespace Vigil.Interop;

/// <summary>cgroup id → path (relative to the cgroup v2 mount, "/system.slice/x.service"). The kernel
/// reports ids (the directory's inode number); the path is found by walking the mount once and then
/// again on a miss, at most once per <see cref="RewalkInterval"/>, because cgroups come and go.</summary>
public sealed class CgroupPaths(string? mount)
{
    public static readonly TimeSpan RewalkInterval = TimeSpan.FromSeconds(1);
    /// <summary>Bounds one walk (a host with more cgroups gets the first ones found).</summary>
    public const int MaxDirectories = 200_000;

    private readonly Dictionary<ulong, string> _paths = new();
    private readonly Stopwatch _sinceWalk = new();

    public static CgroupPaths ForThisHost() => new(Cgroups.FindV2Mount());

    public string? Find(ulong id)
    {
        if (mount is null) return null;
        if (_paths.TryGetValue(id, out var path)) return path;
        if (_sinceWalk.IsRunning && _sinceWalk.Elapsed < RewalkInterval) return null;
        Walk();
        return _paths.GetValueOrDefault(id);
    }

    private void Walk()
    {
        _sinceWalk.Restart();
        _paths.Clear();
        var root = mount!.TrimEnd('/');
        var pending = new Stack<string>();
        pending.Push(root);
        int seen = 0;
        while (pending.Count > 0 && seen < MaxDirectories)
        {
            var dir = pending.Pop();
            seen++;
            try
            {
                _paths[Cgroups.IdOf(dir)] = dir.Length == root.Length ? "/" : dir[root.Length..];
                foreach (var child in Directory.EnumerateDirectories(dir)) pending.Push(child);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A cgroup removed during the walk, or one we may not read: skip it.
            }
        }
    }
}
