using System.Runtime.CompilerServices;
using Vigil.Interop.Bpf;
using Vigil.Sensors;
using Vigil.Tests.Artifact.Support;
using Vigil.Wire;

namespace Vigil.Tests.Artifact;

/// <summary>Program, map and global names are string contracts between bpf/tcp_inspect.bpf.c and
/// <see cref="TcpNames"/>. Opening an object parses the ELF only; nothing reaches the kernel.</summary>
public class ObjectNameTests
{
    private static BpfObject OpenTcpInspect() =>
        BpfObject.OpenMemory(EmbeddedObjects.Read(TcpNames.Object), TcpNames.Object);

    /// <summary>libbpf's internal maps (.rodata, .bss, .data, .kconfig) carry a dot; the object's own maps do not.</summary>
    private static bool IsInternal(BpfMap m) => m.Name.Contains('.');

    [Fact]
    public void EveryEmbeddedObjectOpens()
    {
        var names = EmbeddedObjects.Names.ToList();
        Assert.Contains(TcpNames.Object, names);
        Assert.Contains("wire_layouts.bpf.o", names);
        foreach (var name in names)
        {
            using var obj = BpfObject.OpenMemory(EmbeddedObjects.Read(name), name);
            Assert.False(obj.IsLoaded);
        }
    }

    [Fact]
    public void ProgramNamesMatchTcpNamesBothWays()
    {
        using var obj = OpenTcpInspect();
        var inObject = obj.Programs.Select(p => p.Name).ToHashSet();
        foreach (var name in TcpNames.Programs)
            Assert.Equal(name, obj.Program(name).Name); // throws KeyNotFoundException if it does not resolve
        Assert.Empty(TcpNames.Programs.Except(inObject).Order());          // listed, not in the object
        Assert.Empty(inObject.Except(TcpNames.Programs).Order());          // in the object, not listed
        Assert.Equal(TcpNames.Programs.Length, TcpNames.Programs.Distinct().Count());
    }

    [Fact]
    public void MapNamesMatchTcpNamesBothWays()
    {
        using var obj = OpenTcpInspect();
        var inObject = obj.Maps.Where(m => !IsInternal(m)).Select(m => m.Name).ToHashSet();
        foreach (var name in TcpNames.Maps)
            Assert.Equal(name, obj.Map(name).Name);
        Assert.Empty(TcpNames.Maps.Except(inObject).Order());
        Assert.Empty(inObject.Except(TcpNames.Maps).Order());
        Assert.Equal(TcpNames.Maps.Length, TcpNames.Maps.Distinct().Count());
    }

    [Fact]
    public void ProgTcAndProgCgroupAreTheSkbProgramsTheSensorLoads()
    {
        // Names the sensor and the kernel tests use directly must be members of the lists above.
        Assert.Contains(TcpNames.ProgTc, TcpNames.Programs);
        Assert.Contains(TcpNames.ProgCgroup, TcpNames.Programs);
        Assert.Contains(TcpNames.ProgSockState, TcpNames.Programs);
        foreach (var map in new[] { TcpNames.MapEvents, TcpNames.MapStats, TcpNames.MapFlows, TcpNames.MapOwners,
                     TcpNames.MapPending, TcpNames.MapPorts, TcpNames.MapSrc, TcpNames.MapDst })
            Assert.Contains(map, TcpNames.Maps);
    }

    [Fact]
    public void ConfigGlobalIsAConstVolatileTcpConfigAtTheStartOfRodata()
    {
        var vars = BtfVariables.Read(EmbeddedObjectFiles.PathOf(TcpNames.Object));
        var cfg = Assert.Single(vars, v => v.Name == TcpNames.Config);
        Assert.Equal(".rodata", cfg.Section); // set before load, frozen: the verifier sees constants
        Assert.Equal("struct", cfg.TypeKind);
        Assert.Equal("vigil_tcp_config", cfg.TypeName);
        Assert.Contains("const", cfg.Qualifiers);
        Assert.Contains("volatile", cfg.Qualifiers);
        Assert.Equal(Unsafe.SizeOf<TcpConfig>(), cfg.Size);
        // BpfMap.SetInitialValue writes the config at the start of the .rodata image.
        Assert.Equal(0, cfg.Offset);
    }

