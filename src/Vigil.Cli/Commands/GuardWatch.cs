using System.Runtime.InteropServices;
using System.Text.Json;
using Vigil.Cli.Policy;
using Vigil.Core.Guard;
using Vigil.Core.Http;
using Vigil.Core.Naming;
using Vigil.Core.Pipeline;
using Vigil.Core.Policy;
using Vigil.Core.Tcp;
using Vigil.Interop;
using Vigil.Interop.Bpf;
using Vigil.Outputs.Guard;
using Vigil.Outputs.Http;
using Vigil.Sensors.Guard;
using Vigil.Wire;

namespace Vigil.Cli.Commands;

public sealed record GuardWatchSettings
{
    public string? PolicyPath { get; init; }
    public GuardEnforcer Enforcer { get; init; } = GuardEnforcer.Cgroup;
    public string? CgroupPath { get; init; }
    /// <summary>TC enforcer: interfaces whose egress is guarded.</summary>
    public IReadOnlyList<string> Interfaces { get; init; } = [];
    public string Output { get; init; } = "json";
    public long? Count { get; init; }
    public TimeSpan? Duration { get; init; }
    public uint RateBurst { get; init; } = 5;
    public bool Verbose { get; init; }
    /// <summary>Where to pin; null = the default (vigil/guard on the mounted bpffs).</summary>
    public string? PinDirectory { get; init; }
    /// <summary>Pin nothing: enforcement ends with this process.</summary>
    public bool NoPin { get; init; }
    /// <summary>1 KiB: a metadata request (request line and headers of curl, the AWS SDKs, python) fits
    /// with room for a second request on the connection, at one ring record per connection.</summary>
    public const uint DefaultHttpBytes = 1024;
    /// <summary>HTTP audit budget per guarded connection (0 = off).</summary>
    public uint HttpBytes { get; init; } = DefaultHttpBytes;
}

/// <summary>One run of `vigil watch guard`: validate and compile the policy (nothing touches the kernel
/// when it is invalid), load and attach the guard — adopting a pinned one — print what is guarded, then
/// every decision the kernel reports until Ctrl-C/SIGTERM, --count or --duration. SIGHUP reloads the
/// policy file (an invalid one changes nothing). On exit an enforcing, pinned guard stays in the kernel;
/// anything else is detached.</summary>
public sealed class GuardWatch(GuardWatchSettings settings, TextWriter stdout, TextWriter stderr)
{
    private const int PollTimeoutMs = 50;

    /// <summary>Decodes records and writes them straight to the sink: decisions are rate-limited in the
    /// kernel, so one thread keeps up without a hand-off queue.</summary>
    private sealed class EventLoop(IGuardDecisionSink sink, SystemGuardNames names, long limit, HttpStreams? http)
    {
        public long Received, Decoded, Malformed, Written, HttpRecords, HttpMalformed;
        public bool LimitReached => Written >= limit;

        public void OnRecord(ReadOnlySpan<byte> record)
        {
            Received++;
            if (http is not null && record.Length >= 2 && System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(record) == (ushort)EventKind.GuardHttp)
            {
                // HTTP audit slices: reassembled per connection, requests written when complete.
                if (GuardHttpDecoder.TryDecode(record, out var cookie, out var origin, out var offset, out var data, out var flags, out var ts) != DecodeResult.Ok)
                {
                    HttpMalformed++;
                    return;
                }
                HttpRecords++;
                names.Generation = origin.Generation;
                http.Add(cookie, in origin, offset, data, (flags & (GuardConstants.HttpEnd | GuardConstants.HttpBudget)) != 0, ts);
                return;
            }
            if (GuardEventDecoder.TryDecode(record, out var d) != DecodeResult.Ok) { Malformed++; return; }
            Decoded++;
            if (Written >= limit) return;
            names.Generation = d.Generation; // rule ids mean what that generation's policy says
            sink.Write(in d);
            Written++;
        }
    }

    private readonly struct Handler(EventLoop loop) : IRingRecordHandler
    {
        public void OnRecord(ReadOnlySpan<byte> record) => loop.OnRecord(record);
    }

