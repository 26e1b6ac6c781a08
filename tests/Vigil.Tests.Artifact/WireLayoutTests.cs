using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Vigil.Interop;
using Vigil.Tests.Artifact.Support;
using Vigil.Wire;

namespace Vigil.Tests.Artifact;

/// <summary>The wire contract's C structs (as the BTF of bpf/wire_layouts.bpf.c describes them) against
/// their C# mirrors in Vigil.Wire: same size, same fields, same offsets. Drift fails here, not in production.</summary>
public class WireLayoutTests
{
    /// <summary>Every C wire struct and its mirror. A new vigil_* struct in the BTF without a row fails
    /// <see cref="EveryWireStructInTheBtfHasAMirror"/>.</summary>
    private static readonly Dictionary<string, Type> Mirrors = new()
    {
        ["vigil_event_header"] = typeof(EventHeader),
        ["vigil_owner"] = typeof(Owner),
        ["vigil_lpm_key"] = typeof(LpmKey),
        ["vigil_tcp_config"] = typeof(TcpConfig),
        ["vigil_tcp_event"] = typeof(TcpEvent),
        ["vigil_flow_key"] = typeof(FlowKey),
        ["vigil_flow_value"] = typeof(FlowValue),
        ["vigil_flow_pending"] = typeof(FlowPending),
        ["vigil_guard_config"] = typeof(GuardConfig),
        ["vigil_guard_state"] = typeof(GuardState),
        ["vigil_guard_dst_key"] = typeof(GuardDstKey),
        ["vigil_guard_policy_text"] = typeof(GuardPolicyText),
        ["vigil_guard_rules"] = typeof(GuardRules),
        ["vigil_guard_port_key"] = typeof(GuardPortKey),
        ["vigil_guard_principal_key"] = typeof(GuardPrincipalKey),
        ["vigil_guard_allow_value"] = typeof(GuardAllowValue),
        ["vigil_guard_settings"] = typeof(GuardSettings),
        ["vigil_guard_event"] = typeof(GuardEvent),
    };

    public static TheoryData<string> WireStructs => new(Mirrors.Keys);

    private static readonly Lazy<IReadOnlyDictionary<string, BtfStruct>> Btf =
        new(() => BtfReader.ReadStructs(EmbeddedObjectFiles.PathOf("wire_layouts.bpf.o")));

    /// <summary>C names are snake_case, mirrors PascalCase: payload_len → PayloadLen, _pad → Pad, hdr → Hdr.</summary>
    internal static string PascalCase(string snake) =>
        string.Concat(snake.Split('_', StringSplitOptions.RemoveEmptyEntries).Select(p => char.ToUpperInvariant(p[0]) + p[1..]));

    private static FieldInfo[] InstanceFields(Type t) =>
        t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);

    private static int ManagedSize(Type t) =>
        (int)typeof(Unsafe).GetMethod(nameof(Unsafe.SizeOf))!.MakeGenericMethod(t).Invoke(null, null)!;

    [Fact]
    public void EveryWireStructInTheBtfHasAMirror()
    {
        var inBtf = Btf.Value.Keys.Where(n => n.StartsWith("vigil_", StringComparison.Ordinal)).ToHashSet();
        Assert.NotEmpty(inBtf);
        Assert.Empty(inBtf.Except(Mirrors.Keys).Order()); // C structs without a C# mirror
        Assert.Empty(Mirrors.Keys.Except(inBtf).Order()); // table rows the object does not declare
    }

    [Theory]
    [MemberData(nameof(WireStructs))]
    public void MirrorHasTheSizeOfTheCStruct(string cName)
    {
        var c = Btf.Value[cName];
        var mirror = Mirrors[cName];
        Assert.True(c.Size % 8 == 0, $"{cName} is {c.Size} bytes; the wire contract wants multiples of 8");
        Assert.Equal(c.Size, Marshal.SizeOf(mirror));
        Assert.Equal(c.Size, ManagedSize(mirror)); // MemoryMarshal.Read uses the managed layout
    }

    [Theory]
    [MemberData(nameof(WireStructs))]
    public void MirrorHasEveryFieldAtTheSameOffsetWithTheSameSize(string cName)
    {
        var c = Btf.Value[cName];
        var mirror = Mirrors[cName];
        var fields = InstanceFields(mirror).ToDictionary(f => f.Name);

        var missing = c.Fields.Select(f => PascalCase(f.Name)).Where(n => !fields.ContainsKey(n)).ToList();
        Assert.True(missing.Count == 0, $"{mirror.Name} lacks fields of {cName}: {string.Join(", ", missing)}");
        var expected = c.Fields.Select(f => PascalCase(f.Name)).ToHashSet();
        var extra = fields.Keys.Where(n => !expected.Contains(n)).ToList();
        Assert.True(extra.Count == 0, $"{mirror.Name} has fields that {cName} does not: {string.Join(", ", extra)}");

        foreach (var f in c.Fields)
        {
            var field = fields[PascalCase(f.Name)];
            Assert.True(f.Offset == (int)Marshal.OffsetOf(mirror, field.Name),
                $"{cName}.{f.Name} is at {f.Offset}, {mirror.Name}.{field.Name} at {Marshal.OffsetOf(mirror, field.Name)}");
            int size = field.FieldType.IsEnum ? Marshal.SizeOf(Enum.GetUnderlyingType(field.FieldType)) : Marshal.SizeOf(field.FieldType);
            Assert.True(f.Size == size, $"{cName}.{f.Name} is {f.Size} bytes, {mirror.Name}.{field.Name} {size}");
        }
    }

    [Theory]
    [InlineData("payload_len", "PayloadLen")]
    [InlineData("_pad", "Pad")]
    [InlineData("hdr", "Hdr")]
    [InlineData("ts_ns", "TsNs")]
    public void SnakeCaseMapsToPascalCase(string snake, string pascal) => Assert.Equal(pascal, PascalCase(snake));
}
