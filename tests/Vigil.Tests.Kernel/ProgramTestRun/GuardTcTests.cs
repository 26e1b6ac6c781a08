using System.Net;
using System.Runtime.InteropServices;
using Vigil.Interop.Bpf;
using Vigil.Sensors.Guard;
using Vigil.Tests.Kernel.Support;
using Vigil.Wire;

namespace Vigil.Tests.Kernel.TestRun;

/// <summary>The TC enforcer (vigil_guard_tc_egress) on crafted Ethernet frames. BPF_PROG_TEST_RUN gives every
/// packet a socket of uid 0 that was opened by no process (no file, so no credentials to read): a policy
/// allowing uid 0 lets guarded packets pass, one allowing another uid or a group drops them.</summary>
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

    /// <summary>(what, frame, guarded): every guarded frame is dropped for a refused owner and passes for an
    /// allowed one; every other frame passes untouched whoever sends it.</summary>
    public static TheoryData<string, byte[], bool> Frames => new()
    {
        { "IPv4 TCP to the guarded port", V4(), true },
        { "IPv4 UDP to the guarded port", V4(Packet.ProtoUdp), true },
        { "IPv4 TCP behind an 802.1Q tag", V4(eth: new EthernetSpec { Vlans = [VlanTag.Dot1Q(7)] }), true },
        { "IPv6 TCP after hop-by-hop and destination options", V6(), true },
        { "IPv4 TCP to another port", V4(port: 81), false },
        { "IPv4 TCP to another address", V4(to: IPAddress.Parse("169.254.169.253")), false },
        { "IPv6 TCP to another address", V6(to: IPAddress.Parse("fd00:ec2::253")), false },
        { "IPv4 ICMP to the guarded address (not a guarded protocol)", V4(Packet.ProtoIcmp), false },
        { "IPv4 later fragment (no port: only any-port rules apply)", V4(fragment: 185), false },
        { "ARP", Packet.Arp(IPAddress.Parse("10.0.0.1"), MetadataV4), false },
        // Behind a tag: the kernel's test run refuses an untagged IPv4 frame whose header is cut (EINVAL).
        { "runt IPv4 header", V4(eth: new EthernetSpec { Vlans = [VlanTag.Dot1Q(7)] })[..34], false },
    };

    [Theory]
    [Trait("Matrix", "true")] // the verifier of each kernel: socket credentials, the IPv6 walk, both verdicts
    [MemberData(nameof(Frames))]
    public void GuardedFramesAreJudgedByTheirSocketAndEverythingElsePasses(string what, byte[] frame, bool guarded)
    {
        using (var allowed = Load(Policy(GuardPrincipalKind.Uid, 0)))
        {
            Assert.Equal(Pass, ProgramTestRun.Run(allowed.Program(GuardNames.ProgTcEgress), frame).ReturnValue);
            var c = allowed.ReadCounters();
            Assert.Equal((1UL, guarded ? 1UL : 0UL, guarded ? 1UL : 0UL, 0UL), (c[(int)GuardStat.TcPackets], c[(int)GuardStat.Guarded], c[(int)GuardStat.Allowed], c[(int)GuardStat.Denied]));
        }
        // Refused: by uid, and by a group (the test-run socket has no credentials to show one).
        foreach (var (kind, id) in new[] { (GuardPrincipalKind.Uid, 1000UL), (GuardPrincipalKind.Gid, 0UL) })
        {
            using var refused = Load(Policy(kind, id));
            Assert.Equal(guarded ? Drop : Pass, ProgramTestRun.Run(refused.Program(GuardNames.ProgTcEgress), frame).ReturnValue);
            var c = refused.ReadCounters();
            Assert.True((guarded ? 1UL : 0UL) == c[(int)GuardStat.Denied], $"{what} ({kind} rule): denied {c[(int)GuardStat.Denied]}");
            Assert.Equal(c[(int)GuardStat.Checked], c[(int)GuardStat.Unguarded] + c[(int)GuardStat.Guarded]);
        }
    }

    private struct Collect : IRingRecordHandler
    {
        public List<byte[]> Records;
        public void OnRecord(ReadOnlySpan<byte> record) => Records.Add(record.ToArray());
    }

    [Fact]
    public void ADropIsReportedWithTheSocketsOwnerAndNoTask()
    {
        using var sensor = Load(Policy(GuardPrincipalKind.Uid, 1000));
        Assert.Equal(Drop, ProgramTestRun.Run(sensor.Program(GuardNames.ProgTcEgress), V6()).ReturnValue);
        var handler = new Collect { Records = [] };
        sensor.Reader.Drain(ref handler);
        var record = Assert.Single(handler.Records);
        var ev = MemoryMarshal.Read<GuardEvent>(record);
        Assert.Equal((byte)GuardHook.TcEgress, ev.Hook);
        Assert.Equal((byte)GuardVerdict.Deny, ev.Verdict);
        Assert.Equal((0u, 0u, 0u), (ev.Uid, ev.Pid, ev.Tgid)); // the test-run socket's uid; no task at a packet hook
        Assert.Equal(GuardConstants.UnknownId, ev.Gid);        // ... and no file, so no credentials
        Assert.Equal((80, (byte)6, (byte)Packet.ProtoTcp), (ev.Dport, ev.Family, ev.Protocol));
        Assert.Equal(0UL, ev.ExeIno);
    }

    [Fact]
    public void WithNoPolicyEverythingPasses()
    {
        using var sensor = Load(new GuardMapContents(new GuardConfig(), [], [], []));
        Assert.Equal(Pass, ProgramTestRun.Run(sensor.Program(GuardNames.ProgTcEgress), V4()).ReturnValue);
        Assert.Equal(0UL, sensor.ReadCounters()[(int)GuardStat.Checked]);
    }
}
