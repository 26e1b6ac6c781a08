using System.Globalization;
using System.Net;
using System.Text.Json;

namespace Vigil.Tests.Kernel.Support;

/// <summary>The fields of a TCP segment both Vigil and the oracle report, for exact comparison.</summary>
public sealed record Segment(string Src, int Sport, string Dst, int Dport, uint Seq, uint Ack, string Flags, int Len, int Window)
{
    public override string ToString() => $"{Src}:{Sport}->{Dst}:{Dport} {Flags} seq={Seq} ack={Ack} win={Window} len={Len}";

    private static readonly string[] Order = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];

    public static string FlagNames(int bits) =>
        string.Join(",", Order.Where((_, i) => (bits & (1 << i)) != 0));

    private static string Normalize(string address) => IPAddress.Parse(address).ToString();

    /// <summary>From one line of `vigil watch tcp -o json`.</summary>
    public static Segment FromVigilJson(JsonElement e) => new(
        Normalize(e.GetProperty("saddr").GetString()!), e.GetProperty("sport").GetInt32(),
        Normalize(e.GetProperty("daddr").GetString()!), e.GetProperty("dport").GetInt32(),
        e.GetProperty("seq").GetUInt32(), e.GetProperty("ack").GetUInt32(),
        string.Join(",", e.GetProperty("flags").EnumerateArray().Select(f => f.GetString())),
        e.GetProperty("payload_len").GetInt32(), e.GetProperty("window").GetInt32());

    public const string TsharkFields =
        "-e ip.src -e ipv6.src -e tcp.srcport -e ip.dst -e ipv6.dst -e tcp.dstport -e tcp.seq_raw -e tcp.ack_raw -e tcp.flags -e tcp.len -e tcp.window_size_value";

    /// <summary>Reads TCP segments from a capture file with tshark (the oracle's reading of the wire).</summary>
    public static List<Segment> FromCapture(string file)
    {
        var args = new List<string> { "-r", file, "-n", "-Y", "tcp", "-T", "fields", "-E", "separator=|" };
        args.AddRange(TsharkFields.Split(' '));
        var r = Proc.Run("tshark", args).EnsureSuccess("tshark -r " + file);
        var list = new List<Segment>();
        foreach (var line in r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var f = line.Split('|');
            string src = f[0].Length > 0 ? f[0] : f[1], dst = f[3].Length > 0 ? f[3] : f[4];
            int flags = Convert.ToInt32(f[8], 16);
            list.Add(new Segment(Normalize(src), int.Parse(f[2]), Normalize(dst), int.Parse(f[5]),
                uint.Parse(f[6], CultureInfo.InvariantCulture), uint.Parse(f[7], CultureInfo.InvariantCulture),
                FlagNames(flags & 0xff), int.Parse(f[9]), int.Parse(f[10])));
        }
        return list;
    }
}
