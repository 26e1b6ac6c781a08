using Vigil.Core.Policy;

namespace Vigil.Tests.Pure.Policy;

public class IpPrefixParserTests
{
    [Theory]
    [InlineData("169.254.169.254", "169.254.169.254/32")]
    [InlineData("0.0.0.0/0", "0.0.0.0/0")]
    [InlineData("10.0.0.0/8", "10.0.0.0/8")]
    [InlineData("fd00:ec2::254", "fd00:ec2::254/128")]
    [InlineData("FD00:EC2::254", "fd00:ec2::254/128")]
    [InlineData("fd00::/8", "fd00::/8")]
    [InlineData("::ffff:169.254.169.254", "169.254.169.254/32")]   // mapped: judged as IPv4
    [InlineData("::ffff:a9fe:a9fe", "169.254.169.254/32")]
    [InlineData("::ffff:169.254.0.0/112", "169.254.0.0/16")]
    [InlineData("::ffff:0:0/96", "0.0.0.0/0")]
    public void ValidPrefixes(string text, string expected)
    {
        var prefix = IpPrefixParser.Parse(text, out var error, out _);
        Assert.Null(error);
        Assert.Equal(expected, prefix!.Value.ToString());
    }

    [Theory]
    [InlineData("10.1", "invalid address")]           // inet_aton would read 10.0.0.1
    [InlineData("010.0.0.1", "invalid address")]      // octal to inet_aton
    [InlineData("256.0.0.1", "invalid address")]
    [InlineData("1.2.3.4/", "invalid prefix length")]
    [InlineData("1.2.3.4/+8", "invalid prefix length")]
    [InlineData("1.2.3.4/08", "invalid prefix length")]
    [InlineData("fd00::/129", "invalid prefix length")]
    [InlineData("10.0.0.1/8", "host bits set")]
    [InlineData("::ffff:169.254.169.254/96", "host bits set")]
    [InlineData("fd00:ec2:::254", "invalid IPv6 address")]
    [InlineData("example.com", "is a host name")]
    [InlineData("localhost", "is a host name")]
    [InlineData("fe80::1%2", "zone index")]
    public void InvalidPrefixes(string text, string reason)
    {
        Assert.Null(IpPrefixParser.Parse(text, out var error, out _));
        Assert.Contains(reason, error);
    }

    [Theory]
    [InlineData("::/0", "does not cover IPv4 destinations")]
    [InlineData("::/64", "does not cover IPv4 destinations")]
    [InlineData("0.0.0.0/0", "guards every IPv4 destination")]
    public void SurprisingPrefixesWarn(string text, string warning)
    {
        Assert.NotNull(IpPrefixParser.Parse(text, out var error, out var w));
        Assert.Null(error);
        Assert.Contains(warning, w);
    }

    [Fact]
    public void ContainsComparesTheCoveringBitsOfTheSameFamily()
    {
        IpPrefix P(string s) => IpPrefixParser.Parse(s, out _, out _)!.Value;
        Assert.True(P("169.254.0.0/16").Contains(P("169.254.169.254")));
        Assert.False(P("169.254.169.254").Contains(P("169.254.0.0/16")));
        Assert.False(P("169.255.0.0/16").Contains(P("169.254.169.254")));
        Assert.False(P("::/0").Contains(P("169.254.169.254"))); // families never mix
        Assert.True(P("fd00::/8").Contains(P("fd00:ec2::254")));
    }
}
