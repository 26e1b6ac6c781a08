namespace Vigil.Tests.Kernel.Support;

/// <summary>Paths inside the repository, found from the test binary's location.</summary>
public static class Repo
{
    public static string Root { get; } = FindRoot();

    /// <summary>The built `vigil` binary of the same configuration as these tests.</summary>
    public static string Vigil
    {
        get
        {
            var config = AppContext.BaseDirectory.Contains("/Release/") ? "Release" : "Debug";
            var path = Path.Combine(Root, "src", "Vigil.Cli", "bin", config, "net10.0", "vigil");
            return File.Exists(path) ? path : throw new FileNotFoundException($"build the CLI first: {path} is missing");
        }
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Vigil.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("Vigil.sln not found above " + AppContext.BaseDirectory);
    }
}
