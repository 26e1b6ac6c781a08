using System.Diagnostics;
using System.Runtime.InteropServices;
using Vigil.Core.Enrichment;
using Vigil.Core.Naming;
using Vigil.Core.Pipeline;
using Vigil.Core.Tcp;
using Vigil.Interop;
using Vigil.Interop.Bpf;
using Vigil.Outputs;
using Vigil.Outputs.Tcp;
using Vigil.Sensors.Tcp;
using Vigil.Wire;

namespace Vigil.Cli.Commands;

public sealed record TcpWatchSettings
{
    public TcpHookChoice Hook { get; init; }
    public IReadOnlyList<string> Interfaces { get; init; } = [];
    public string? Netns { get; init; }
    public string? CgroupPath { get; init; }
    public TcpFilterSpec Filter { get; init; } = new();
    public bool FlowSortByBytes { get; init; }
    public int FlowRows { get; init; } = 20;
    public string Output { get; init; } = "json";
    public string? PcapPath { get; init; }
    public long? Count { get; init; }
    public TimeSpan? Duration { get; init; }
    public bool PeriodicStats { get; init; }
    public uint RingBytes { get; init; } = 8 << 20;
    public bool Verbose { get; init; }
}

/// <summary>One run of `vigil watch tcp`: start the sensor (in the namespace asked for), read the
/// ring on a dedicated thread into the pipeline, stop on Ctrl-C/SIGTERM, --count or --duration,
/// then report what every stage counted.</summary>
public sealed class TcpWatch(TcpWatchSettings settings, TextWriter stdout, TextWriter stderr)
{
    /// <summary>How long a quiet ring waits before it is read anyway: bounds latency, since the
    /// kernel side wakes the reader only once enough bytes are pending.</summary>
    private const int PollTimeoutMs = 50;

    private readonly struct PublishHandler(TcpPipeline pipeline) : IRingRecordHandler
    {
        public void OnRecord(ReadOnlySpan<byte> record) => pipeline.Publish(record);
    }

