using System.Net;
using Vigil.Interop.Bpf;
using Vigil.Sensors.Http;
using Vigil.Tests.Kernel.Support;
using Vigil.Wire;

namespace Vigil.Tests.Kernel.TestRun;

/// <summary>The HTTP socket filter (bpf/http_filter.bpf.c) on crafted frames: only TCP segments to a
/// guarded endpoint with payload (or FIN/RST) pass, with their whole length; everything else returns 0.</summary>
public class HttpFilterTests
{
    private static unsafe HttpFilterSensor Load()
    {
        // 169.254.169.254/32 and fd00:ec2::/64, rule 0 on TCP port 80 only.
        var v4 = new LpmKey { Family = 4, Prefixlen = 8 + 96 + 32 };
        byte[] a4 = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 169, 254, 169, 254];
        var v6 = new LpmKey { Family = 6, Prefixlen = 8 + 64 };
        var a6 = IPAddress.Parse("fd00:ec2::").GetAddressBytes();
        for (int i = 0; i < 16; i++) { v4.Addr[i] = a4[i]; v6.Addr[i] = a6[i]; }
        return HttpFilterSensor.Load(new GuardConfig { Rules = 1 }, [(v4, new GuardRules(1)), (v6, new GuardRules(1))],
            [(new GuardPortKey(80, GuardProtocol.Tcp), new GuardRules(1))]);
    }

    private static readonly byte[] Get = "GET /latest/meta-data/ HTTP/1.1\r\n\r\n"u8.ToArray();
    private static readonly IPAddress Imds4 = IPAddress.Parse("169.254.169.254"), Imds6 = IPAddress.Parse("fd00:ec2::254");

    public static TheoryData<string, byte[], bool> Frames() => new()
    {
        { "IPv4 request", Packet.Ipv4Tcp(new Ipv4Spec { Destination = Imds4 }, new TcpSpec { DestinationPort = 80, Payload = Get }), true },
        { "IPv4 with options", Packet.Ipv4Tcp(new Ipv4Spec { Destination = Imds4, Options = Ipv4Spec.RecordRoute(3) }, new TcpSpec { DestinationPort = 80, Payload = Get }), true },
        { "IPv4 FIN", Packet.Ipv4Tcp(new Ipv4Spec { Destination = Imds4 }, new TcpSpec { DestinationPort = 80, Flags = 0x11 }), true },
        { "IPv4 bare ACK", Packet.Ipv4Tcp(new Ipv4Spec { Destination = Imds4 }, new TcpSpec { DestinationPort = 80, Flags = 0x10 }), false },
        { "IPv4 SYN", Packet.Ipv4Tcp(new Ipv4Spec { Destination = Imds4 }, new TcpSpec { DestinationPort = 80, Flags = 0x02, Options = TcpSpec.SynOptions }), false },
        { "IPv4 other port", Packet.Ipv4Tcp(new Ipv4Spec { Destination = Imds4 }, new TcpSpec { DestinationPort = 81, Payload = Get }), false },
        { "IPv4 other address", Packet.Ipv4Tcp(new Ipv4Spec { Destination = IPAddress.Parse("169.254.169.253") }, new TcpSpec { DestinationPort = 80, Payload = Get }), false },
        { "IPv4 response from the server", Packet.Ipv4Tcp(new Ipv4Spec { Source = Imds4, Destination = IPAddress.Parse("10.0.0.1") }, new TcpSpec { SourcePort = 80, DestinationPort = 40000, Payload = Get }), false },
        { "IPv4 later fragment", Packet.Ipv4Tcp(new Ipv4Spec { Destination = Imds4, FragmentOffset = 10 }, new TcpSpec { DestinationPort = 80, Payload = Get }), false },
        { "IPv4 UDP", (new EthernetSpec()).Build(Packet.EtherTypeIPv4, new Ipv4Spec { Destination = Imds4, Protocol = Packet.ProtoUdp }.Build(Packet.Udp(5000, 80, Get))), false },
        { "IPv4 bad IHL", Packet.Ipv4Tcp(new Ipv4Spec { Destination = Imds4, Ihl = 4 }, new TcpSpec { DestinationPort = 80, Payload = Get }), false },
        { "IPv4 data offset past the end", Packet.Ipv4Tcp(new Ipv4Spec { Destination = Imds4 }, new TcpSpec { DestinationPort = 80, DataOffset = 15 }), false },
        { "IPv6 request", Packet.Ipv6Tcp(new Ipv6Spec { Destination = Imds6 }, new TcpSpec { DestinationPort = 80, Payload = Get }), true },
        { "IPv6 hop-by-hop + routing + destination options", Packet.Ipv6Tcp(new Ipv6Spec { Destination = Imds6, Extensions = [Ipv6Extension.HopByHop(1), Ipv6Extension.Routing(2), Ipv6Extension.DestinationOptions(2)] }, new TcpSpec { DestinationPort = 80, Payload = Get }), true },
        { "IPv6 AH + first fragment", Packet.Ipv6Tcp(new Ipv6Spec { Destination = Imds6, Extensions = [Ipv6Extension.Authentication(), Ipv6Extension.Fragment(0, more: true)] }, new TcpSpec { DestinationPort = 80, Payload = Get }), true },
        { "IPv6 later fragment", Packet.Ipv6Tcp(new Ipv6Spec { Destination = Imds6, Extensions = [Ipv6Extension.Fragment(64)] }, new TcpSpec { DestinationPort = 80, Payload = Get }), false },
        { "IPv6 other prefix", Packet.Ipv6Tcp(new Ipv6Spec { Destination = IPAddress.Parse("fd00:ec3::254") }, new TcpSpec { DestinationPort = 80, Payload = Get }), false },
        { "IPv6 /64 covers another host", Packet.Ipv6Tcp(new Ipv6Spec { Destination = IPAddress.Parse("fd00:ec2::23") }, new TcpSpec { DestinationPort = 80, Payload = Get }), true },
        { "IPv6 too many extension headers", Packet.Ipv6Tcp(new Ipv6Spec { Destination = Imds6, Extensions = Enumerable.Repeat(Ipv6Extension.DestinationOptions(), 7).ToList() }, new TcpSpec { DestinationPort = 80, Payload = Get }), false },
        { "ARP", (new EthernetSpec()).Build(Packet.EtherTypeArp, Packet.Arp(IPAddress.Parse("10.0.0.1"), Imds4)), false },
    };

    [Theory]
    [Trait("Matrix", "true")] // bpf_skb_load_bytes_relative in a socket filter, and each kernel's verifier on the walk
    [MemberData(nameof(Frames))]
    public void OnlyPayloadToGuardedEndpointsPasses(string what, byte[] frame, bool passes)
    {
        using var sensor = Load();
        var r = ProgramTestRun.Run(sensor.Program, frame);
        // TEST_RUN hands socket filters the frame without its 14-byte Ethernet header.
        Assert.True(passes ? r.ReturnValue == frame.Length - 14 : r.ReturnValue == 0, $"{what}: returned {r.ReturnValue} of {frame.Length - 14}");
        var c = sensor.ReadCounters();
        Assert.Equal(1UL, c[(int)HttpFilterStat.Packets]);
        Assert.Equal(passes ? 1UL : 0UL, c[(int)HttpFilterStat.Passed]);
        Assert.Equal(1UL, c[(int)HttpFilterStat.Passed] + c[(int)HttpFilterStat.NotIp] + c[(int)HttpFilterStat.NotTcp] +
                          c[(int)HttpFilterStat.Malformed] + c[(int)HttpFilterStat.Unguarded] + c[(int)HttpFilterStat.NoPayload]);
    }
}
