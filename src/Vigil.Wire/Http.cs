namespace Vigil.Wire;

/// <summary>Mirror of <c>enum vigil_http_stat</c> (bpf/include/vigil/http.h): the socket filter's counters.</summary>
public enum HttpFilterStat
{
    Packets = 0,
    Passed = 1,
    NotIp = 2,
    NotTcp = 3,
    Malformed = 4,
    Unguarded = 5,
    NoPayload = 6,
    Count = 7,
}

/// <summary>Program and map names of bpf/http_filter.bpf.c.</summary>
public static class HttpFilterNames
{
    public const string Object = "http_filter.bpf.o";
    public const string Program = "vigil_http_filter";
    public const string MapConfig = "vigil_http_config";
    public const string MapDst = "vigil_http_dst";
    public const string MapPorts = "vigil_http_ports";
    public const string MapStats = "vigil_http_stats";

    public static readonly string[] Programs = [Program];
    public static readonly string[] Maps = [MapConfig, MapDst, MapPorts, MapStats];
}
