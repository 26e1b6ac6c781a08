using System.Reflection;

namespace Vigil.Sensors;

/// <summary>The compiled BPF objects embedded in this assembly (built by the CompileBpf target).</summary>
public static class EmbeddedObjects
{
    public static IEnumerable<string> Names =>
        typeof(EmbeddedObjects).Assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith("bpf/", StringComparison.Ordinal))
            .Select(n => n["bpf/".Length..]);

    public static byte[] Read(string name)
    {
        using var s = typeof(EmbeddedObjects).Assembly.GetManifestResourceStream("bpf/" + name)
            ?? throw new FileNotFoundException($"BPF object {name} is not embedded in {typeof(EmbeddedObjects).Assembly.GetName().Name}");
        var buf = new byte[s.Length];
        s.ReadExactly(buf);
        return buf;
    }

    /// <summary>Writes an embedded object to a file (BTF readers and bpftool take paths).</summary>
    public static string Extract(string name, string directory)
    {
        var path = Path.Combine(directory, name);
        File.WriteAllBytes(path, Read(name));
        return path;
    }
}
