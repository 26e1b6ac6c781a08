using System.Globalization;
using Vigil.Core;

namespace Vigil.Cli.Commands;

/// <summary>Parses "500ms", "10s", "2m", "1h" or plain seconds.</summary>
public static class DurationParser
{
    public static TimeSpan Parse(string text)
    {
        var t = text.Trim();
        (string suffix, double scale)[] units = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)];
        foreach (var (suffix, scale) in units)
            if (t.EndsWith(suffix, StringComparison.Ordinal) &&
                double.TryParse(t[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v > 0)
                return TimeSpan.FromSeconds(v * scale);
        if (double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var secs) && secs > 0)
            return TimeSpan.FromSeconds(secs);
        throw new UsageException($"invalid duration '{text}' (examples: 500ms, 10s, 2m)");
    }
}