    public int Run(CancellationToken cancel)
    {
        var filter = TcpFilterCompiler.Compile(settings.Filter);
        LibbpfRuntime.EnsureLoaded();
        // libbpf's own messages (e.g. each failed attach while auto falls back) only with --verbose:
        // the start-up line already says which hook was chosen and why others were skipped.
        LibbpfRuntime.Log = (level, message) =>
        {
            if (settings.Verbose && level <= LibbpfLogLevel.Info) stderr.WriteLine(message);
        };

        var options = new TcpSensorOptions
        {
            Hook = settings.Hook,
            Interfaces = settings.Interfaces,
            CgroupPath = settings.CgroupPath,
            Config = filter.Config,
            Ports = filter.Ports,
            Sources = filter.Sources,
            Destinations = filter.Destinations,
            RingBytes = settings.RingBytes,
        };
        // setns() is per thread: start (TC attach, /proc reads) happens on a thread inside the namespace.
        var (sensor, seeded) = NetworkNamespace.RunIn(settings.Netns, () =>
        {
            var s = TcpInspectSensor.Start(options);
            int n = 0;
            try
            {
                foreach (var e in ExistingSocketOwners.Read(s.Config.NetnsIno, Cgroups.FindV2Mount(), Cgroups.IdOf))
                    if (s.SeedOwner(e.Key, e.Owner)) n++;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or BpfException)
            {
                stderr.WriteLine($"vigil: could not read existing sockets' owners: {e.Message}");
            }
            return (s, n);
        });

        using (sensor)
        {
            ReportStart(sensor, seeded);
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; stop.Cancel(); });
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; stop.Cancel(); });
            if (settings.Duration is { } d) stop.CancelAfter(d);

            var names = new HostNames(sensor.InterfaceNames);
            var time = TimeBase.Now();
            return settings.Filter.FlowsOnly
                ? RunFlows(sensor, names, stop.Token)
                : RunEvents(sensor, names, time, stop);
        }
    }

    private void ReportStart(TcpInspectSensor sensor, int seeded)
    {
        var line = $"vigil: watching incoming TCP with {TcpInspectSensor.HookName(sensor.Hook)} on {sensor.AttachedTo}";
        if (sensor.Skipped.Count > 0) line += $"; skipped {string.Join("; ", sensor.Skipped)}";
        stderr.WriteLine(line);
        stderr.WriteLine(sensor.OwnerTrackingProblem is { } p
            ? $"vigil: {p}"
            : $"vigil: owners from listen()/connect() as they happen, {seeded} existing sockets read from /proc");
    }

    private int RunEvents(TcpInspectSensor sensor, HostNames names, TimeBase time, CancellationTokenSource stop)
    {
        var sinks = new List<ITcpPacketSink>();
        var disposables = new List<IDisposable>();
        Stream? stdoutStream = null;
        try
        {
            if (settings.Output == "json")
            {
                // fd 1 as a FileStream, not Console.OpenStandardOutput(): the console stream ignores
                // EPIPE, so `vigil … | head` would never learn that its reader is gone.
                stdoutStream = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(1, ownsHandle: false), FileAccess.Write, 1 << 16);
                sinks.Add(new TcpJsonSink(stdoutStream, time, names));
            }
            else
                sinks.Add(new TcpTableSink(stdout, time, names));
            if (settings.PcapPath is { } path)
            {
                var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, 1 << 16);
                disposables.Add(file);
                var pcap = new TcpPcapSink(file, time, names, settings.Filter.Snaplen);
                disposables.Add(pcap);
                sinks.Add(pcap);
            }

            using var pipeline = new TcpPipeline(sinks);
            if (settings.Count is { } n)
            {
                pipeline.StopAfter(n);
                pipeline.LimitReached += stop.Cancel;
            }
            // A closed stdout (`vigil … | head`) ends the run quietly, as it does for tcpdump.
            pipeline.SinkFailed += _ => stop.Cancel();
            var reader = sensor.Reader;
            var handler = new PublishHandler(pipeline);
            var statsEvery = Stopwatch.StartNew();
            while (!stop.IsCancellationRequested)
            {
                if (reader.Poll(ref handler, PollTimeoutMs) > 0) pipeline.EndBatch();
                if (settings.PeriodicStats && statsEvery.ElapsedMilliseconds >= 1000)
                {
                    StatsReport.WriteText(stderr, sensor.ReadCounters(), pipeline.Counters);
                    statsEvery.Restart();
                }
            }
            if (reader.Drain(ref handler) > 0) pipeline.EndBatch(); // what was already in the ring
            pipeline.Complete();
            if (pipeline.Failure is null) stdoutStream?.Flush();
            StatsReport.WriteText(stderr, sensor.ReadCounters(), pipeline.Counters);
            return ExitCodes.Ok;
        }
        finally
        {
            foreach (var d in disposables) d.Dispose();
            try { stdoutStream?.Dispose(); }
            catch (IOException) { } // stdout already closed by the reader
        }
    }

    private int RunFlows(TcpInspectSensor sensor, HostNames names, CancellationToken stop)
    {
        bool tty = !Console.IsOutputRedirected;
        var empty = new PipelineCounters();
        while (!stop.IsCancellationRequested)
        {
            stop.WaitHandle.WaitOne(TimeSpan.FromSeconds(1));
            var flows = sensor.ReadFlows();
            var screen = new StringWriter();
            var now = new FlowClock(sensor.ReadJiffies(), KernelTick.Hz);
            FlowTopView.Render(screen, flows, settings.FlowSortByBytes, settings.FlowRows, now);
            if (tty) stdout.Write("\x1b[H\x1b[2J");
            stdout.Write(screen.ToString());
            if (!tty) stdout.WriteLine();
            stdout.Flush();
        }
        StatsReport.WriteText(stderr, sensor.ReadCounters(), empty);
        return ExitCodes.Ok;
    }
}
