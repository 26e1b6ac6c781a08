using Vigil.Core.Net;

namespace Vigil.Core.Naming;

/// <summary>Formats addresses and endpoints as text into caller buffers, allocating nothing.
/// IPv6 follows RFC 5952 (lower case, no leading zeros, the longest run of two or more zero groups
/// shortened to "::", the first such run on a tie; IPv4-mapped as ::ffff:a.b.c.d).
/// <see cref="IpAddress16.TryFormat"/> builds an IPAddress for IPv6, which allocates.</summary>
public static class AddressText
{
    /// <summary>Longest address text: ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 shape.</summary>
    public const int MaxAddressLength = 45;
    /// <summary>Longest endpoint text: "[" + address + "]:65535".</summary>
    public const int MaxEndpointLength = MaxAddressLength + 8;

    /// <summary>Formats by the packet's family: 4 → dotted quad of the mapped address's last four
    /// bytes; 6 → IPv6 text even when the address happens to be IPv4-mapped.</summary>
    public static int Format(in IpAddress16 address, byte family, Span<char> dst)
    {
        ReadOnlySpan<byte> b = address;
        return family == 4 ? FormatV4(b[12..], dst) : FormatV6(b, dst);
    }

    /// <summary>Formats an address without a family (flow keys): IPv4-mapped addresses as IPv4,
    /// the kernel's convention for IPv4 in 16 bytes.</summary>
    public static int Format(in IpAddress16 address, Span<char> dst) =>
        Format(in address, address.IsV4Mapped ? (byte)4 : (byte)6, dst);

    /// <summary>"a.b.c.d:port" or "[v6]:port".</summary>
    public static int FormatEndpoint(in IpAddress16 address, byte family, ushort port, Span<char> dst)
    {
        int n = 0;
        bool v6 = family != 4;
        if (v6) dst[n++] = '[';
        n += Format(in address, family, dst[n..]);
        if (v6) dst[n++] = ']';
        dst[n++] = ':';
        port.TryFormat(dst[n..], out int w);
        return n + w;
    }

    /// <summary>Endpoint of a flow key address (no family): see <see cref="Format(in IpAddress16, Span{char})"/>.</summary>
    public static int FormatEndpoint(in IpAddress16 address, ushort port, Span<char> dst) =>
        FormatEndpoint(in address, address.IsV4Mapped ? (byte)4 : (byte)6, port, dst);

    private static int FormatV4(ReadOnlySpan<byte> four, Span<char> dst)
    {
        int n = 0;
        for (int i = 0; i < 4; i++)
        {
            if (i > 0) dst[n++] = '.';
            four[i].TryFormat(dst[n..], out int w);
            n += w;
        }
        return n;
    }

    private static int FormatV6(ReadOnlySpan<byte> b, Span<char> dst)
    {
        Span<ushort> g = stackalloc ushort[8];
        for (int i = 0; i < 8; i++) g[i] = (ushort)(b[2 * i] << 8 | b[2 * i + 1]);

        int n;
        if (g[0] == 0 && g[1] == 0 && g[2] == 0 && g[3] == 0 && g[4] == 0 && g[5] == 0xffff)
        {
            "::ffff:".CopyTo(dst);
            n = 7;
            return n + FormatV4(b[12..], dst[n..]);
        }

        // Longest run of zero groups, at least two long; the first one wins a tie.
        int bestStart = -1, bestLen = 1;
        for (int i = 0; i < 8;)
        {
            if (g[i] != 0) { i++; continue; }
            int j = i;
            while (j < 8 && g[j] == 0) j++;
            if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
            i = j;
        }

        n = 0;
        for (int i = 0; i < 8; i++)
        {
            if (i == bestStart)
            {
                dst[n++] = ':';
                dst[n++] = ':';
                i += bestLen - 1;
                continue;
            }
            if (i > 0 && i != bestStart + bestLen) dst[n++] = ':';
            n += Hex(g[i], dst[n..]);
        }
        return n;
    }

    private static int Hex(ushort v, Span<char> dst)
    {
        int digits = v >= 0x1000 ? 4 : v >= 0x100 ? 3 : v >= 0x10 ? 2 : 1;
        for (int k = digits - 1; k >= 0; k--)
        {
            dst[k] = "0123456789abcdef"[v & 0xf];
            v >>= 4;
        }
        return digits;
    }
}
