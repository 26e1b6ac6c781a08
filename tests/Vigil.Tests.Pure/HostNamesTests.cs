using Vigil.Core.Naming;
using Vigil.Core.Tcp;

namespace Vigil.Tests.Pure;

public class HostNamesTests
{
    [Fact]
    public void UserNamesComeFromThePasswdFile()
    {
        var names = new HostNames(passwdPath: Samples.PasswdFixture);
        Assert.Equal("root", names.UserName(0));
        Assert.Equal("www-data", names.UserName(33));
        Assert.Equal("alice", names.UserName(1000)); // the first entry for a uid wins
        Assert.Equal("verylongusername-for-tables", names.UserName(1001));
        Assert.Null(names.TryUserName(77)); // empty name skipped
        Assert.Equal("77", names.UserName(77));
        Assert.Equal("4294967295", names.UserName(uint.MaxValue));
        Assert.Null(names.TryUserName(4321));
    }

    [Fact]
    public void PasswdParsingSkipsCommentsNisAndJunk()
    {
        var entries = HostNames.ReadPasswd(Samples.PasswdFixture).ToList();
        Assert.Equal(["root", "daemon", "www-data", "alice", "alias-of-alice", "verylongusername-for-tables"], entries.Select(e => e.Name));
    }

    [Fact]
    public void AMissingPasswdFileMeansNumbersOnly()
    {
        var names = new HostNames(passwdPath: "/nonexistent/vigil/passwd");
        Assert.Equal("0", names.UserName(0));
    }

    [Fact]
    public void InterfacesComeFromTheGivenTableAndUnknownOnesAreNumbers()
    {
        var names = new HostNames(new Dictionary<int, string> { [1] = "lo", [2] = "eth0" }, Samples.PasswdFixture);
        Assert.Equal("eth0", names.InterfaceName(2));
        Assert.Equal("lo", names.TryInterfaceName(1));
        Assert.Null(names.TryInterfaceName(42));
        Assert.Equal("42", names.InterfaceName(42));
    }

    [Fact]
    public void NamesAreCachedSoRepeatedLookupsReturnTheSameString()
    {
        var names = new HostNames(passwdPath: Samples.PasswdFixture);
        Assert.Same(names.InterfaceName(42), names.InterfaceName(42));
        Assert.Same(names.UserName(4321), names.UserName(4321));
        var comm = Comm16.From("nginx");
        Assert.Same(names.CommText(in comm), names.CommText(in comm));
        Assert.Equal("nginx", names.CommText(in comm));
    }

    [Fact]
    public void CommTextHandlesFullAndBrokenNames()
    {
        var names = new HostNames(passwdPath: Samples.PasswdFixture);
        var full = Comm16.From("0123456789abcdefXYZ"); // cut to 15 bytes + NUL, as the kernel does
        Assert.Equal("0123456789abcde", names.CommText(in full));
        Comm16 all16 = default;
        "0123456789abcdef"u8.CopyTo(all16); // no NUL at all: 16 bytes
        Assert.Equal("0123456789abcdef", names.CommText(in all16));
        Comm16 cut = default;
        "ab\u00e9"u8[..3].CopyTo(cut); // half of an é
        Assert.Equal("ab\ufffd", names.CommText(in cut));
    }

    [Fact]
    public void TheCommCacheIsBounded()
    {
        var names = new HostNames(passwdPath: Samples.PasswdFixture);
        for (int i = 0; i < HostNames.MaxCachedComms * 2 + 3; i++)
        {
            var c = Comm16.From("p" + i);
            Assert.Equal("p" + i, names.CommText(in c));
        }
    }
}
