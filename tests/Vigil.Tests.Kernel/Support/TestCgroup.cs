namespace Vigil.Tests.Kernel.Support;

/// <summary>A uniquely named, initially empty cgroup v2 directory for one test, always removed.</summary>
public sealed class TestCgroup : IDisposable
{
    public string Path { get; }
    public string Procs => System.IO.Path.Combine(Path, "cgroup.procs");

    public TestCgroup()
    {
        var mount = Vigil.Interop.Cgroups.FindV2Mount() ?? throw new InvalidOperationException("no cgroup v2 mount on this machine");
        Path = System.IO.Path.Combine(mount, $"vigil-e2e-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(Path);
    }

    public void Dispose()
    {
        for (int i = 0; i < 50 && Directory.Exists(Path); i++)
        {
            try { Directory.Delete(Path); }
            catch (IOException) { Thread.Sleep(100); } // processes still exiting
        }
    }
}
