using System.Globalization;
using System.Text;
using System.Text.Json;
using Vigil.Core.Pipeline;
using Vigil.Wire;

namespace Vigil.Outputs;

/// <summary>Where packets went: the kernel's counters (summed over CPUs, indexed by
/// <see cref="TcpStat"/>) and the user-space pipeline's, as a short table and as one JSON object,
/// with the accounting identities checked:
/// <list type="bullet">
/// <item>packets = seen + not_tcp + malformed (kernel)</item>
/// <item>seen = filtered + sampled + emitted + ring_full + aggregated (kernel)</item>
/// <item>received = decoded + malformed (user, when given)</item>
/// </list>
/// Counters read while traffic flows are not one atomic snapshot (each CPU's slot is read in turn,
/// and a packet bumps "packets" before its outcome), so a live read can be off by the packets in
/// flight; read after the hook is detached, the identities hold exactly.</summary>
public sealed class StatsReport
{
    /// <summary>JSON names of the kernel counters, in the order they are written.</summary>
    public static readonly (string Name, TcpStat Stat, string Meaning)[] KernelCounters =
    [
        ("packets", TcpStat.Packets, "hook invocations"),
        ("seen", TcpStat.Seen, "well-formed TCP segments"),
        ("not_tcp", TcpStat.NotTcp, "not IPv4/IPv6 TCP"),
        ("malformed", TcpStat.Malformed, "bad headers, later fragments"),
        ("filtered", TcpStat.Filtered, "rejected by a filter"),
        ("sampled", TcpStat.Sampled, "skipped by --sample"),
        ("emitted", TcpStat.Emitted, "sent to user space"),
        ("ring_full", TcpStat.RingFull, "lost: ring buffer full"),
        ("aggregated", TcpStat.Aggregated, "counted in flows only"),
        ("flow_full", TcpStat.FlowFull, "flow map update failed"),
    ];

    private readonly ulong[] _kernel;
    private readonly (string Name, long Value)[]? _user;

    /// <param name="kernel">Counters indexed by <see cref="TcpStat"/>, at least <see cref="TcpStat.Count"/> long.</param>
    /// <param name="user">The pipeline's counters, or null when there is no event path (--flows).</param>
    public StatsReport(ulong[] kernel, PipelineCounters? user = null)
    {
        if (kernel.Length < (int)TcpStat.Count)
            throw new ArgumentException($"expected {(int)TcpStat.Count} kernel counters, got {kernel.Length}", nameof(kernel));
        _kernel = kernel;
        _user = user?.Snapshot();
    }

    public ulong this[TcpStat stat] => _kernel[(int)stat];

    public bool PacketsBalance => this[TcpStat.Packets] == this[TcpStat.Seen] + this[TcpStat.NotTcp] + this[TcpStat.Malformed];

    public bool SeenBalances => this[TcpStat.Seen] == this[TcpStat.Filtered] + this[TcpStat.Sampled] + this[TcpStat.Emitted]
        + this[TcpStat.RingFull] + this[TcpStat.Aggregated];

    public bool UserBalances => _user is null || User("received") == User("decoded") + User("malformed");

    /// <summary>True when every identity above holds.</summary>
    public bool InvariantsHold() => PacketsBalance && SeenBalances && UserBalances;

    /// <summary>One sentence per identity that does not hold, with the numbers.</summary>
    public IReadOnlyList<string> Violations()
    {
        var list = new List<string>();
        var c = CultureInfo.InvariantCulture;
        if (!PacketsBalance)
            list.Add(string.Create(c, $"packets {this[TcpStat.Packets]} != seen {this[TcpStat.Seen]} + not_tcp {this[TcpStat.NotTcp]} + malformed {this[TcpStat.Malformed]}"));
        if (!SeenBalances)
            list.Add(string.Create(c, $"seen {this[TcpStat.Seen]} != filtered {this[TcpStat.Filtered]} + sampled {this[TcpStat.Sampled]} + emitted {this[TcpStat.Emitted]} + ring_full {this[TcpStat.RingFull]} + aggregated {this[TcpStat.Aggregated]}"));
        if (!UserBalances)
            list.Add(string.Create(c, $"received {User("received")} != decoded {User("decoded")} + malformed {User("malformed")}"));
        return list;
    }

