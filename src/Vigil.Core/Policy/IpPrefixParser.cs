using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;

namespace Vigil.Core.Policy;

/// <summary>Strict parsing of policy addresses: what is written must mean exactly one prefix.
/// Unlike <c>--src</c>/<c>--dst</c> of <c>vigil watch tcp</c> (a view filter, where 10.1.2.3/8 is read
/// as 10.0.0.0/8), a guard policy rejects host bits: in an allowlist policy a typo must not silently
/// guard a different range.</summary>
public static partial class IpPrefixParser
{
    /// <summary>Parses "a.b.c.d", "a.b.c.d/n", "v6" or "v6/n". IPv4-mapped IPv6 prefixes (::ffff:0:0/96 and
    /// longer) become IPv4 prefixes. Returns null and the reason when the text is not a valid prefix;
    /// <paramref name="warning"/> notes valid but surprising prefixes.</summary>
    public static IpPrefix? Parse(string text, out string? error, out string? warning)
    {
        error = null;
        warning = null;
        var slash = text.IndexOf('/');
        var addrText = slash < 0 ? text : text[..slash];
        if (addrText.Contains('%'))
        {
            error = $"'{text}' has a zone index: the guard matches a destination on every interface, write the address without '%{addrText[(addrText.IndexOf('%') + 1)..]}'";
            return null;
        }
        IPAddress? addr;
        if (addrText.Contains(':'))
        {
            if (!IPAddress.TryParse(addrText, out addr) || addr.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
            {
                error = $"invalid IPv6 address '{addrText}'";
                return null;
            }
        }
        else if (DottedQuad().IsMatch(addrText))
        {
            addr = IPAddress.Parse(addrText);
        }
        else
        {
            error = HostName().IsMatch(addrText) && addrText.Any(char.IsLetter)
                ? $"'{addrText}' is a host name, not an address: write the IP address it stands for (names are not resolved, their answers can change after the policy is checked)"
                : $"invalid address '{addrText}': expected an IPv4 address (a.b.c.d, no leading zeros) or an IPv6 address, optionally with /prefix-length";
            return null;
        }

        bool v4 = addr.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork;
        int max = v4 ? 32 : 128;
        int length = max;
        if (slash >= 0)
        {
            var lenText = text[(slash + 1)..];
            if (!PrefixLength().IsMatch(lenText) || !int.TryParse(lenText, NumberStyles.None, CultureInfo.InvariantCulture, out length) || length > max)
            {
                error = $"invalid prefix length '/{lenText}' in '{text}': {(v4 ? "IPv4" : "IPv6")} prefixes are /0 to /{max}";
                return null;
            }
        }

        var bytes = addr.GetAddressBytes();
        if (HasHostBits(bytes, length))
        {
            var network = new IPAddress(Masked(bytes, length));
            error = $"host bits set in '{text}': write {network}/{length} for the network, or {addr}/{max} for the one address";
            return null;
        }

        if (!v4 && addr.IsIPv4MappedToIPv6 && length >= 96)
            return new IpPrefix(addr.MapToIPv4(), length - 96);
        if (!v4 && length < 96 && new IpPrefix(addr, length).Contains(new IpPrefix(IPAddress.Parse("::ffff:0:0"), 96)))
            warning = $"'{text}' does not cover IPv4 destinations: IPv4-mapped addresses (::ffff:a.b.c.d) are judged as the IPv4 address they carry; add IPv4 prefixes for those";
        else if (length == 0)
            warning = $"'{text}' guards every {(v4 ? "IPv4" : "IPv6")} destination";
        return new IpPrefix(addr, length);
    }

    private static bool HasHostBits(byte[] bytes, int length)
    {
        for (int bit = length; bit < bytes.Length * 8; bit++)
            if ((bytes[bit / 8] & (0x80 >> (bit % 8))) != 0) return true;
        return false;
    }

    private static byte[] Masked(byte[] bytes, int length)
    {
        var r = (byte[])bytes.Clone();
        for (int bit = length; bit < r.Length * 8; bit++) r[bit / 8] &= (byte)~(0x80 >> (bit % 8));
        return r;
    }

    // inet_aton would read 010 as octal and "10.1" as 10.0.0.1: accept only the unambiguous form.
    [GeneratedRegex(@"^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$")]
    private static partial Regex DottedQuad();

    [GeneratedRegex(@"^(0|[1-9][0-9]{0,2})$")]
    private static partial Regex PrefixLength();

    [GeneratedRegex(@"^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9])?)*\.?$")]
    private static partial Regex HostName();
}
