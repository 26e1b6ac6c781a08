using System.Diagnostics;
using System.Text;
using Vigil.Core.Tcp;
using Vigil.Outputs.Pcap;
using Vigil.Outputs.Tcp;
using Vigil.Wire;

namespace Vigil.Tests.Pure;

public class PcapNgTests
{
    private const string NginxComment = "pid=4242 comm=nginx uid=33 user=www-data gid=33 cgroup_id=9876";

    [Fact]
    public void WriterFramesEveryBlockOnFourByteBoundaries()
    {
        var stream = new MemoryStream();
        using (var w = new PcapNgWriter(stream, "vigil-test", leaveOpen: true))
        {
            uint a = w.Interface(2, PcapLinkType.Ethernet, "eth0", 96);
            uint b = w.Interface(9, PcapLinkType.Raw, "a-longer-name", 0);
            Assert.Equal(a, w.Interface(2, PcapLinkType.Ethernet, "eth0", 96));
            for (int len = 1; len <= 8; len++)
            {
                var data = Enumerable.Range(1, len).Select(i => (byte)i).ToArray();
                w.WritePacket(len % 2 == 0 ? a : b, 1_700_000_000_000_000_000 + len, data, (uint)len + 100,
                    Encoding.UTF8.GetBytes(new string('c', len % 6)));
            }
            w.WritePacket(a, 5, [0xAA], originalLength: 0); // below the captured length: raised to it
        }
        var file = PcapNgReader.Read(stream.ToArray());
        Assert.Equal((1, 0), (file.Major, file.Minor));
        Assert.Equal(-1, file.SectionLength);
        Assert.Equal("vigil-test", Encoding.UTF8.GetString(file.SectionOptions[4]));
        Assert.Equal([(ushort)1, (ushort)101], file.Interfaces.Select(i => i.LinkType));
        Assert.Equal(["eth0", "a-longer-name"], file.Interfaces.Select(i => i.Name));
        Assert.All(file.Interfaces, i => Assert.Equal((byte)9, i.TsResol));
        Assert.Equal([96u, 0u], file.Interfaces.Select(i => i.SnapLen));
        Assert.Equal(9, file.Packets.Count);
        for (int len = 1; len <= 8; len++)
        {
            var p = file.Packets[len - 1];
            Assert.Equal(len % 2 == 0 ? 0u : 1u, p.InterfaceId);
            Assert.Equal(1_700_000_000_000_000_000UL + (ulong)len, p.Timestamp);
            Assert.Equal((uint)len, p.CapturedLength);
            Assert.Equal((uint)len + 100, p.OriginalLength);
            Assert.Equal(Enumerable.Range(1, len).Select(i => (byte)i), p.Data);
            Assert.Equal(len % 6 == 0 ? null : new string('c', len % 6), p.Comment);
        }
        Assert.Equal(1u, file.Packets[8].OriginalLength);
    }

    private static (TcpPacket Packet, byte[] Captured)[] SinkInput()
    {
        var nginx = Samples.Owner(4242, "nginx", 33, 33, 9876);
        var noPasswd = Samples.Owner(31337, "python3", 4321, 4321, 1);
        ulong t = 123_456_789_012;

        var v4 = Samples.Packet("192.0.2.10", 40000, "198.51.100.7", 80, TcpFlags.Psh | TcpFlags.Ack, t, nginx,
            seq: 3_000_000_000, payload: 517);
        var v4Frame = Samples.EthernetIPv4Tcp("192.0.2.10", "198.51.100.7", 40000, 80, 3_000_000_000, 2_000_000,
            TcpFlags.Psh | TcpFlags.Ack, 517)[..(14 + 40)]; // snaplen cut after the headers

        var vlan = Samples.Packet("192.0.2.11", 40001, "198.51.100.7", 80, TcpFlags.Syn, t + 1, nginx, payload: 100);
        var vlanFrame = Samples.EthernetIPv4Tcp("192.0.2.11", "198.51.100.7", 40001, 80, 1_000_000, 0, TcpFlags.Syn, 100,
            vlanTags: 2)[..(14 + 8 + 40)];

        var v6 = Samples.Packet("2001:db8::1", 443, "2001:db8::2", 51000, TcpFlags.Syn | TcpFlags.Ack, t + 2,
            seq: 123_456, hook: TcpHook.Cgroup, ifindex: 7);
        var v6Packet = Samples.IPv6Tcp("2001:db8::1", "2001:db8::2", 443, 51000, 123_456, 2_000_000, TcpFlags.Syn | TcpFlags.Ack, 0);

        var raw4 = Samples.Packet("192.0.2.12", 5555, "198.51.100.7", 22, TcpFlags.Ack, t + 3, noPasswd,
            seq: 77, payload: 1000, hook: TcpHook.Kprobe);
        var raw4Packet = Samples.IPv4Tcp("192.0.2.12", "198.51.100.7", 5555, 22, 77, 2_000_000, TcpFlags.Ack, 1000)[..40];

        var empty = Samples.Packet("192.0.2.13", 1, "198.51.100.7", 2, TcpFlags.Rst, t + 4);

        Fix(ref v4, v4Frame); Fix(ref vlan, vlanFrame); Fix(ref v6, v6Packet); Fix(ref raw4, raw4Packet);
        return [(v4, v4Frame), (vlan, vlanFrame), (v6, v6Packet), (raw4, raw4Packet), (empty, [])];

        static void Fix(ref TcpPacket p, byte[] captured) => p.CapturedLength = (ushort)captured.Length;
    }

