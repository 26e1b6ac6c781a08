using Vigil.Sensors;

namespace Vigil.Tests.Artifact.Support;

/// <summary>Extracts embedded BPF objects once per process into a private temporary directory
/// (BTF readers take paths), and removes it when the process exits.</summary>
internal static class EmbeddedObjectFiles
{
    private static readonly Lazy<string> Directory = new(() =>
    {
        var dir = System.IO.Directory.CreateTempSubdirectory($"vigil-artifact-{Environment.ProcessId}-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { System.IO.Directory.Delete(dir, recursive: true); } catch (IOException) { }
        };
        return dir;
    });

    private static readonly Dictionary<string, string> Extracted = new();

    public static string PathOf(string objectName)
    {
        lock (Extracted)
        {
            if (!Extracted.TryGetValue(objectName, out var path))
                Extracted[objectName] = path = EmbeddedObjects.Extract(objectName, Directory.Value);
            return path;
        }
    }
}
