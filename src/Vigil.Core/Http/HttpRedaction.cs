namespace Vigil.Core.Http;

/// <summary>What never leaves Vigil in clear text. Applied by every output (JSON, table); there is no
/// option to turn it off. Header values: the metadata tokens, Authorization, Cookie, Proxy-Authorization
/// and any header whose name suggests a secret (token, secret, password, api-key, auth, cookie), except
/// the token TTL headers (a number of seconds). Bodies and query strings: the values of the keys
/// SecretAccessKey, Token, access_token, refresh_token (and the same secret-looking names), in JSON
/// (<c>"Key": "value"</c>) and form/query (<c>key=value</c>) syntax.</summary>
public static class HttpRedaction
{
    public static ReadOnlySpan<byte> Marker => "[redacted]"u8;

    private static readonly byte[][] SecretHeaders =
    [
        "X-aws-ec2-metadata-token"u8.ToArray(), "X-aliyun-ecs-metadata-token"u8.ToArray(), "Metadata-Token"u8.ToArray(),
        "Authorization"u8.ToArray(), "Cookie"u8.ToArray(), "Set-Cookie"u8.ToArray(), "Proxy-Authorization"u8.ToArray(),
    ];

    private static readonly byte[][] SecretWords =
        ["token"u8.ToArray(), "secret"u8.ToArray(), "password"u8.ToArray(), "passwd"u8.ToArray(), "api-key"u8.ToArray(),
         "apikey"u8.ToArray(), "auth"u8.ToArray(), "cookie"u8.ToArray(), "credential"u8.ToArray(), "session"u8.ToArray()];

    /// <summary>True when a header's value must be redacted.</summary>
    public static bool IsSecretHeader(ReadOnlySpan<byte> name)
    {
        foreach (var h in SecretHeaders) if (Ascii.EqualsIgnoreCase(name, h)) return true;
        // A TTL header is a number of seconds, useful and harmless.
        if (name.Length > 12 && Ascii.EqualsIgnoreCase(name[^12..], "-ttl-seconds"u8)) return false;
        return LooksSecret(name);
    }

    /// <summary>True when a JSON, form or query key names a secret.</summary>
    public static bool IsSecretKey(ReadOnlySpan<byte> key) =>
        Ascii.EqualsIgnoreCase(key, "SecretAccessKey"u8) || Ascii.EqualsIgnoreCase(key, "Token"u8) ||
        Ascii.EqualsIgnoreCase(key, "access_token"u8) || Ascii.EqualsIgnoreCase(key, "refresh_token"u8) ||
        Ascii.EqualsIgnoreCase(key, "id_token"u8) || LooksSecret(key);

    private static bool LooksSecret(ReadOnlySpan<byte> name)
    {
        foreach (var w in SecretWords) if (Ascii.ContainsIgnoreCase(name, w)) return true;
        return false;
    }

    /// <summary>Copies <paramref name="text"/> to <paramref name="output"/> with the value of every secret key
    /// replaced by <see cref="Marker"/>: JSON string or scalar values after <c>"key":</c>, and form/query
    /// values after <c>key=</c>. A value cut off by the end of the text is redacted to the end. Returns the
    /// bytes written (stops early rather than overflow <paramref name="output"/>: size it with
    /// <see cref="MaxRedactedLength"/>).</summary>
    public static int Redact(ReadOnlySpan<byte> text, Span<byte> output)
    {
        int o = 0;
        int i = 0;
        while (i < text.Length)
        {
            byte b = text[i];
            if (b == (byte)'"' && JsonSecretValue(text, i, out int valueStart, out int valueEnd))
            {
                if (!Copy(text[i..valueStart], output, ref o)) break;
                bool quoted = valueStart < text.Length && text[valueStart] == (byte)'"';
                if (!Copy(quoted ? "\"[redacted]\""u8 : Marker, output, ref o)) break;
                i = valueEnd;
                continue;
            }
            if (b == (byte)'=' && FormSecretValue(text, i, out int formEnd))
            {
                if (!Copy(text[i..(i + 1)], output, ref o) || !Copy(Marker, output, ref o)) break;
                i = formEnd;
                continue;
            }
            if (o >= output.Length) break;
            output[o++] = b;
            i++;
        }
        return o;
    }

    /// <summary>Output space <see cref="Redact"/> may need for <paramref name="length"/> input bytes.</summary>
    public static int MaxRedactedLength(int length) => length + length / 2 * Marker.Length + 16;

    private static bool Copy(ReadOnlySpan<byte> s, Span<byte> output, ref int o)
    {
        if (o + s.Length > output.Length) return false;
        s.CopyTo(output[o..]);
        o += s.Length;
        return true;
    }

    /// <summary>At a quote that opens a JSON key naming a secret, followed by ':' and a value: where the
    /// value starts and ends (exclusive; the text's end when it is cut off).</summary>
    private static bool JsonSecretValue(ReadOnlySpan<byte> t, int quote, out int valueStart, out int valueEnd)
    {
        valueStart = valueEnd = 0;
        int close = t[(quote + 1)..].IndexOf((byte)'"');
        if (close < 0) return false;
        int keyEnd = quote + 1 + close;
        if (!IsSecretKey(t[(quote + 1)..keyEnd])) return false;
        int j = keyEnd + 1;
        while (j < t.Length && t[j] is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n') j++;
        if (j >= t.Length || t[j] != (byte)':') return false;
        j++;
        while (j < t.Length && t[j] is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n') j++;
        valueStart = j;
        if (j >= t.Length) { valueEnd = t.Length; return true; }
        if (t[j] == (byte)'"')
        {
            int k = j + 1;
            while (k < t.Length && t[k] != (byte)'"') k += t[k] == (byte)'\\' ? 2 : 1;
            valueEnd = Math.Min(k + 1, t.Length);
            return true;
        }
        int e = j;
        while (e < t.Length && t[e] is not ((byte)',' or (byte)'}' or (byte)']' or (byte)'\r' or (byte)'\n')) e++;
        valueEnd = e;
        return true;
    }

    /// <summary>At '=' after a form/query key naming a secret: where its value ends.</summary>
    private static bool FormSecretValue(ReadOnlySpan<byte> t, int eq, out int end)
    {
        end = 0;
        int k = eq;
        while (k > 0 && t[k - 1] is not ((byte)'&' or (byte)'?' or (byte)';' or (byte)' ' or (byte)'\n' or (byte)'"' or (byte)'{' or (byte)',')) k--;
        if (k == eq || !IsSecretKey(t[k..eq])) return false;
        int e = eq + 1;
        while (e < t.Length && t[e] is not ((byte)'&' or (byte)';' or (byte)' ' or (byte)'\r' or (byte)'\n' or (byte)'#')) e++;
        end = e;
        return true;
    }
}
