namespace Vigil.Tests.Kernel.Support;

/// <summary>tcpdump capturing incoming packets in a namespace: the reference Vigil is compared with.</summary>
public sealed class Oracle : IDisposable
{
    private readonly Proc.Running _proc;
    public string File { get; }

    public Oracle(string ns, string iface)
    {
        File = Path.Combine(Path.GetTempPath(), $"vigil-oracle-{Environment.ProcessId}-{Guid.NewGuid():N}.pcap");
        // -Q in: incoming only, as Vigil's ingress hook sees. --immediate-mode: without it libpcap
        // holds packets in a TPACKET_V3 block for up to a second and SIGINT discards them; -U: write each at once.
        _proc = TestNetwork.StartIn(ns, "tcpdump", "-i", iface, "-Q", "in", "--immediate-mode", "-U", "-n", "-w", File, "tcp");
        _proc.WaitFor("listening on", TimeSpan.FromSeconds(15));
    }

    public List<Segment> Stop()
    {
        // On SIGINT tcpdump stops reading: what it has not read from its socket yet is lost, and a lost
        // duplicate ACK looks like a packet Vigil saw twice. Let it catch up first: wait until the capture
        // file has stopped growing for half a second (slow under qemu; bounded at 5 s).
        var deadline = System.Diagnostics.Stopwatch.StartNew();
        var stable = System.Diagnostics.Stopwatch.StartNew();
        long size = -1;
        while (deadline.Elapsed < TimeSpan.FromSeconds(5) && stable.ElapsedMilliseconds < 500)
        {
            long now = System.IO.File.Exists(File) ? new FileInfo(File).Length : 0;
            if (now != size) { size = now; stable.Restart(); }
            Thread.Sleep(100);
        }
        _proc.Interrupt(TimeSpan.FromSeconds(10));
        Report = string.Join("; ", _proc.Stderr.Split('\n').Where(l => l.Contains("packets", StringComparison.Ordinal)).Select(l => l.Trim()));
        return Segment.FromCapture(File);
    }

    /// <summary>tcpdump's own account at exit ("N packets captured; N received by filter; N dropped by kernel").</summary>
    public string Report { get; private set; } = "";

    public void Dispose()
    {
        _proc.Dispose();
        if (System.IO.File.Exists(File)) System.IO.File.Delete(File);
    }
}
