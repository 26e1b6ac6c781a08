using System.CommandLine;
using System.Runtime.InteropServices;
using System.Text.Json;
using Vigil.Cli.Policy;
using Vigil.Core.Http;
using Vigil.Core.Pipeline;
using Vigil.Core.Policy;
using Vigil.Interop;
using Vigil.Outputs.Http;
using Vigil.Sensors.Http;
using Vigil.Wire;

namespace Vigil.Cli.Commands;

/// <summary>`vigil watch http --iface NAME`: the study's socket-filter form of the HTTP audit. A socket filter
/// on an AF_PACKET socket passes only TCP packets to the policy's guarded endpoints; user space parses
/// Ethernet/IP/TCP and then HTTP exactly as the guard's capture does. Packets have no owner here: the
/// identity fields are null (use `vigil watch guard` for them). Needs CAP_NET_RAW (AF_PACKET) and CAP_BPF.</summary>
public static class WatchHttpCommand
{
    public static Command Create()
    {
        var iface = new Option<string>("--iface", "-i") { Description = "network interface to watch (in this network namespace)", Required = true };
        var policy = new Option<string?>("--policy") { Description = "guard policy file whose endpoint sets are watched (default: the embedded default policy)" };
        var output = new Option<string?>("--output", "-o") { Description = "table|json (default: table on a terminal, json otherwise)" };
        output.AcceptOnlyFromAmong("table", "json");
        var count = new Option<long?>("--count", "-c") { Description = "stop after N requests" };
        var duration = new Option<string?>("--duration", "-d") { Description = "stop after this long (e.g. 10s, 2m)" };
        var bytes = new Option<uint>("--http-bytes") { Description = "bytes of each connection to parse (at most 4096)", DefaultValueFactory = _ => GuardWatchSettings.DefaultHttpBytes };
        var cmd = new Command("http", "Show HTTP requests to guarded endpoints seen on an interface (socket filter on an AF_PACKET socket; needs CAP_NET_RAW)")
        {
            iface, policy, output, count, duration, bytes,
        };
        cmd.SetAction((ParseResult r, CancellationToken ct) =>
        {
            try
            {
                var n = r.GetValue(bytes);
                if (n is 0 or > GuardConstants.HttpMaxBytes) throw new Core.UsageException($"--http-bytes must be 1..{GuardConstants.HttpMaxBytes}");
                if (r.GetValue(count) is <= 0) throw new Core.UsageException("--count must be positive");
                return Task.FromResult(Run(r.GetValue(iface)!, r.GetValue(policy), r.GetValue(output) ?? (Console.IsOutputRedirected ? "json" : "table"),
                    r.GetValue(count) ?? long.MaxValue, r.GetValue(duration) is { } d ? DurationParser.Parse(d) : null, (int)n, ct));
            }
            catch (Exception e)
            {
                return Task.FromResult(ExitCodes.Report(e, Console.Error));
            }
        });
        return cmd;
    }

    private sealed class CountingSink(IHttpRequestSink inner) : IHttpRequestSink
    {
        public long Written;
        public void Write(in HttpRequestView v) { inner.Write(in v); Written++; }
        public void Flush() => inner.Flush();
    }

    private struct Handler(PacketHttpStreams streams) : PacketSocket.IHandler
    {
        public void OnPacket(ReadOnlySpan<byte> frame) => streams.Add(frame, MonotonicNs());
    }

    private static ulong MonotonicNs() => (ulong)(System.Diagnostics.Stopwatch.GetTimestamp() * (1_000_000_000.0 / System.Diagnostics.Stopwatch.Frequency));

    private static int Run(string iface, string? policyPath, string output, long limit, TimeSpan? duration, int budget, CancellationToken cancel)
    {
        var host = new SystemHostPrincipals();
        var result = policyPath is null ? DefaultPolicy.Load(host) : PolicyLoader.LoadFile(policyPath, host);
        foreach (var d in result.Diagnostics) Console.Error.WriteLine(d.ToString());
        if (result.Policy is not { } policy) return ExitCodes.Usage;
        var compiled = PolicyCompiler.Compile(policy);
        // CAP_NET_RAW first: without it nothing else matters, and the kernel's EPERM would not say why.
        if (!Capabilities.Current.Has(Capabilities.CAP_NET_RAW))
            throw new BpfPermissionException("opening an AF_PACKET socket (vigil watch http)", Errno.EPERM, "CAP_NET_RAW");

        LibbpfRuntime.EnsureLoaded();
        using var sensor = HttpFilterSensor.Load(compiled.Config,
            compiled.Destinations.Select(e => (e.Key, e.Value)).ToList(),
            compiled.Ports.Select(e => (e.Key, e.Value)).Where(e => e.Key.Protocol == GuardProtocol.Tcp).ToList());
        using var socket = new PacketSocket(iface, sensor.Program.Fd);
        Console.Error.WriteLine($"vigil: watching HTTP to {compiled.Destinations.Count} guarded destination prefixes of policy {policy.Source} on {iface} " +
                                "(socket filter on an AF_PACKET socket; no process identity on this path)");

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; stop.Cancel(); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; stop.Cancel(); });
        if (duration is { } span) stop.CancelAfter(span);

        var time = TimeBase.Now();
        Stream? stdoutStream = null;
        IHttpRequestSink inner;
        if (output == "json")
        {
            stdoutStream = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(1, ownsHandle: false), FileAccess.Write, 1 << 14);
            inner = new HttpJsonSink(stdoutStream, time, null, "packet");
        }
        else inner = new HttpTableSink(Console.Out, time, null);
        var sink = new CountingSink(inner);
        var streams = new HttpStreams(sink, budget);
        var packets = new PacketHttpStreams(streams, budget);
        var handler = new Handler(packets);
        try
        {
            while (!stop.IsCancellationRequested && sink.Written < limit)
            {
                socket.Poll(ref handler, 50);
                streams.Expire(MonotonicNs(), 1_000_000_000);
                sink.Flush();
            }
            streams.FlushAll(MonotonicNs());
            sink.Flush();
        }
        catch (IOException)
        {
            // stdout closed by its reader: end quietly.
        }
        finally
        {
            try { stdoutStream?.Dispose(); } catch (IOException) { }
        }
        var k = sensor.ReadCounters();
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartObject("kernel");
            foreach (var stat in Enum.GetValues<HttpFilterStat>().Where(s => s != HttpFilterStat.Count))
                w.WriteNumber(JsonNamingPolicy.SnakeCaseLower.ConvertName(stat.ToString()), k[(int)stat]);
            w.WriteEndObject();
            w.WriteStartObject("user");
            w.WriteNumber("received", socket.Received);
            w.WriteNumber("cut", socket.Truncated);
            w.WriteNumber("segments", packets.Segments);
            w.WriteNumber("not_tcp", packets.NotTcp);
            w.WriteNumber("requests", streams.Requests);
            w.WriteNumber("not_http", streams.NotHttp);
            w.WriteNumber("gaps", streams.Gaps);
            w.WriteNumber("written", sink.Written);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        Console.Error.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
        return ExitCodes.Ok;
    }
}
