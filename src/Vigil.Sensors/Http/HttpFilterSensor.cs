using Vigil.Interop;
using Vigil.Interop.Bpf;
using Vigil.Wire;

namespace Vigil.Sensors.Http;

/// <summary>The HTTP socket filter (bpf/http_filter.bpf.c): its own object and maps, filled from the same
/// compiled policy entries as the guard (slot 0, one policy per run), so it runs where no guard is loaded.
/// Attached by <see cref="PacketSocket"/> (SO_ATTACH_BPF) or run by BPF_PROG_TEST_RUN.</summary>
public sealed class HttpFilterSensor : IDisposable
{
    private readonly BpfObject _obj;

    public BpfObject Object => _obj;
    public BpfProgram Program => _obj.Program(HttpFilterNames.Program);

    private HttpFilterSensor(BpfObject obj) => _obj = obj;

    public static HttpFilterSensor Load(GuardConfig config, IReadOnlyList<(LpmKey Key, GuardRules Value)> destinations,
                                        IReadOnlyList<(GuardPortKey Key, GuardRules Value)> ports)
    {
        if (destinations.Count > 4096 || ports.Count > 4096)
            throw new ArgumentException($"the policy compiles to {destinations.Count} prefixes and {ports.Count} ports; the HTTP filter holds at most 4096 of each");
        if (!Capabilities.Current.Has(Capabilities.CAP_BPF) && !Capabilities.Current.Has(Capabilities.CAP_SYS_ADMIN))
            throw new BpfPermissionException("loading the HTTP socket filter and its LPM trie", Errno.EPERM, "CAP_BPF");
        var obj = BpfObject.OpenMemory(EmbeddedObjects.Read(HttpFilterNames.Object), HttpFilterNames.Object);
        try
        {
            obj.Load();
            var dst = obj.Map(HttpFilterNames.MapDst);
            foreach (var (k, v) in destinations) dst.Update(k, v);
            var pm = obj.Map(HttpFilterNames.MapPorts);
            foreach (var (k, v) in ports) pm.Update(k, v);
            obj.Map(HttpFilterNames.MapConfig).Update(0u, config); // last: rules != 0 turns the filter on
            return new HttpFilterSensor(obj);
        }
        catch
        {
            obj.Dispose();
            throw;
        }
    }

    public ulong[] ReadCounters() => _obj.Map(HttpFilterNames.MapStats).SumPerCpuCounters(0, (int)HttpFilterStat.Count);

    public void Dispose() => _obj.Dispose();
}
