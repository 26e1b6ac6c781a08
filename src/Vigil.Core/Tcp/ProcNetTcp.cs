using System.Globalization;
using Vigil.Wire;

namespace Vigil.Core.Tcp;

/// <summary>Parses the socket tables in /proc/net/tcp and /proc/net/tcp6 into owner-map keys.</summary>
public static class ProcNetTcp
{
    private const string Listen = "0A", Established = "01";

    /// <summary>Parses one line of /proc/net/tcp{,6}. Listeners get a zero remote side;
    /// wildcard local addresses become all-zero, as the kernel tracker stores them.</summary>
    public static unsafe bool TryParseLine(string line, bool v6, uint netnsIno, out FlowKey key, out ulong inode, out uint uid)
    {
        key = default;
        inode = 0;
        uid = 0;
        var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (f.Length < 10) return false;
        string state = f[3];
        if (state != Listen && state != Established) return false;
        if (!ParseEndpoint(f[1], v6, out var laddr, out var lport) || !ParseEndpoint(f[2], v6, out var raddr, out var rport))
            return false;
        if (!uint.TryParse(f[7], out uid) || !ulong.TryParse(f[9], out inode) || inode == 0) return false;
        bool listener = state == Listen;
        if (laddr.AsSpan().IndexOfAnyExcept((byte)0) < 0 || IsMappedAny(laddr)) laddr = new byte[16];
        for (int i = 0; i < 16; i++)
        {
            key.Laddr[i] = laddr[i];
            key.Raddr[i] = listener ? (byte)0 : raddr[i];
        }
        key.Lport = lport;
        key.Rport = listener ? (ushort)0 : rport;
        key.NetnsIno = netnsIno;
        return true;
    }

    private static bool IsMappedAny(byte[] a) => a[10] == 0xff && a[11] == 0xff && a.AsSpan(12).IndexOfAnyExcept((byte)0) < 0;

    // "0100007F:1F90" (IPv4: one 32-bit word in host order) or 32 hex digits (IPv6: four words).
    private static bool ParseEndpoint(string text, bool v6, out byte[] addr, out ushort port)
    {
        addr = new byte[16];
        port = 0;
        int colon = text.IndexOf(':');
        if (colon < 0 || !ushort.TryParse(text.AsSpan(colon + 1), NumberStyles.HexNumber, null, out port)) return false;
        var hex = text.AsSpan(0, colon);
        if (v6 ? hex.Length != 32 : hex.Length != 8) return false;
        Span<byte> raw = stackalloc byte[16];
        int words = hex.Length / 8;
        for (int w = 0; w < words; w++)
        {
            if (!uint.TryParse(hex.Slice(w * 8, 8), NumberStyles.HexNumber, null, out var word)) return false;
            BitConverter.TryWriteBytes(raw.Slice(w * 4, 4), word); // host (little-endian) order = memory order
        }
        if (v6) raw.CopyTo(addr);
        else
        {
            addr[10] = 0xff;
            addr[11] = 0xff;
            raw[..4].CopyTo(addr.AsSpan(12));
        }
        return true;
    }
}