    /// <summary>The policy file (or the embedded default) validated and compiled, with its text for the
    /// kernel; null after writing every diagnostic when it is invalid.</summary>
    private (GuardPolicy Policy, CompiledGuardPolicy Compiled, GuardMapContents Contents)? LoadPolicy(string appliedBy)
    {
        var host = new SystemHostPrincipals();
        var result = settings.PolicyPath is null ? DefaultPolicy.Load(host) : PolicyLoader.LoadFile(settings.PolicyPath, host);
        if (settings.Enforcer == GuardEnforcer.Tc) result = PacketEnforcerLimits.Apply(result);
        foreach (var d in result.Diagnostics) stderr.WriteLine(d.ToString());
        if (result.Policy is not { } policy) return null;
        var compiled = PolicyCompiler.Compile(policy);
        return (policy, compiled, ToMapContents(policy, compiled, appliedBy));
    }

    public int Run(CancellationToken cancel)
    {
        string appliedBy = $"vigil watch guard (pid {Environment.ProcessId})";
        if (LoadPolicy(appliedBy) is not var (policy, compiled, contents)) return ExitCodes.Usage;
        var pinDir = settings.NoPin ? null : settings.PinDirectory ?? GuardPins.DefaultDirectory();
        if (pinDir is null && !settings.NoPin)
            stderr.WriteLine("vigil: warning: no bpf file system is mounted, so nothing is pinned: enforcement ends when vigil stops " +
                             "(mount -t bpf bpf /sys/fs/bpf, or pass --pin-dir DIR on one; --no-pin silences this)");

        LibbpfRuntime.EnsureLoaded();
        LibbpfRuntime.Log = (level, message) =>
        {
            if (settings.Verbose && level <= LibbpfLogLevel.Info) stderr.WriteLine(message);
        };
        // The HTTP audit marks connections at connect(), which only the cgroup enforcer hooks.
        uint httpBytes = settings.Enforcer == GuardEnforcer.Cgroup ? settings.HttpBytes : 0;
        using var sensor = GuardSensor.Start(new GuardSensorOptions
        {
            Enforcer = settings.Enforcer,
            CgroupPath = settings.CgroupPath,
            Interfaces = settings.Interfaces,
            Policy = contents,
            Settings = new GuardSettings { RateWindowNs = 1_000_000_000, RateBurst = settings.RateBurst, WakeupBytes = 16 * 1024, HttpBytes = httpBytes },
            PinDirectory = pinDir,
        });
        stderr.WriteLine(StartLine(policy, compiled, sensor));

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; stop.Cancel(); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; stop.Cancel(); });
        int reloads = 0; // SIGHUP requests, handled on the reader thread between polls
        using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, ctx => { ctx.Cancel = true; Interlocked.Increment(ref reloads); });
        if (settings.Duration is { } duration) stop.CancelAfter(duration);

        var time = TimeBase.Now();
        var names = new SystemGuardNames(sensor.Maps, new HostNames(), CgroupPaths.ForThisHost());
        Stream? stdoutStream = null;
        IGuardDecisionSink sink;
        if (settings.Output == "json")
        {
            // fd 1 as a FileStream: the console stream ignores EPIPE (`vigil … | head` must end).
            stdoutStream = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(1, ownsHandle: false), FileAccess.Write, 1 << 14);
            sink = new GuardJsonSink(stdoutStream, time, names);
        }
        else
            sink = new GuardTableSink(stdout, time, names);
        IHttpRequestSink? httpSink = httpBytes == 0 ? null
            : stdoutStream is not null ? new HttpJsonSink(stdoutStream, time, names, "cgroup") : new HttpTableSink(stdout, time, names);
        var http = httpSink is null ? null : new HttpStreams(httpSink, (int)httpBytes);

        var loop = new EventLoop(sink, names, settings.Count ?? long.MaxValue, http);
        var handler = new Handler(loop);
        try
        {
            var reader = sensor.Reader;
            while (!stop.IsCancellationRequested && !loop.LimitReached)
            {
                if (reader.Poll(ref handler, PollTimeoutMs) > 0) sink.Flush();
                // A request still incomplete after a second is reported as it is (truncated).
                http?.Expire(MonotonicNs(), 1_000_000_000);
                httpSink?.Flush();
                if (Interlocked.Exchange(ref reloads, 0) > 0) Reload(sensor, appliedBy);
            }
            if (reader.Drain(ref handler) > 0) sink.Flush();
            http?.FlushAll(MonotonicNs());
            httpSink?.Flush();
        }
        catch (IOException)
        {
            // stdout closed by its reader (`| head`): end quietly, as tcpdump does.
        }
        finally
        {
            try { stdoutStream?.Dispose(); } catch (IOException) { }
        }
        stderr.WriteLine(StatsJson(sensor.ReadCounters(), loop, http));
        if (sensor.StaysAfterExit)
            stderr.WriteLine($"vigil: enforcement stays in the kernel, pinned in {sensor.PinDirectory} (generation {sensor.Generation}); " +
                             $"`vigil guard remove --pin-dir {sensor.PinDirectory}` ends it");
        return ExitCodes.Ok;
    }

    /// <summary>SIGHUP: the policy file again. Invalid = every diagnostic and nothing changes; valid = one atomic swap.</summary>
    private void Reload(GuardSensor sensor, string appliedBy)
    {
        try
        {
            if (LoadPolicy(appliedBy) is not var (policy, compiled, contents))
            {
                stderr.WriteLine($"vigil: reload refused: {settings.PolicyPath ?? "the default policy"} is invalid; generation {sensor.Generation} stays in force");
                return;
            }
            uint generation = sensor.Maps.Swap(contents);
            stderr.WriteLine($"vigil: reloaded {policy.Source}: generation {generation}: {RuleList(compiled)}");
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            stderr.WriteLine($"vigil: reload failed: {e.Message}; generation {sensor.Generation} stays in force");
        }
    }

    public static GuardMapContents ToMapContents(GuardPolicy policy, CompiledGuardPolicy p, string appliedBy) => new(
        p.Config,
        p.Destinations.Select(e => (e.Key, e.Value)).ToList(),
        p.Ports.Select(e => (e.Key, e.Value)).ToList(),
        p.Allow.Select(e => (e.Key, e.Value)).ToList(),
        AppliedPolicy.Describe(policy, p, appliedBy, DateTimeOffset.UtcNow).ToUtf8());

    private static string RuleList(CompiledGuardPolicy compiled) =>
        string.Join(", ", compiled.Rules.Select(r => $"{r.Name} ({(r.Mode == GuardMode.Enforce ? "enforce" : "audit")}: {r.EndpointSet})"));

    private static string StartLine(GuardPolicy policy, CompiledGuardPolicy compiled, GuardSensor sensor)
    {
        int enforce = compiled.Rules.Count(r => r.Mode == GuardMode.Enforce);
        var pinned = sensor.PinDirectory is null ? "not pinned"
            : sensor.AdoptedLinks > 0 ? $"pinned in {sensor.PinDirectory}, adopted {sensor.AdoptedLinks} attached links"
            : $"pinned in {sensor.PinDirectory}";
        var scope = sensor.Enforcer == GuardEnforcer.Cgroup ? $"on cgroup {sensor.CgroupPath} " : "";
        var http = sensor.Enforcer == GuardEnforcer.Tc ? "; no HTTP audit (it needs the cgroup enforcer's connect hooks)" : "";
        return $"vigil: guarding {compiled.Rules.Count} rule{(compiled.Rules.Count == 1 ? "" : "s")} ({enforce} enforce, {compiled.Rules.Count - enforce} audit) " +
               $"over {compiled.Destinations.Count} destination prefixes {scope}" +
               $"with {sensor.HookNames} ({pinned}){http}; policy {policy.Source} generation {sensor.Generation}: {RuleList(compiled)}";
    }

    /// <summary>CLOCK_MONOTONIC in nanoseconds, the clock of bpf_ktime_get_ns (Stopwatch reads it on Linux).</summary>
    private static ulong MonotonicNs() => (ulong)(System.Diagnostics.Stopwatch.GetTimestamp() * (1_000_000_000.0 / System.Diagnostics.Stopwatch.Frequency));

    private static string StatsJson(ulong[] kernel, EventLoop loop, HttpStreams? http)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartObject("kernel");
            foreach (var stat in Enum.GetValues<GuardStat>().Where(s => s != GuardStat.Count))
                w.WriteNumber(JsonNamingPolicy.SnakeCaseLower.ConvertName(stat.ToString()), kernel[(int)stat]);
            w.WriteEndObject();
            w.WriteStartObject("user");
            w.WriteNumber("received", loop.Received);
            w.WriteNumber("decoded", loop.Decoded);
            w.WriteNumber("malformed", loop.Malformed);
            w.WriteNumber("written", loop.Written);
            w.WriteEndObject();
            if (http is not null)
            {
                w.WriteStartObject("http");
                w.WriteNumber("records", loop.HttpRecords);
                w.WriteNumber("malformed", loop.HttpMalformed);
                w.WriteNumber("requests", http.Requests);
                w.WriteNumber("not_http", http.NotHttp);
                w.WriteNumber("gaps", http.Gaps);
                w.WriteNumber("evicted", http.Evicted);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }
}

