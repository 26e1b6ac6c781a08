using System.Text.Json;
using Vigil.Wire;

namespace Vigil.Outputs.Tcp;

/// <summary>TCP flag names in header bit order (FIN first, CWR last).</summary>
public static class TcpFlagText
{
    public static readonly TcpFlags[] Order =
        [TcpFlags.Fin, TcpFlags.Syn, TcpFlags.Rst, TcpFlags.Psh, TcpFlags.Ack, TcpFlags.Urg, TcpFlags.Ece, TcpFlags.Cwr];

    /// <summary>Names used in JSON: "FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR".</summary>
    public static readonly string[] Names = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];

    /// <summary>One character per flag, as tcpdump prints them: F S R P . U E W.</summary>
    public const string Letters = "FSRP.UEW";

    /// <summary>Text used when no flag is set.</summary>
    public const string NoneText = "none";

    /// <summary>Longest compact text: all eight letters.</summary>
    public const int MaxCompactLength = 8;

    internal static readonly JsonEncodedText[] JsonNames = Array.ConvertAll(Names, n => JsonEncodedText.Encode(n));

    /// <summary>Compact form: "S", "S.", "P.", "F.", "R", "SEW"; "none" when no flag is set.</summary>
    public static int Compact(TcpFlags flags, Span<char> dst)
    {
        if (flags == TcpFlags.None)
        {
            NoneText.CopyTo(dst);
            return NoneText.Length;
        }
        int n = 0;
        for (int i = 0; i < Order.Length; i++)
            if ((flags & Order[i]) != 0) dst[n++] = Letters[i];
        return n;
    }

    /// <summary>"SYN|ACK" (for people, not hot paths).</summary>
    public static string Joined(TcpFlags flags, string separator = "|")
    {
        var names = new List<string>(8);
        for (int i = 0; i < Order.Length; i++)
            if ((flags & Order[i]) != 0) names.Add(Names[i]);
        return names.Count == 0 ? NoneText : string.Join(separator, names);
    }
}
