using System.Net;
using Vigil.Interop.Bpf;
using Vigil.Sensors.Guard;
using Vigil.Tests.Kernel.Support;
using Vigil.Wire;

namespace Vigil.Tests.Kernel.TestRun;

/// <summary>The HTTP capture of the guard's egress program, on crafted packets (BPF_PROG_TEST_RUN gives
/// the packet a socket without capture storage: the path every unguarded connection takes).</summary>
public class GuardHttpCaptureTests
{
    private static GuardMapContents Policy() =>
        new(new GuardConfig { Rules = 1, AnyPortTcp = 1, UidRules = 1 }, [], [], []);

    private static GuardSensor Load(uint httpBytes) => GuardSensor.Start(new GuardSensorOptions
    {
        Policy = Policy(),
        LoadOnly = true,
        Settings = new GuardSettings { RateWindowNs = 1_000_000_000, RateBurst = 5, WakeupBytes = 16 * 1024, HttpBytes = httpBytes },
    });

    private static byte[] Request(bool v6) => v6
        ? Packet.Ipv6Tcp(new Ipv6Spec { Destination = IPAddress.Parse("fd00:ec2::254"), Extensions = [Ipv6Extension.HopByHop(), Ipv6Extension.DestinationOptions(1)] },
                         new TcpSpec { DestinationPort = 80, Payload = "GET /latest/meta-data/ HTTP/1.1\r\n\r\n"u8.ToArray() })
        : Packet.Ipv4Tcp(new Ipv4Spec { Destination = IPAddress.Parse("169.254.169.254") },
                         new TcpSpec { DestinationPort = 80, Payload = "GET /latest/meta-data/ HTTP/1.1\r\n\r\n"u8.ToArray() });

    [Theory]
    [Trait("Matrix", "true")] // each budget is another program for the verifier (the copy size bound)
    [InlineData(1u)]
    [InlineData(1024u)]
    [InlineData(GuardConstants.HttpMaxBytes)]
    public void EveryBudgetPassesTheVerifierAndASocketWithoutStorageIsPassedAndNotCaptured(uint httpBytes)
    {
        using var sensor = Load(httpBytes);
        foreach (var v6 in new[] { false, true })
            Assert.Equal(1u, ProgramTestRun.Run(sensor.Program(GuardNames.ProgEgress), Request(v6)).ReturnValue);
        var c = sensor.ReadCounters();
        Assert.Equal(2UL, c[(int)GuardStat.EgressPackets]);
        Assert.Equal(0UL, c[(int)GuardStat.HttpRecords] + c[(int)GuardStat.HttpLost]);
    }

    /// <summary>The cost the capture adds to every packet of an unguarded connection: one socket-storage
    /// lookup that misses. Printed for docs/programs/guard.md; the bound is loose (a shared 2-core VM).</summary>
    [Fact]
    public void TheStorageMissCostsLittlePerPacket()
    {
        var packet = Request(false);
        uint Measure(uint httpBytes)
        {
            using var sensor = Load(httpBytes);
            var prog = sensor.Program(GuardNames.ProgEgress);
            ProgramTestRun.Run(prog, packet, 100_000); // warm-up
            return Enumerable.Range(0, 5).Select(_ => ProgramTestRun.Run(prog, packet, 200_000).AverageNanoseconds).Min();
        }
        uint off = Measure(0), on = Measure(1024);
        Console.WriteLine($"guard egress, TCP packet of a socket without capture storage: http off {off} ns, http on {on} ns");
        Assert.True(on <= off + 25, $"http capture adds {on - off} ns per unguarded packet (off {off} ns, on {on} ns)");
    }
}
