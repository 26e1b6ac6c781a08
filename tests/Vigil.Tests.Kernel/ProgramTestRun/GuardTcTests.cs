using System.Net;
using Vigil.Interop.Bpf;
using Vigil.Sensors.Guard;
using Vigil.Tests.Kernel.Support;
using Vigil.Wire;

namespace Vigil.Tests.Kernel.TestRun;

/// <summary>The TC enforcer (vigil_guard_tc_egress) on crafted Ethernet frames. BPF_PROG_TEST_RUN gives every
/// packet a kernel socket (no file, so no credentials), which the enforcer passes as the host's own — as it
/// passes the kernel's TCP control socket's RSTs and time-wait ACKs. So this tier proves the parsing (which
/// frames go to a guarded destination, port and protocol) and that nothing is ever dropped for a socket with
/// no owner to judge; judging owners (uid, groups, cgroup) is proven end to end (GuardTcEndToEndTests).</summary>
public class GuardTcTests
{
    private const uint Pass = 0xffffffff; // TC_ACT_UNSPEC (-1): no opinion, the packet goes on
    private const uint Drop = 2;          // TC_ACT_SHOT

    /// <summary>One enforce rule guarding TCP and UDP port 80 of 169.254.169.254/32 and fd00:ec2::254/128.</summary>
    private static unsafe GuardMapContents Policy(GuardPrincipalKind kind, ulong id)
    {
        var v4 = new LpmKey { Family = 4, Prefixlen = 8 + 96 + 32 };
        byte[] a4 = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 169, 254, 169, 254];
        var a6 = IPAddress.Parse("fd00:ec2::254").GetAddressBytes();
        var v6 = new LpmKey { Family = 6, Prefixlen = 8 + 128 };
        for (int i = 0; i < 16; i++) { v4.Addr[i] = a4[i]; v6.Addr[i] = a6[i]; }
        var config = new GuardConfig { Rules = 1, EnforceRules = 1 };
        if (kind == GuardPrincipalKind.Uid) config.UidRules = 1; else config.GidRules = 1;
        return new GuardMapContents(config, [(v4, new GuardRules(1)), (v6, new GuardRules(1))],
            [(new GuardPortKey(80, GuardProtocol.Tcp), new GuardRules(1)), (new GuardPortKey(80, GuardProtocol.Udp), new GuardRules(1))],
            [(new GuardPrincipalKey(kind, id), new GuardAllowValue(1, 0, 0))]);
    }

    private static GuardSensor Load(GuardMapContents policy) => GuardSensor.Start(new GuardSensorOptions
    {
        Enforcer = GuardEnforcer.Tc,
        Policy = policy,
        LoadOnly = true,
    });

    private static readonly IPAddress MetadataV4 = IPAddress.Parse("169.254.169.254"), MetadataV6 = IPAddress.Parse("fd00:ec2::254");

    private static byte[] V4(byte protocol = Packet.ProtoTcp, ushort port = 80, IPAddress? to = null, EthernetSpec? eth = null, ushort fragment = 0)
    {
        var ip = new Ipv4Spec { Destination = to ?? MetadataV4, Protocol = protocol, FragmentOffset = fragment };
        return protocol == Packet.ProtoTcp
            ? Packet.Ipv4Tcp(ip, new TcpSpec { DestinationPort = port, Flags = 0x02 }, eth)
            : (eth ?? new EthernetSpec()).Build(Packet.EtherTypeIPv4,
                ip.Build(protocol == Packet.ProtoUdp ? Packet.Udp(40000, port, "vigil"u8) : Packet.IcmpEcho()));
    }

    private static byte[] V6(ushort port = 80, IPAddress? to = null) =>
        Packet.Ipv6Tcp(new Ipv6Spec { Destination = to ?? MetadataV6, Extensions = [Ipv6Extension.HopByHop(), Ipv6Extension.DestinationOptions(1)] },
                       new TcpSpec { DestinationPort = port, Flags = 0x02 });

    /// <summary>(what, frame, guarded, decided): frames to a guarded destination, port and protocol, and frames
    /// the enforcer parsed and found unguarded (a decision); the rest (not IP, too short) it passes unparsed.</summary>
    private static readonly (string What, byte[] Frame, bool Guarded, bool Decided)[] Frames =
    [
        ("IPv4 TCP SYN to the guarded port", V4(), true, false),
        ("IPv4 UDP to the guarded port", V4(Packet.ProtoUdp), true, false),
        ("IPv4 TCP behind an 802.1Q tag", V4(eth: new EthernetSpec { Vlans = [VlanTag.Dot1Q(7)] }), true, false),
        ("IPv6 TCP after hop-by-hop and destination options", V6(), true, false),
        ("IPv4 TCP to another port", V4(port: 81), false, true),
        ("IPv4 TCP to another address", V4(to: IPAddress.Parse("169.254.169.253")), false, true),
        ("IPv6 TCP to another address", V6(to: IPAddress.Parse("fd00:ec2::253")), false, true),
        ("IPv4 ICMP to the guarded address (not a guarded protocol)", V4(Packet.ProtoIcmp), false, true),
        ("IPv4 later fragment (no port: only any-port rules apply)", V4(fragment: 185), false, true),
        ("ARP", Packet.Arp(IPAddress.Parse("10.0.0.1"), MetadataV4), false, false),
        // Behind a tag: the kernel's test run refuses an untagged IPv4 frame whose header is cut (EINVAL).
        ("runt IPv4 header", V4(eth: new EthernetSpec { Vlans = [VlanTag.Dot1Q(7)] })[..34], false, false),
    ];

    [Fact]
    [Trait("Matrix", "true")] // the verifier of each kernel: socket credentials, the IPv6 walk, every verdict path
    public void GuardedFramesAreFoundAndAKernelSocketsPacketsAreNeverDropped()
    {
        // A policy that refuses everyone but uid 1000: still nothing is dropped, since no frame has an owner to judge.
        using var sensor = Load(Policy(GuardPrincipalKind.Uid, 1000));
        foreach (var (what, frame, _, _) in Frames)
            Assert.True(Pass == ProgramTestRun.Run(sensor.Program(GuardNames.ProgTcEgress), frame).ReturnValue, what);
        var c = sensor.ReadCounters();
        Assert.Equal((ulong)Frames.Length, c[(int)GuardStat.TcPackets]);
        Assert.Equal((ulong)Frames.Count(f => f.Guarded), c[(int)GuardStat.HostPackets]);
        Assert.Equal((ulong)Frames.Count(f => f.Decided), c[(int)GuardStat.Checked]);
        Assert.Equal(c[(int)GuardStat.Checked], c[(int)GuardStat.Unguarded]);
        Assert.Equal(0UL, c[(int)GuardStat.Guarded] + c[(int)GuardStat.Denied]);
        var handler = new Collect { Records = [] };
        sensor.Reader.Drain(ref handler);
        Assert.Empty(handler.Records);
    }

    private struct Collect : IRingRecordHandler
    {
        public List<byte[]> Records;
        public void OnRecord(ReadOnlySpan<byte> record) => Records.Add(record.ToArray());
    }

    [Fact]
    public void WithNoPolicyEverythingPasses()
    {
        using var sensor = Load(new GuardMapContents(new GuardConfig(), [], [], []));
        Assert.Equal(Pass, ProgramTestRun.Run(sensor.Program(GuardNames.ProgTcEgress), V4()).ReturnValue);
        Assert.Equal(0UL, sensor.ReadCounters()[(int)GuardStat.Checked]);
    }
}
