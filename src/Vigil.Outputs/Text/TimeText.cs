namespace Vigil.Outputs.Text;

/// <summary>UTC timestamps as text, written into caller buffers without allocating.</summary>
public static class TimeText
{
    /// <summary>Length of "2025-01-02T03:04:05.123456789Z".</summary>
    public const int Rfc3339NanosLength = 30;
    /// <summary>Length of "03:04:05.123456".</summary>
    public const int ClockMicrosLength = 15;

    /// <summary>RFC 3339, UTC, nine fraction digits: "2025-01-02T03:04:05.123456789Z".</summary>
    public static int Rfc3339Nanos(long unixNs, Span<byte> dst)
    {
        var (date, nanosOfDay) = Split(unixNs);
        int n = 0;
        Digits(date.Year, 4, dst, ref n); dst[n++] = (byte)'-';
        Digits(date.Month, 2, dst, ref n); dst[n++] = (byte)'-';
        Digits(date.Day, 2, dst, ref n); dst[n++] = (byte)'T';
        Clock(nanosOfDay, 9, dst, ref n);
        dst[n++] = (byte)'Z';
        return n;
    }

    /// <summary>Time of day in UTC with microseconds: "03:04:05.123456".</summary>
    public static int ClockMicros(long unixNs, Span<char> dst)
    {
        Span<byte> ascii = stackalloc byte[ClockMicrosLength];
        int n = 0;
        Clock(Split(unixNs).NanosOfDay, 6, ascii, ref n);
        for (int i = 0; i < n; i++) dst[i] = (char)ascii[i];
        return n;
    }

    private const long NanosPerDay = 86_400L * 1_000_000_000;
    private static readonly int UnixEpochDayNumber = DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber;

    private static (DateOnly Date, long NanosOfDay) Split(long unixNs)
    {
        long days = Math.DivRem(unixNs, NanosPerDay, out long rest);
        if (rest < 0) { days--; rest += NanosPerDay; }
        return (DateOnly.FromDayNumber(UnixEpochDayNumber + (int)days), rest);
    }

    private static void Clock(long nanosOfDay, int fractionDigits, Span<byte> dst, ref int n)
    {
        long seconds = Math.DivRem(nanosOfDay, 1_000_000_000, out long nanos);
        Digits((int)(seconds / 3600), 2, dst, ref n); dst[n++] = (byte)':';
        Digits((int)(seconds / 60 % 60), 2, dst, ref n); dst[n++] = (byte)':';
        Digits((int)(seconds % 60), 2, dst, ref n); dst[n++] = (byte)'.';
        long fraction = nanos;
        for (int i = fractionDigits; i < 9; i++) fraction /= 10; // truncate, as clocks do
        Digits(fraction, fractionDigits, dst, ref n);
    }

    private static void Digits(long value, int width, Span<byte> dst, ref int n)
    {
        for (int i = width - 1; i >= 0; i--)
        {
            dst[n + i] = (byte)('0' + value % 10);
            value /= 10;
        }
        n += width;
    }
}