    private static (byte[] File, TcpPcapSink Sink) WriteSinkFile()
    {
        var stream = new MemoryStream();
        var sink = new TcpPcapSink(stream, Samples.Time, Samples.Names(), snaplen: 128, leaveOpen: true);
        foreach (var (p, cap) in SinkInput()) sink.Write(in p, cap);
        sink.Flush();
        return (stream.ToArray(), sink);
    }

    [Fact]
    public void SinkWritesInterfacesPacketsAndOwnerComments()
    {
        var (bytes, sink) = WriteSinkFile();
        var file = PcapNgReader.Read(bytes);
        var input = SinkInput();

        // One description per (ifindex, link type): eth0/Ethernet, veth-vigil-7/raw, eth0/raw.
        Assert.Equal([(ushort)1, (ushort)101, (ushort)101], file.Interfaces.Select(i => i.LinkType));
        Assert.Equal(["eth0", "veth-vigil-7", "eth0"], file.Interfaces.Select(i => i.Name));
        Assert.All(file.Interfaces, i => Assert.Equal(128u, i.SnapLen));
        Assert.Equal([0u, 0u, 1u, 2u], file.Packets.Select(p => p.InterfaceId));

        Assert.Equal(4, file.Packets.Count);
        Assert.Equal(4, sink.Written);
        Assert.Equal(1, sink.SkippedNoBytes);
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(input[i].Captured, file.Packets[i].Data);
            Assert.Equal((ulong)Samples.Time.ToUnixNanoseconds(input[i].Packet.TimestampNs), file.Packets[i].Timestamp);
        }
        // Original length: Ethernet = L2 header (14, +4 per VLAN tag) + IP length; raw = IP length.
        Assert.Equal(14u + 40 + 517, file.Packets[0].OriginalLength);
        Assert.Equal(14u + 8 + 40 + 100, file.Packets[1].OriginalLength);
        Assert.Equal(60u, file.Packets[2].OriginalLength);
        Assert.Equal(40u + 1000, file.Packets[3].OriginalLength);