/// <summary>Names for guard events on this host: rule names from the policy text the kernel keeps with
/// each generation (so a reload by SIGHUP or `vigil policy apply` names its own rules), cgroup paths from
/// the cgroup2 mount, executables from /proc (checked against the event's inode, cached by inode).</summary>
public sealed class SystemGuardNames(GuardMaps maps, HostNames hostNames, CgroupPaths cgroups) : IGuardNames
{
    private readonly Dictionary<(uint Dev, ulong Inode), string> _exes = new();
    private readonly Dictionary<uint, IReadOnlyList<CompiledRule>> _rules = new();

    /// <summary>The generation of the decision being named.</summary>
    public uint Generation { get; set; }

    public string? RuleName(int rule)
    {
        if (!_rules.TryGetValue(Generation, out var rules))
        {
            // A generation not seen yet: read both slots' texts (once per generation).
            for (int slot = 0; slot < GuardConstants.Slots; slot++)
            {
                var (generation, text) = maps.ReadText(slot);
                if (AppliedPolicy.Parse(text) is { } applied) _rules[generation] = applied.Rules;
            }
            if (!_rules.TryGetValue(Generation, out rules)) _rules[Generation] = rules = [];
        }
        foreach (var r in rules) if (r.Id == rule) return r.Name;
        return null;
    }

