using System.Net;
using System.Net.Sockets;
using Vigil.Wire;

namespace Vigil.Core.Tcp;

/// <summary>What the user asked to see, before compilation into kernel configuration.</summary>
public sealed record TcpFilterSpec
{
    public IReadOnlyList<string> Ports { get; init; } = [];
    public IReadOnlyList<string> Sources { get; init; } = [];
    public IReadOnlyList<string> Destinations { get; init; } = [];
    /// <summary>Comma-separated flag names, any-of (e.g. "SYN,RST").</summary>
    public string? Flags { get; init; }
    public bool OnlyIPv4 { get; init; }
    public bool OnlyIPv6 { get; init; }
    public uint SampleEvery { get; init; } = 1;
    public uint Snaplen { get; init; }
    public bool FlowsOnly { get; init; }
    public uint WakeupBytes { get; init; } = 64 * 1024;
}

/// <summary>The kernel-side form of a <see cref="TcpFilterSpec"/>: .rodata config and map contents.</summary>
public sealed record CompiledTcpFilter(TcpConfig Config, ushort[] Ports, LpmKey[] Sources, LpmKey[] Destinations);

public static class TcpFilterCompiler
{
    public static CompiledTcpFilter Compile(TcpFilterSpec spec)
    {
        if (spec.OnlyIPv4 && spec.OnlyIPv6) throw new UsageException("-4 and -6 exclude each other");
        if (spec.SampleEvery == 0) throw new UsageException("--sample must be at least 1");
        if (spec.Snaplen > WireConstants.TcpMaxSnaplen)
            throw new UsageException($"--snaplen {spec.Snaplen} is larger than the maximum {WireConstants.TcpMaxSnaplen}");
        var ports = spec.Ports.Select(ParsePort).Distinct().ToArray();
        var src = spec.Sources.Select(c => ParseCidr(c, "--src")).ToArray();
        var dst = spec.Destinations.Select(c => ParseCidr(c, "--dst")).ToArray();
        var config = new TcpConfig
        {
            Snaplen = spec.Snaplen,
            SampleEvery = spec.SampleEvery,
            WakeupBytes = spec.WakeupBytes,
            Families = (byte)(spec.OnlyIPv4 ? 1 : spec.OnlyIPv6 ? 2 : 3),
            FlagsAny = (byte)ParseFlags(spec.Flags),
            FilterPorts = (byte)(ports.Length > 0 ? 1 : 0),
            FilterSrc = (byte)(src.Length > 0 ? 1 : 0),
            FilterDst = (byte)(dst.Length > 0 ? 1 : 0),
            FlowsOnly = (byte)(spec.FlowsOnly ? 1 : 0),
        };
        return new CompiledTcpFilter(config, ports, src, dst);
    }

    public static ushort ParsePort(string text) =>
        ushort.TryParse(text, out var p) && p > 0 ? p : throw new UsageException($"invalid port '{text}': expected 1-65535");

    private static readonly (string Name, TcpFlags Flag)[] FlagNames =
    [
        ("FIN", TcpFlags.Fin), ("SYN", TcpFlags.Syn), ("RST", TcpFlags.Rst), ("PSH", TcpFlags.Psh),
        ("ACK", TcpFlags.Ack), ("URG", TcpFlags.Urg), ("ECE", TcpFlags.Ece), ("CWR", TcpFlags.Cwr),
    ];

    public static TcpFlags ParseFlags(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return TcpFlags.None;
        var result = TcpFlags.None;
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var match = FlagNames.FirstOrDefault(f => f.Name.Equals(part, StringComparison.OrdinalIgnoreCase));
            if (match.Name is null)
                throw new UsageException($"unknown TCP flag '{part}' (use {string.Join(", ", FlagNames.Select(f => f.Name))})");
            result |= match.Flag;
        }
        return result;
    }

    /// <summary>Parses "a.b.c.d[/n]" or "v6[/n]" into an LPM key: family byte, then the address
    /// (IPv4 mapped to ::ffff:0:0/96). Host bits are cleared, so 10.1.2.3/8 matches like 10.0.0.0/8.
    /// IPv6 prefixes match only IPv6 packets, IPv4 prefixes only IPv4 packets.</summary>
    public static unsafe LpmKey ParseCidr(string text, string flag = "CIDR")
    {
        var slash = text.IndexOf('/');
        var addrText = slash < 0 ? text : text[..slash];
        if (!IPAddress.TryParse(addrText, out var addr) || addrText.Contains('%'))
            throw new UsageException($"{flag}: invalid address '{addrText}' in '{text}' (expected IPv4 or IPv6, optionally /prefix)");
        bool v4 = addr.AddressFamily == AddressFamily.InterNetwork;
        int max = v4 ? 32 : 128;
        int len = max;
        if (slash >= 0 && (!int.TryParse(text.AsSpan(slash + 1), out len) || len < 0 || len > max))
            throw new UsageException($"{flag}: invalid prefix length in '{text}' (expected 0-{max})");
        var bytes = (v4 ? addr.MapToIPv6() : addr).GetAddressBytes();
        int bits = v4 ? 96 + len : len;
        for (int i = 0; i < 16; i++)
        {
            int keep = Math.Clamp(bits - i * 8, 0, 8);
            bytes[i] &= (byte)(0xff << (8 - keep));
        }
        var key = new LpmKey { Prefixlen = (uint)(8 + bits), Family = (byte)(v4 ? 4 : 6) };
        for (int i = 0; i < 16; i++) key.Addr[i] = bytes[i];
        return key;
    }
}
