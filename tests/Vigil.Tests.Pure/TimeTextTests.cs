using System.Globalization;
using Vigil.Outputs.Text;

namespace Vigil.Tests.Pure;

public class TimeTextTests
{
    private static string Rfc3339(long ns)
    {
        Span<byte> b = stackalloc byte[TimeText.Rfc3339NanosLength];
        return System.Text.Encoding.ASCII.GetString(b[..TimeText.Rfc3339Nanos(ns, b)]);
    }

    [Theory]
    [InlineData(0L, "1970-01-01T00:00:00.000000000Z")]
    [InlineData(1L, "1970-01-01T00:00:00.000000001Z")]
    [InlineData(1_700_000_123_456_789_012L, "2023-11-14T22:15:23.456789012Z")]
    [InlineData(951_782_399_999_999_999L, "2000-02-28T23:59:59.999999999Z")]
    [InlineData(951_868_800_000_000_000L, "2000-03-01T00:00:00.000000000Z")] // after 29 February
    [InlineData(-1L, "1969-12-31T23:59:59.999999999Z")]
    public void FormatsRfc3339WithNanoseconds(long ns, string expected) => Assert.Equal(expected, Rfc3339(ns));

    [Fact]
    public void AgreesWithDateTimeOverManyInstants()
    {
        var random = new Random(3339);
        Span<char> clock = stackalloc char[TimeText.ClockMicrosLength];
        for (int i = 0; i < 10_000; i++)
        {
            long ns = random.NextInt64(0, 4_102_444_800L * 1_000_000_000); // up to 2100
            var dt = DateTime.UnixEpoch.AddTicks(ns / 100);
            string expected = dt.ToString("yyyy-MM-ddTHH:mm:ss", CultureInfo.InvariantCulture) + "." + (ns % 1_000_000_000).ToString("D9", CultureInfo.InvariantCulture) + "Z";
            Assert.Equal(expected, Rfc3339(ns));
            Assert.Equal(dt.ToString("HH:mm:ss.ffffff", CultureInfo.InvariantCulture), clock[..TimeText.ClockMicros(ns, clock)].ToString());
        }
    }
}
