using Vigil.Interop.Bpf;

namespace Vigil.Bench;

/// <summary>The benchmark's own BPF objects (bench/bpf), embedded by the CompileBenchBpf target.</summary>
public static class BenchObjects
{
    public static BpfObject Open(string name)
    {
        using var s = typeof(BenchObjects).Assembly.GetManifestResourceStream("bench-bpf/" + name)
            ?? throw new FileNotFoundException($"BPF object {name} is not embedded in Vigil.Bench");
        var elf = new byte[s.Length];
        s.ReadExactly(elf);
        return BpfObject.OpenMemory(elf, name);
    }
}
