using Vigil.Core.Tcp;
using Vigil.Wire;

namespace Vigil.Tests.Pure;

public class ProcNetTcpTests
{
    // Lines as Linux 6.x prints them (header omitted).
    private const string V4Listener = "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 48213 1 0000000000000000 100 0 0 10 0";
    private const string V4Established = "   3: 0200000A:0050 0100000A:C350 01 00000000:00000000 02:000AF3A1 00000000    33        0 51111 2 0000000000000000 20 4 30 10 -1";
    private const string V4WildcardListener = "   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0000000000000000 100 0 0 10 0";
    private const string V6Listener = "   0: 00000000000000000000000000000000:1FBB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 65534        0 157852 1 0000000000000000 100 0 0 10 0";
    private const string V6Established = "   1: 000080FE00000000FF0A5A021B02CEFE:0050 000080FE00000000FF0A5A0277020000:D431 01 00000000:00000000 00:00000000 00000000     0        0 99 1 0000000000000000 20 4 30 10 -1";
    private const string TimeWait = "   2: 0100007F:1F90 0100007F:D000 06 00000000:00000000 03:00000DAB 00000000     0        0 0 3 0000000000000000";

    private static unsafe string Addr(FlowKey k, bool local)
    {
        var b = new byte[16];
        for (int i = 0; i < 16; i++) b[i] = local ? k.Laddr[i] : k.Raddr[i];
        return new System.Net.IPAddress(b).ToString();
    }

    [Fact]
    public void ListenerHasItsLocalAddressAndZeroRemote()
    {
        Assert.True(ProcNetTcp.TryParseLine(V4Listener, v6: false, netnsIno: 7, out var key, out var inode, out var uid));
        Assert.Equal("::ffff:127.0.0.1", Addr(key, local: true));
        Assert.Equal(8080, key.Lport);
        Assert.Equal("::", Addr(key, local: false));
        Assert.Equal(0, key.Rport);
        Assert.Equal(7u, key.NetnsIno);
        Assert.Equal(48213ul, inode);
        Assert.Equal(1000u, uid);
    }

    [Fact]
    public void EstablishedHasBothSides()
    {
        Assert.True(ProcNetTcp.TryParseLine(V4Established, v6: false, 1, out var key, out _, out var uid));
        Assert.Equal("::ffff:10.0.0.2", Addr(key, true));
        Assert.Equal(80, key.Lport);
        Assert.Equal("::ffff:10.0.0.1", Addr(key, false));
        Assert.Equal(50000, key.Rport);
        Assert.Equal(33u, uid);
    }

    [Fact]
    public void WildcardListenersAreAllZeroInBothFamilies()
    {
        // The kernel tracker stores 0.0.0.0 and :: alike, so one wildcard key serves both.
        Assert.True(ProcNetTcp.TryParseLine(V4WildcardListener, false, 1, out var v4, out _, out _));
        Assert.True(ProcNetTcp.TryParseLine(V6Listener, true, 1, out var v6, out _, out _));
        Assert.Equal("::", Addr(v4, true));
        Assert.Equal("::", Addr(v6, true));
        Assert.Equal(8123, v6.Lport);
    }

    [Fact]
    public void Ipv6WordsAreInHostOrder()
    {
        Assert.True(ProcNetTcp.TryParseLine(V6Established, true, 1, out var key, out _, out _));
        Assert.Equal("fe80::25a:aff:fece:21b", Addr(key, true));
        Assert.Equal("fe80::25a:aff:0:277", Addr(key, false)); // words 025A0AFF 00000277
        Assert.Equal(54321, key.Rport);
    }

    [Theory]
    [InlineData(TimeWait)]                                      // other states are not tracked
    [InlineData("  sl  local_address rem_address   st tx_queue")] // the header
    [InlineData("   0: 0100007F:1F90 00000000:0000 0A")]          // truncated
    [InlineData("   0: 0100007G:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 5 1")] // bad hex
    [InlineData("   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 0 1")] // no inode
    public void OtherLinesAreRejected(string line) =>
        Assert.False(ProcNetTcp.TryParseLine(line, false, 1, out _, out _, out _));
}