    private long User(string name)
    {
        foreach (var (n, v) in _user!) if (n == name) return v;
        return 0;
    }

    private static readonly Dictionary<string, string> UserMeanings = new()
    {
        ["received"] = "records read from the ring",
        ["decoded"] = "valid packet events",
        ["malformed"] = "records rejected (short, bad version, unknown kind)",
        ["unknown_kind"] = "of which: unknown kind",
        ["dropped_queue"] = "lost: outputs too slow",
        ["written"] = "handed to the outputs",
    };

    /// <summary>A short table for people: kernel counters, user counters, then each identity with
    /// "ok" or the numbers that do not add up.</summary>
    public void WriteTable(TextWriter output)
    {
        var sb = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        sb.Append("kernel\n");
        foreach (var (name, stat, meaning) in KernelCounters)
            sb.Append(c, $"  {name,-14}{this[stat],14}  {meaning}\n");
        if (_user is not null)
        {
            sb.Append("user\n");
            foreach (var (name, value) in _user)
                sb.Append(string.Create(c, $"  {name,-14}{value,14}  {UserMeanings.GetValueOrDefault(name, "")}").TrimEnd()).Append('\n');
        }
        sb.Append("checks\n");
        Check(sb, "packets = seen + not_tcp + malformed", PacketsBalance,
            $"{this[TcpStat.Packets]} != {this[TcpStat.Seen]} + {this[TcpStat.NotTcp]} + {this[TcpStat.Malformed]}");
        Check(sb, "seen = filtered + sampled + emitted + ring_full + aggregated", SeenBalances,
            $"{this[TcpStat.Seen]} != {this[TcpStat.Filtered]} + {this[TcpStat.Sampled]} + {this[TcpStat.Emitted]} + {this[TcpStat.RingFull]} + {this[TcpStat.Aggregated]}");
        if (_user is not null)
            Check(sb, "received = decoded + malformed", UserBalances,
                $"{User("received")} != {User("decoded")} + {User("malformed")}");
        output.Write(sb.ToString());
    }

    private static void Check(StringBuilder sb, string identity, bool holds, FormattableString numbers) =>
        sb.Append("  ").Append(identity.PadRight(62)).Append(holds ? "ok" : "BROKEN: " + numbers.ToString(CultureInfo.InvariantCulture)).Append('\n');

    /// <summary>{"kernel":{…},"user":{…}|null,"invariant_holds":bool} on one line, no newline.</summary>
    public void WriteJson(Utf8JsonWriter json)
    {
        json.WriteStartObject();
        json.WriteStartObject("kernel");
        foreach (var (name, stat, _) in KernelCounters) json.WriteNumber(name, this[stat]);
        json.WriteEndObject();
        if (_user is null) json.WriteNull("user");
        else
        {
            json.WriteStartObject("user");
            foreach (var (name, value) in _user) json.WriteNumber(name, value);
            json.WriteEndObject();
        }
        json.WriteBoolean("invariant_holds", InvariantsHold());
        json.WriteEndObject();
    }

    /// <summary>The JSON object on one line of its own.</summary>
    public void WriteJsonLine(TextWriter output)
    {
        output.Write(ToJson());
        output.Write('\n');
    }

    /// <summary>What the CLI prints to stderr: the table for people, then the same numbers as one JSON
    /// line starting with <c>{"kernel"</c> for scripts (take the last such line).</summary>
    public static void WriteText(TextWriter output, ulong[] kernel, PipelineCounters? user)
    {
        var report = new StatsReport(kernel, user);
        report.WriteTable(output);
        report.WriteJsonLine(output);
        output.Flush();
    }

    public string ToJson()
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream)) WriteJson(json);
        return Encoding.UTF8.GetString(stream.ToArray());
    }
}
