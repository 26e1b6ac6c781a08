using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Vigil.Tests.Artifact.Support;

/// <summary>Layout of one C struct as the system C compiler sees it.</summary>
internal sealed record CStructLayout(string Name, int Size, string LastField, IReadOnlyDictionary<string, CFieldLayout> Fields);
internal sealed record CFieldLayout(string Name, int Offset, int Size, int Align);

/// <summary>Learns struct layouts from C itself: writes a tiny program that prints sizeof, offsetof and
/// _Alignof of the requested fields, compiles it with the system <c>cc</c> against the installed headers,
/// and runs it. The truth comes from the compiler and the headers on this machine, not from memory.</summary>
internal static class CLayoutProbe
{
    /// <param name="includes">headers to include, e.g. "bpf/libbpf.h"</param>
    /// <param name="structs">struct name (without "struct") → C field names to measure</param>
    public static IReadOnlyDictionary<string, CStructLayout> Measure(string[] includes, IReadOnlyDictionary<string, string[]> structs)
    {
        var src = new StringBuilder();
        src.AppendLine("#include <stddef.h>\n#include <stdio.h>");
        foreach (var h in includes) src.AppendLine($"#include <{h}>");
        src.AppendLine("#define STR(x) #x\n#define XSTR(x) STR(x)");
        src.AppendLine("#define FIELD(s, f) printf(\"field %s %s %zu %zu %zu\\n\", #s, #f, offsetof(struct s, f), sizeof(((struct s *)0)->f), _Alignof(__typeof__(((struct s *)0)->f)))");
        src.AppendLine("int main(void) {");
        foreach (var (name, fields) in structs)
        {
            src.AppendLine($"  printf(\"size %s %zu\\n\", \"{name}\", sizeof(struct {name}));");
            // libbpf's option structs name their last field in a macro (TYPE__last_field): the completeness check uses it.
            src.AppendLine($"#ifdef {name}__last_field\n  printf(\"last %s %s\\n\", \"{name}\", XSTR({name}__last_field));\n#endif");
            foreach (var f in fields) src.AppendLine($"  FIELD({name}, {f});");
        }
        src.AppendLine("  return 0;\n}");

        var dir = Directory.CreateTempSubdirectory($"vigil-clayout-{Environment.ProcessId}-").FullName;
        try
        {
            var c = Path.Combine(dir, "layout.c");
            var exe = Path.Combine(dir, "layout");
            File.WriteAllText(c, src.ToString());
            Run("cc", ["-std=gnu11", "-Wall", "-Werror", "-o", exe, c], "compiling the layout probe (apt-get install gcc libbpf-dev)");
            var output = Run(exe, [], "running the layout probe");
            return Parse(output);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    private static IReadOnlyDictionary<string, CStructLayout> Parse(string output)
    {
        var sizes = new Dictionary<string, int>();
        var last = new Dictionary<string, string>();
        var fields = new Dictionary<string, Dictionary<string, CFieldLayout>>();
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var p = line.Split(' ');
            switch (p[0])
            {
                case "size": sizes[p[1]] = Int(p[2]); break;
                case "last": last[p[1]] = p[2]; break;
                case "field":
                    if (!fields.TryGetValue(p[1], out var fs)) fields[p[1]] = fs = new();
                    fs[p[2]] = new CFieldLayout(p[2], Int(p[3]), Int(p[4]), Int(p[5]));
                    break;
                default: throw new FormatException($"unexpected probe output: {line}");
            }
        }
        return sizes.ToDictionary(s => s.Key, s => new CStructLayout(s.Key, s.Value, last.GetValueOrDefault(s.Key, ""),
            fields.GetValueOrDefault(s.Key) ?? new Dictionary<string, CFieldLayout>()));
    }

    private static int Int(string s) => int.Parse(s, CultureInfo.InvariantCulture);

    private static string Run(string file, string[] args, string what)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"{what}: could not start {file}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{what}: {file} did not finish in 60 s");
        }
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"{what}: {file} exited with {p.ExitCode}\n{stderr.Result}");
        return stdout.Result;
    }
}