    [Fact]
    public void RodataMapHoldsTheConfig()
    {
        using var obj = OpenTcpInspect();
        Assert.True(obj.Rodata.ValueSize >= (uint)Unsafe.SizeOf<TcpConfig>(),
            $"{obj.Rodata.Name} is {obj.Rodata.ValueSize} bytes, smaller than vigil_tcp_config");
    }
}

/// <summary>The same string contract between bpf/guard.bpf.c and <see cref="GuardNames"/>.</summary>
public class GuardObjectNameTests
{
    private static BpfObject OpenGuard() => BpfObject.OpenMemory(EmbeddedObjects.Read(GuardNames.Object), GuardNames.Object);

    [Fact]
    public void GuardObjectIsEmbedded() => Assert.Contains(GuardNames.Object, EmbeddedObjects.Names);

    [Fact]
    public void ProgramNamesMatchGuardNamesBothWays()
    {
        using var obj = OpenGuard();
        var inObject = obj.Programs.Select(p => p.Name).ToHashSet();
        Assert.Empty(GuardNames.Programs.Except(inObject).Order());
        Assert.Empty(inObject.Except(GuardNames.Programs).Order());
        Assert.Equal(GuardNames.Programs.Length, GuardNames.Programs.Distinct().Count());
    }

    [Fact]
    public void MapNamesMatchGuardNamesBothWays()
    {
        using var obj = OpenGuard();
        var inObject = obj.Maps.Where(m => !m.Name.Contains('.')).Select(m => m.Name).ToHashSet();
        Assert.Empty(GuardNames.Maps.Except(inObject).Order());
        Assert.Empty(inObject.Except(GuardNames.Maps).Order());
    }

    [Fact]
    public void MapKeyAndValueSizesAreTheWireStructs()
    {
        using var obj = OpenGuard();
        Assert.Equal((uint)Unsafe.SizeOf<GuardState>(), obj.Map(GuardNames.MapState).ValueSize);
        Assert.Equal((uint)Unsafe.SizeOf<GuardDstKey>(), obj.Map(GuardNames.MapDst).KeySize);
        Assert.Equal((uint)Unsafe.SizeOf<GuardPolicyText>(), obj.Map(GuardNames.MapPolicy).ValueSize);
        Assert.Equal((uint)GuardConstants.Slots, obj.Map(GuardNames.MapPolicy).MaxEntries);
        Assert.Equal((uint)Unsafe.SizeOf<GuardRules>(), obj.Map(GuardNames.MapDst).ValueSize);
        Assert.Equal((uint)Unsafe.SizeOf<GuardPortKey>(), obj.Map(GuardNames.MapPorts).KeySize);
        Assert.Equal((uint)Unsafe.SizeOf<GuardRules>(), obj.Map(GuardNames.MapPorts).ValueSize);
        Assert.Equal((uint)Unsafe.SizeOf<GuardPrincipalKey>(), obj.Map(GuardNames.MapAllow).KeySize);
        Assert.Equal((uint)Unsafe.SizeOf<GuardAllowValue>(), obj.Map(GuardNames.MapAllow).ValueSize);
        Assert.Equal((uint)GuardStat.Count * 8, obj.Map(GuardNames.MapStats).ValueSize);
    }

    [Fact]
    public void SettingsGlobalIsAConstVolatileStructAtTheStartOfRodata()
    {
        var vars = BtfVariables.Read(EmbeddedObjectFiles.PathOf(GuardNames.Object));
        var cfg = Assert.Single(vars, v => v.Name == GuardNames.Settings);
        Assert.Equal(".rodata", cfg.Section);
        Assert.Equal("vigil_guard_settings", cfg.TypeName);
        Assert.Contains("const", cfg.Qualifiers);
        Assert.Equal(Unsafe.SizeOf<GuardSettings>(), cfg.Size);
        Assert.Equal(0, cfg.Offset);
    }
}
