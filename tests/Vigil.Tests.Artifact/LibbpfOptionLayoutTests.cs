using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Vigil.Interop.Native;
using Vigil.Tests.Artifact.Support;

namespace Vigil.Tests.Artifact;

/// <summary>libbpf reads its option structs by the size we pass in <c>sz</c> and by its own offsets: a
/// mirror that is off by one field corrupts calls silently. The truth is measured from libbpf 1.1's
/// installed headers by the system C compiler (<see cref="CLayoutProbe"/>).</summary>
public class LibbpfOptionLayoutTests
{
    /// <summary>C struct ↔ mirror. <c>Unnamed</c> lists mirror fields that stand for unnamed C bit-fields
    /// (<c>__u32 :32</c>), which have no name to offsetof.</summary>
    private sealed record Row(string CName, Type Mirror, string Header, string[] Unnamed);

    private static readonly Row[] Rows =
    [
        new("bpf_object_open_opts", typeof(BpfObjectOpenOpts), "bpf/libbpf.h", ["UnusedAttachProgFd"]),
        new("bpf_tc_hook", typeof(BpfTcHook), "bpf/libbpf.h", []),
        new("bpf_tc_opts", typeof(BpfTcOpts), "bpf/libbpf.h", []),
        new("bpf_test_run_opts", typeof(BpfTestRunOpts), "bpf/bpf.h", []),
    ];

    public static TheoryData<string> Structs => new(Rows.Select(r => r.CName));

    /// <summary>PascalCase → snake_case: KernelLogLevel → kernel_log_level.</summary>
    internal static string SnakeCase(string pascal)
    {
        var sb = new StringBuilder();
        foreach (var ch in pascal)
        {
            if (char.IsUpper(ch) && sb.Length > 0) sb.Append('_');
            sb.Append(char.ToLowerInvariant(ch));
        }
        return sb.ToString();
    }

    private static FieldInfo[] Fields(Type t) =>
        t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)
         .OrderBy(f => (int)Marshal.OffsetOf(t, f.Name)).ToArray();

    private static int FieldSize(FieldInfo f) =>
        f.FieldType.IsPointer ? IntPtr.Size : Marshal.SizeOf(f.FieldType);

    private static readonly Lazy<IReadOnlyDictionary<string, CStructLayout>> Measured = new(() =>
        CLayoutProbe.Measure(
            Rows.Select(r => r.Header).Distinct().ToArray(),
            Rows.ToDictionary(r => r.CName, r => Fields(r.Mirror).Where(f => !r.Unnamed.Contains(f.Name)).Select(f => SnakeCase(f.Name)).ToArray())));

    [Theory]
    [MemberData(nameof(Structs))]
    public void MirrorHasTheSizeOfTheCStruct(string cName)
    {
        var row = Rows.Single(r => r.CName == cName);
        var c = Measured.Value[cName];
        Assert.Equal(c.Size, Marshal.SizeOf(row.Mirror));
        Assert.Equal(c.Size, (int)typeof(Unsafe).GetMethod(nameof(Unsafe.SizeOf))!.MakeGenericMethod(row.Mirror).Invoke(null, null)!);
    }

    [Theory]
    [MemberData(nameof(Structs))]
    public void NamedFieldsHaveTheOffsetsAndSizesOfC(string cName)
    {
        var row = Rows.Single(r => r.CName == cName);
        var c = Measured.Value[cName];
        foreach (var f in Fields(row.Mirror).Where(f => !row.Unnamed.Contains(f.Name)))
        {
            var cf = c.Fields[SnakeCase(f.Name)]; // a field C lacks does not even compile in the probe
            Assert.True(cf.Offset == (int)Marshal.OffsetOf(row.Mirror, f.Name),
                $"{cName}.{cf.Name} is at {cf.Offset}; {row.Mirror.Name}.{f.Name} at {Marshal.OffsetOf(row.Mirror, f.Name)}");
            Assert.True(cf.Size == FieldSize(f), $"{cName}.{cf.Name} is {cf.Size} bytes; {row.Mirror.Name}.{f.Name} {FieldSize(f)}");
        }
    }

    /// <summary>No C field is missing from the mirror: between two consecutive mirror fields C may only have
    /// alignment padding (fewer bytes than the next field's alignment), the mirror's last named field is the
    /// one libbpf names in <c>TYPE__last_field</c>, and after it only tail padding remains.</summary>
    [Theory]
    [MemberData(nameof(Structs))]
    public void MirrorLeavesNoCFieldOut(string cName)
    {
        var row = Rows.Single(r => r.CName == cName);
        var c = Measured.Value[cName];
        var fields = Fields(row.Mirror);
        Assert.False(string.IsNullOrEmpty(c.LastField), $"{cName}__last_field is not defined by the headers");
        Assert.Equal(c.LastField, SnakeCase(fields.Last(f => !row.Unnamed.Contains(f.Name)).Name));

        int end = 0;
        foreach (var f in fields)
        {
            int offset = (int)Marshal.OffsetOf(row.Mirror, f.Name);
            int align = row.Unnamed.Contains(f.Name) ? FieldSize(f) : c.Fields[SnakeCase(f.Name)].Align;
            Assert.True(offset - end < align,
                $"{cName}: {offset - end} unaccounted bytes before {f.Name} (at {offset}) — a C field the mirror lacks?");
            end = offset + FieldSize(f);
        }
        Assert.True(c.Size - end < IntPtr.Size, $"{cName}: {c.Size - end} bytes after the last mirrored field");
    }

    [Theory]
    [InlineData("KernelLogLevel", "kernel_log_level")]
    [InlineData("Sz", "sz")]
    [InlineData("DataSizeIn", "data_size_in")]
    public void PascalCaseMapsToSnakeCase(string pascal, string snake) => Assert.Equal(snake, SnakeCase(pascal));
}