    public string? CgroupPath(ulong cgroupId) => cgroups.Find(cgroupId);

    public string? UserName(uint uid) => hostNames.TryUserName(uid);

    public string CommText(in Comm16 comm) => hostNames.CommText(in comm);

    public string? ExecutablePath(in GuardDecision d)
    {
        if (d.ExeInode == 0) return null;
        if (_exes.TryGetValue((d.ExeDev, d.ExeInode), out var path)) return path;
        if (!d.TaskKnown) return null;
        var link = $"/proc/{d.Tgid}/exe";
        // The process may have exited or exec'd since: only a file with the event's inode counts.
        if (FileIdentity.Read(link, out _, $"/proc/{d.Tgid}/mountinfo") is not { } f || f.Inode != d.ExeInode || ((f.DevMajor << 20) | f.DevMinor) != d.ExeDev) return null;
        try { path = File.ResolveLinkTarget(link, returnFinalTarget: false)?.FullName; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
        if (path is null) return null;
        path = ProcessRootRelative(path, d);
        if (_exes.Count >= 4096) _exes.Clear();
        _exes[(d.ExeDev, d.ExeInode)] = path;
        return path;
    }

    /// <summary>The kernel prints /proc/PID/exe from the root of the process's mount namespace when the file
    /// is out of our reach: a process chrooted in another mount namespace (`ip netns exec` inside a chroot,
    /// as in the test VMs) shows "/chroot/usr/bin/x". /proc/PID/root is printed the same way, so without
    /// its prefix the path may name the same file in our view; the path is kept when it already does
    /// (a chroot in our namespace) or when neither does (a container: its own view is the one to show).</summary>
    private static string ProcessRootRelative(string path, in GuardDecision d)
    {
        if (SameFile(path, d)) return path;
        string? root;
        try { root = File.ResolveLinkTarget($"/proc/{d.Tgid}/root", returnFinalTarget: false)?.FullName; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return path; }
        if (root is null || root == "/" || !path.StartsWith(root + "/", StringComparison.Ordinal)) return path;
        var inOurs = path[root.Length..];
        return SameFile(inOurs, d) ? inOurs : path;
    }

    private static bool SameFile(string path, in GuardDecision d) =>
        FileIdentity.Read(path, out _) is { } f && f.Inode == d.ExeInode && ((f.DevMajor << 20) | f.DevMinor) == d.ExeDev;
}
