using System.Globalization;
using Vigil.Core.Naming;
using Vigil.Core.Net;
using Vigil.Core.Tcp;
using Vigil.Outputs.Text;
using Vigil.Wire;

namespace Vigil.Outputs.Tcp;

public enum FlowSort { Packets, Bytes }

/// <summary>A top-like table of the kernel's flow map, rendered into a TextWriter (the CLI clears the
/// screen between frames). Flows are keyed as seen from this host: LOCAL is the destination of the
/// incoming packets, REMOTE their source. AGE = now − first packet, IDLE = now − last packet, in
/// kernel ticks (see <see cref="FlowClock"/>): both can read one tick (1–10 ms) off.</summary>
public static class FlowTopView
{
    public const int PacketsWidth = 10;
    public const int BytesWidth = 12;
    public const int FlagsWidth = TcpFlagText.MaxCompactLength;
    public const int SeqWidth = 10;
    public const int DurationWidth = 6;

    /// <param name="now">Now, in the kernel's clock of flow times.</param>
    /// <param name="top">Rows to show at most.</param>
    /// <param name="endpointWidth">Width of LOCAL and REMOTE; longer endpoints widen their row.</param>
    public static void Render(TextWriter output, IReadOnlyList<(FlowKey Key, FlowValue Value)> flows, FlowClock now,
        FlowSort sort = FlowSort.Packets, int top = 20, int endpointWidth = TcpTableSink.DefaultEndpointWidth)
    {
        var rows = Sorted(flows, sort);
        int shown = Math.Min(Math.Max(top, 0), rows.Length);
        ulong packets = 0, bytes = 0;
        foreach (var (_, v) in flows) { packets += v.Packets; bytes += v.Bytes; }
        output.Write(string.Create(CultureInfo.InvariantCulture,
            $"flows: {flows.Count}  packets: {packets}  bytes: {bytes}  showing top {shown} by {(sort == FlowSort.Packets ? "packets" : "bytes")}\n"));

        Span<char> buffer = stackalloc char[256 + 2 * AddressText.MaxEndpointLength];
        var line = new LineBuilder(buffer);
        line.Left("LOCAL", endpointWidth);
        line.Append("<- ");
        line.Left("REMOTE", endpointWidth);
        line.Right("PKTS", PacketsWidth);
        line.Right("BYTES", BytesWidth);
        line.Left("FLAGS", FlagsWidth);
        line.Right("LAST SEQ", SeqWidth);
        line.Right("AGE", DurationWidth);
        line.Right("IDLE", DurationWidth);
        line.EndLine();
        output.Write(line.Text);

        Span<char> field = stackalloc char[AddressText.MaxEndpointLength];
        for (int i = 0; i < shown; i++)
        {
            var (key, value) = rows[i];
            line = new LineBuilder(buffer);
            var (local, remote) = Addresses(in key);
            line.Left(field[..AddressText.FormatEndpoint(in local, key.Lport, field)], endpointWidth);
            line.Append("<- ");
            line.Left(field[..AddressText.FormatEndpoint(in remote, key.Rport, field)], endpointWidth);
            line.Right(value.Packets, PacketsWidth);
            line.Right(value.Bytes, BytesWidth); // exact: scripts and tests compare it with other counts
            line.Left(field[..TcpFlagText.Compact((TcpFlags)(byte)value.FlagsSeen, field)], FlagsWidth);
            line.Right(value.LastSeq, SeqWidth);
            line.Right(FormatDuration(now.NanosecondsSince(value.FirstJiffies)), DurationWidth);
            line.Right(FormatDuration(now.NanosecondsSince(value.LastJiffies)), DurationWidth);
            line.EndLine();
            output.Write(line.Text);
        }
    }

    /// <summary>The CLI's form: <paramref name="sortByBytes"/> false sorts by packets.</summary>
    public static void Render(TextWriter output, IReadOnlyList<(FlowKey Key, FlowValue Value)> flows, bool sortByBytes, int top, FlowClock now) =>
        Render(output, flows, now, sortByBytes ? FlowSort.Bytes : FlowSort.Packets, top);

    /// <summary>Descending by the chosen count, then by the other count, then most recent first,
    /// then by key bytes: equal inputs always render in the same order.</summary>
    public static (FlowKey Key, FlowValue Value)[] Sorted(IReadOnlyList<(FlowKey Key, FlowValue Value)> flows, FlowSort sort)
    {
        var rows = flows.ToArray();
        Array.Sort(rows, (a, b) =>
        {
            var (a1, a2) = sort == FlowSort.Packets ? (a.Value.Packets, a.Value.Bytes) : (a.Value.Bytes, a.Value.Packets);
            var (b1, b2) = sort == FlowSort.Packets ? (b.Value.Packets, b.Value.Bytes) : (b.Value.Bytes, b.Value.Packets);
            int c = b1.CompareTo(a1);
            if (c == 0) c = b2.CompareTo(a2);
            if (c == 0) c = b.Value.LastJiffies.CompareTo(a.Value.LastJiffies);
            if (c == 0) c = CompareKeys(in a.Key, in b.Key);
            return c;
        });
        return rows;
    }

    /// <summary>"850ms", "12.3s", "4m05s", "3h25m", "2d03h".</summary>
    public static string FormatDuration(ulong ns)
    {
        ulong ms = ns / 1_000_000;
        ulong s = ms / 1000;
        var c = CultureInfo.InvariantCulture;
        if (ms < 1000) return string.Create(c, $"{ms}ms");
        if (s < 60) return string.Create(c, $"{ms / 100 / 10.0:0.0}s");
        if (s < 3600) return string.Create(c, $"{s / 60}m{s % 60:00}s");
        if (s < 86400) return string.Create(c, $"{s / 3600}h{s / 60 % 60:00}m");
        return string.Create(c, $"{s / 86400}d{s / 3600 % 24:00}h");
    }

    private static unsafe (IpAddress16 Local, IpAddress16 Remote) Addresses(in FlowKey key)
    {
        fixed (byte* l = key.Laddr, r = key.Raddr)
            return (IpAddress16.From(new ReadOnlySpan<byte>(l, 16)), IpAddress16.From(new ReadOnlySpan<byte>(r, 16)));
    }

    private static unsafe int CompareKeys(in FlowKey a, in FlowKey b)
    {
        fixed (FlowKey* pa = &a, pb = &b)
            return new ReadOnlySpan<byte>(pa, sizeof(FlowKey)).SequenceCompareTo(new ReadOnlySpan<byte>(pb, sizeof(FlowKey)));
    }
}