        Assert.Equal(NginxComment, file.Packets[0].Comment);
        Assert.Equal("owner=unknown", file.Packets[2].Comment);
        Assert.Equal("pid=31337 comm=python3 uid=4321 gid=4321 cgroup_id=1", file.Packets[3].Comment);
    }

    [Fact]
    public void DisposingAfterTheCallerClosedTheFileIsHarmless()
    {
        string path = Path.Combine(Path.GetTempPath(), $"vigil-h-outputs-{Environment.ProcessId}-{Guid.NewGuid():N}.pcapng");
        try
        {
            var file = new FileStream(path, FileMode.Create, FileAccess.Write);
            var sink = new TcpPcapSink(file, Samples.Time, Samples.Names());
            var (p, cap) = SinkInput()[0];
            sink.Write(in p, cap);
            sink.Flush();
            file.Dispose(); // the CLI may dispose the file before the sink
            sink.Dispose();
            Assert.Single(PcapNgReader.Read(File.ReadAllBytes(path)).Packets);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void EthernetHeaderLengthCountsVlanTags()
    {
        var frame = Samples.EthernetIPv4Tcp("192.0.2.1", "192.0.2.2", 1, 2, 3, 4, TcpFlags.Syn, 0);
        Assert.Equal(14, TcpPcapSink.EthernetHeaderLengthOf(frame));
        Assert.Equal(18, TcpPcapSink.EthernetHeaderLengthOf(Samples.EthernetIPv4Tcp("192.0.2.1", "192.0.2.2", 1, 2, 3, 4, TcpFlags.Syn, 0, vlanTags: 1)));
        Assert.Equal(22, TcpPcapSink.EthernetHeaderLengthOf(Samples.EthernetIPv4Tcp("192.0.2.1", "192.0.2.2", 1, 2, 3, 4, TcpFlags.Syn, 0, vlanTags: 2)));
        Assert.Equal(14, TcpPcapSink.EthernetHeaderLengthOf(frame.AsSpan(0, 10))); // too short to tell: plain Ethernet
    }

    /// <summary>tshark (Wireshark 4.0) is the oracle: it must open the file and dissect both link types.
    /// frame.comment is the packet-comment field's name in 4.0 (pkt_comment is the protocol).</summary>
    [Fact]
    public async Task TsharkReadsTheFile()
    {
        const string tshark = "/usr/bin/tshark";
        Assert.True(File.Exists(tshark), "tshark is installed on this machine; the test needs it as an independent reader");
        string path = Path.Combine(Path.GetTempPath(), $"vigil-h-outputs-{Environment.ProcessId}-{Guid.NewGuid():N}.pcapng");
        try
        {
            var (bytes, _) = WriteSinkFile();
            File.WriteAllBytes(path, bytes);
            var psi = new ProcessStartInfo(tshark)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var a in new[] { "-n", "-r", path, "-T", "fields", "-E", "separator=|",
                         "-e", "ip.src", "-e", "ipv6.src", "-e", "tcp.srcport", "-e", "tcp.seq_raw", "-e", "frame.comment",
                         "-e", "frame.len", "-e", "frame.cap_len", "-e", "frame.interface_name", "-e", "frame.time_epoch" })
                psi.ArgumentList.Add(a);
            using var process = Process.Start(psi)!;
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(60));
            var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
            var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
            try { await process.WaitForExitAsync(timeout.Token); }
            catch (OperationCanceledException)
            {
                process.Kill(); // the one process this test started
                throw new TimeoutException("tshark did not finish within 60 s");
            }
            string output = await stdout;
            string errors = await stderr;
            Assert.True(process.ExitCode == 0, $"tshark exited {process.ExitCode}: {errors}");
            var rows = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('|')).ToArray();
            Assert.Equal(4, rows.Length);

            Assert.Equal(["192.0.2.10", "", "40000", "3000000000", NginxComment, "571", "54", "eth0"], rows[0][..8]);
            Assert.Equal(["192.0.2.11", "", "40001", "1000000"], rows[1][..4]);
            Assert.Equal(["", "2001:db8::1", "443", "123456", "owner=unknown", "60", "60", "veth-vigil-7"], rows[2][..8]);
            Assert.Equal(["192.0.2.12", "", "5555", "77"], rows[3][..4]);
            Assert.Equal("1040", rows[3][5]);
            // 2023-11-14T22:13:20Z + 123.456789012 s, to the nanosecond.
            Assert.Equal("1700000123.456789012", rows[0][8]);
            Assert.Equal("1700000123.456789014", rows[2][8]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void SteadyStateAllocatesNothing()
    {
        var sink = new TcpPcapSink(new DiscardStream(), Samples.Time, Samples.Names());
        var input = SinkInput();
        Assert.Equal(0, Samples.AllocatedInSteadyState(() =>
        {
            for (int i = 0; i < 10_000; i++) sink.Write(in input[i % input.Length].Packet, input[i % input.Length].Captured);
            sink.Flush();
        }));
        Assert.Equal(2 * 10_000 / 5, sink.SkippedNoBytes);
    }
}
