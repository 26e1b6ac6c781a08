using System.Net;
using Vigil.Core.Naming;
using Vigil.Core.Net;

namespace Vigil.Tests.Pure;

public class AddressTextTests
{
    private static string Format(string address, byte family)
    {
        var a = IpAddress16.From(IPAddress.Parse(address));
        Span<char> buf = stackalloc char[AddressText.MaxAddressLength];
        return buf[..AddressText.Format(in a, family, buf)].ToString();
    }

    private static string Endpoint(string address, byte family, ushort port)
    {
        var a = IpAddress16.From(IPAddress.Parse(address));
        Span<char> buf = stackalloc char[AddressText.MaxEndpointLength];
        return buf[..AddressText.FormatEndpoint(in a, family, port, buf)].ToString();
    }

    [Theory]
    [InlineData("0.0.0.0", 4, "0.0.0.0")]
    [InlineData("255.255.255.255", 4, "255.255.255.255")]
    [InlineData("::", 6, "::")]
    [InlineData("::1", 6, "::1")]
    [InlineData("1::", 6, "1::")]
    [InlineData("2001:db8:0:0:1:0:0:1", 6, "2001:db8::1:0:0:1")] // first of two equal runs
    [InlineData("2001:db8:0:1:1:1:1:1", 6, "2001:db8:0:1:1:1:1:1")] // a single zero group stays
    [InlineData("2001:0:0:1:0:0:0:1", 6, "2001:0:0:1::1")] // the longest run, not the first
    [InlineData("2001:DB8::ABCD", 6, "2001:db8::abcd")]
    [InlineData("::ffff:192.0.2.1", 6, "::ffff:192.0.2.1")]
    [InlineData("::ffff:192.0.2.1", 4, "192.0.2.1")]
    [InlineData("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")]
    public void FormatsAsRfc5952(string input, byte family, string expected) => Assert.Equal(expected, Format(input, family));

    [Fact]
    public void AgreesWithTheRuntimeOnRandomAddresses()
    {
        var random = new Random(5952);
        var bytes = new byte[16];
        for (int i = 0; i < 20_000; i++)
        {
            random.NextBytes(bytes);
            for (int g = 0; g < 8; g++)
                if (random.Next(3) == 0) { bytes[2 * g] = 0; bytes[2 * g + 1] = 0; } // zero runs of every length
                else if (random.Next(4) == 0) bytes[2 * g] = 0; // short groups
            var ip = new IPAddress(bytes);
            if (ip.IsIPv4MappedToIPv6 || bytes.AsSpan(0, 12).IndexOfAnyExcept((byte)0) < 0)
                continue; // ::ffff:a.b.c.d and ::a.b.c.d: the runtime writes dotted tails; see the theory above
            Assert.Equal(ip.ToString(), Format(ip.ToString(), 6));
        }
    }

    [Theory]
    [InlineData("192.0.2.1", 4, 80, "192.0.2.1:80")]
    [InlineData("2001:db8::1", 6, 443, "[2001:db8::1]:443")]
    [InlineData("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 6, 65535, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")]
    public void FormatsEndpoints(string address, byte family, ushort port, string expected) =>
        Assert.Equal(expected, Endpoint(address, family, port));

    [Fact]
    public void FlowKeysWithoutFamilyTreatMappedAddressesAsIPv4()
    {
        var a = IpAddress16.From(IPAddress.Parse("10.1.2.3"));
        Span<char> buf = stackalloc char[AddressText.MaxEndpointLength];
        Assert.Equal("10.1.2.3:9", buf[..AddressText.FormatEndpoint(in a, 9, buf)].ToString());
    }
}
