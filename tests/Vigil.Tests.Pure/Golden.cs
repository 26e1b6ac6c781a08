using System.Runtime.CompilerServices;

namespace Vigil.Tests.Pure;

/// <summary>Compares output with a file under tests/Vigil.Tests.Pure/golden/ (also copied next to the
/// test binary by the project). To regenerate after an intended format change, run the tests with
/// VIGIL_UPDATE_GOLDEN=1: the files are rewritten in the source tree, and the test fails once so the
/// change is noticed; review the diff with git, then run again without the variable.</summary>
internal static class Golden
{
    public static bool Updating => Environment.GetEnvironmentVariable("VIGIL_UPDATE_GOLDEN") == "1";

    public static void Check(string name, string actual, [CallerFilePath] string callerFile = "")
    {
        string source = Path.Combine(Path.GetDirectoryName(callerFile)!, "golden", name);
        if (Updating)
        {
            File.WriteAllText(source, actual);
            Assert.Fail($"golden file {source} rewritten (VIGIL_UPDATE_GOLDEN=1); review it and run again without the variable");
        }
        // The source tree's file when this checkout has it (never stale), else the copy next to the binary.
        string path = File.Exists(source) ? source : Path.Combine(AppContext.BaseDirectory, "golden", name);
        Assert.True(File.Exists(path), $"golden file {name} is missing: run the tests with VIGIL_UPDATE_GOLDEN=1 to create it");
        string expected = File.ReadAllText(path);
        if (expected != actual)
        {
            string actualPath = Path.Combine(Path.GetTempPath(), "vigil-golden-actual-" + name);
            File.WriteAllText(actualPath, actual);
            Assert.Fail($"output differs from golden/{name}; actual output written to {actualPath} (diff them; VIGIL_UPDATE_GOLDEN=1 regenerates)");
        }
    }
}
