using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Vigil.Core.Tcp;

namespace Vigil.Core.Naming;

/// <summary>Display names for interface indexes, uids and process names, cached so that sinks
/// allocate nothing per event once each name has been seen. Not thread-safe: give each consumer
/// thread its own instance (the pipeline has one consumer thread).</summary>
public sealed class HostNames
{
    /// <summary>More distinct comms than this and the cache starts over: a process can rename itself
    /// at will, so an unbounded cache would be a memory leak an unprivileged user could drive.</summary>
    public const int MaxCachedComms = 4096;

    private readonly Dictionary<uint, string> _interfaces = new();
    private readonly Dictionary<uint, string> _interfaceNumbers = new();
    private readonly Dictionary<uint, string> _users = new();
    private readonly Dictionary<uint, string> _userNumbers = new();
    private readonly Dictionary<(ulong, ulong), string> _comms = new();

    /// <param name="interfaces">ifindex → name, e.g. the sensor's InterfaceNames; null = none known.</param>
    /// <param name="passwdPath">An /etc/passwd-format file; a missing or unreadable file means no user names.</param>
    public HostNames(IReadOnlyDictionary<int, string>? interfaces = null, string passwdPath = "/etc/passwd")
    {
        if (interfaces is not null)
            foreach (var (index, name) in interfaces)
                _interfaces[(uint)index] = name;
        foreach (var (uid, name) in ReadPasswd(passwdPath))
            _users.TryAdd(uid, name); // the first entry wins, as getpwuid does
    }

    /// <summary>The interface's name, or null when this index is not known.</summary>
    public string? TryInterfaceName(uint ifindex) => _interfaces.GetValueOrDefault(ifindex);

    /// <summary>The interface's name, or its index as text when unknown.</summary>
    public string InterfaceName(uint ifindex) => TryInterfaceName(ifindex) ?? NumberText(_interfaceNumbers, ifindex);

    /// <summary>The user name of the first passwd entry with this uid, or null when there is none.</summary>
    public string? TryUserName(uint uid) => _users.GetValueOrDefault(uid);

    /// <summary>The user name, or the uid as text when passwd has no entry (as ps does).</summary>
    public string UserName(uint uid) => TryUserName(uid) ?? NumberText(_userNumbers, uid);

    /// <summary>The process name as text. Bytes that are not valid UTF-8 (a multi-byte character cut
    /// at 15 bytes by the kernel, or a name set to arbitrary bytes) become U+FFFD.</summary>
    public string CommText(in Comm16 comm)
    {
        ReadOnlySpan<byte> bytes = comm;
        var key = (BinaryPrimitives.ReadUInt64LittleEndian(bytes), BinaryPrimitives.ReadUInt64LittleEndian(bytes[8..]));
        if (_comms.TryGetValue(key, out var text)) return text;
        if (_comms.Count >= MaxCachedComms) _comms.Clear();
        text = Encoding.UTF8.GetString(bytes[..comm.Length]);
        _comms[key] = text;
        return text;
    }

    private static string NumberText(Dictionary<uint, string> cache, uint value)
    {
        if (!cache.TryGetValue(value, out var text))
        {
            text = value.ToString(CultureInfo.InvariantCulture);
            // Numbers come from the kernel, not from users, but keep the bound anyway.
            if (cache.Count >= MaxCachedComms) cache.Clear();
            cache[value] = text;
        }
        return text;
    }

    /// <summary>Parses name:password:uid:gid:gecos:home:shell lines; skips comments, blank, short
    /// and non-numeric lines and NIS entries (+/-).</summary>
    public static IEnumerable<(uint Uid, string Name)> ReadPasswd(string path)
    {
        string[] lines;
        try { lines = File.ReadAllLines(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { yield break; }
        foreach (var line in lines)
        {
            if (line.Length == 0 || line[0] is '#' or '+' or '-') continue;
            var fields = line.Split(':');
            if (fields.Length < 4 || fields[0].Length == 0) continue;
            if (uint.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var uid))
                yield return (uid, fields[0]);
        }
    }
}
