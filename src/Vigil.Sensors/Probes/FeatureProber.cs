using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Vigil.Interop;
using Vigil.Interop.Bpf;

namespace Vigil.Sensors.Probes;

public sealed record ProbeOptions
{
    /// <summary>Upper bound for one probe (load + attach + trigger + detach).</summary>
    public TimeSpan TimeoutPerProbe { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Hook types to probe; null = all.</summary>
    public IReadOnlyList<ProbeHook>? Hooks { get; init; }
}

/// <summary>Finds what this kernel can do by loading and attaching one minimal program per hook type
/// (bpf/probes.bpf.c) to a harmless target, triggering it where that is cheap, and detaching —
/// never from version tables. Every probe runs on its own thread, bounded in time, and removes
/// what it created (links, cgroups, private network namespaces) before it returns.</summary>
public static class FeatureProber
{
    public static readonly ProbeHook[] AllHooks = Enum.GetValues<ProbeHook>();

    [ThreadStatic] private static List<string>? t_libbpfLog;

    public static ProbeReport Run(ProbeOptions? options = null)
    {
        options ??= new ProbeOptions();
        var facts = ReadSystemFacts();
        var leftovers = new ConcurrentBag<string>();
        var results = new List<HookProbeResult>();
        var stragglers = new List<(ProbeHook Hook, Thread Thread)>();

        var previousLog = LibbpfRuntime.Log;
        if (facts.LibbpfVersion is not null)
            LibbpfRuntime.Log = (level, text) => { if (level == LibbpfLogLevel.Warning) t_libbpfLog?.Add(text); };
        try
        {
            foreach (var hook in options.Hooks ?? AllHooks)
            {
                if (facts.LibbpfVersion is null)
                {
                    results.Add(new HookProbeResult { Hook = hook, Status = ProbeStatus.NotProbed, Reason = facts.LibbpfProblem });
                    continue;
                }
                results.Add(RunBounded(hook, () => Probe(hook, facts, leftovers), options.TimeoutPerProbe, stragglers));
            }
            // A probe that overran its time still cleans up in its finally blocks: wait for that.
            foreach (var (hook, thread) in stragglers)
                if (!thread.Join(TimeSpan.FromSeconds(30)))
                    leftovers.Add($"{ProbeReport.NameOf(hook)} probe still running after its time limit; its cleanup has not finished");
        }
        finally
        {
            LibbpfRuntime.Log = previousLog;
        }

        var (auto, why) = ChooseTcpHook(results);
        return new ProbeReport
        {
            System = facts,
            Hooks = results,
            TcpAutoHook = auto,
            TcpAutoReason = why,
            Leftovers = leftovers.ToArray(),
        };
    }

    private static HookProbeResult RunBounded(ProbeHook hook, Func<HookProbeResult> probe, TimeSpan timeout,
        List<(ProbeHook, Thread)> stragglers)
    {
        HookProbeResult? result = null;
        var clock = Stopwatch.StartNew();
        var thread = new Thread(() =>
        {
            t_libbpfLog = [];
            try { result = probe(); }
            catch (Exception e)
            {
                result = new HookProbeResult
                {
                    Hook = hook, Status = ProbeStatus.Unavailable, FailedStage = "setup",
                    Reason = $"unexpected {e.GetType().Name}: {FirstLine(e.Message)}",
                };
            }
            result = result with { LibbpfLog = t_libbpfLog.TakeLast(4).ToArray(), Milliseconds = clock.Elapsed.TotalMilliseconds };
        }) { Name = $".doctor {ProbeReport.NameOf(hook)}", IsBackground = true };
        thread.Start();
        if (thread.Join(timeout)) return result!;
        stragglers.Add((hook, thread));
        return new HookProbeResult
        {
            Hook = hook, Status = ProbeStatus.Unavailable, FailedStage = "timeout",
            Reason = $"the probe did not finish within {timeout.TotalSeconds:0.#} s",
            Milliseconds = clock.Elapsed.TotalMilliseconds,
        };
    }

    private static HookProbeResult Probe(ProbeHook hook, SystemFacts facts, ConcurrentBag<string> leftovers)
    {
        string wrapper = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? "__arm64_sys_getpid" : ProbeNames.SyscallWrapper;
        return hook switch
        {
            ProbeHook.Kprobe => ProbeTracing(hook, facts,
                [(ProbeNames.Kprobe, wrapper), (ProbeNames.Kprobe, ProbeNames.SyscallBody)],
                (p, target) => p.AttachKprobe(target), TriggerGetpid, "getpid()"),
            ProbeHook.Fentry => ProbeTracing(hook, facts,
                [(ProbeNames.Fentry, ProbeNames.SyscallWrapper), (ProbeNames.FentryDoSys, ProbeNames.SyscallBody)],
                (p, _) => p.AttachTrace(), TriggerGetpid, "getpid()"),
            ProbeHook.TpBtf => ProbeTracing(hook, facts, [(ProbeNames.TpBtf, ProbeNames.Tracepoint)],
                (p, _) => p.Attach(), TriggerGetpid, "syscalls"),
            ProbeHook.RawTp => ProbeTracing(hook, facts, [(ProbeNames.RawTp, ProbeNames.Tracepoint)],
                (p, _) => p.Attach(), TriggerGetpid, "syscalls"),
            ProbeHook.Lsm => ProbeTracing(hook, facts, [(ProbeNames.Lsm, ProbeNames.LsmHook)],
                (p, _) => p.Attach(), TriggerFileOpen, "file opens"),
            ProbeHook.UprobeMulti => ProbeUprobeMulti(facts),
            ProbeHook.Tc => ProbeTc(hook, facts),
            ProbeHook.Tcx => ProbeTc(hook, facts),
            ProbeHook.CgroupSkb => ProbeCgroup(hook, facts, ProbeNames.CgroupSkb, "cgroup_skb ingress", leftovers),
            ProbeHook.CgroupSockAddr => ProbeCgroup(hook, facts, ProbeNames.Connect4, "cgroup connect4", leftovers),
            _ => throw new ArgumentOutOfRangeException(nameof(hook)),
        };
    }

    // ---- tracing hooks: kprobe, fentry, tp_btf, raw_tp, LSM ----

    private static HookProbeResult ProbeTracing(ProbeHook hook, SystemFacts facts,
        (string Program, string Target)[] candidates, Func<BpfProgram, string, IDisposable> attach,
        Action trigger, string triggerName)
    {
        var failures = new List<(string Target, string Reason)>();
        HookProbeResult? last = null;
        foreach (var (program, target) in candidates)
        {
            var attempt = new Attempt(hook, target, facts);
            try
            {
                using var obj = attempt.Load(program);
                attempt.Stage = "attach";
                ulong hits;
                using (attach(obj.Program(program), target))
                {
                    attempt.Stage = "trigger";
                    for (int i = 0; i < 3; i++) trigger();
                    hits = ReadHits(obj);
                }
                return attempt.Works(hits > 0,
                    hits > 0 ? $"attached; ran {hits}× on the doctor's own {triggerName}; detached"
                             : $"attached, but did not run on the doctor's own {triggerName} (another pid namespace?); detached");
            }
            catch (Exception e) when (e is BpfException or KeyNotFoundException or InvalidOperationException)
            {
                last = attempt.Failed(e);
                failures.Add((target, last.Reason!));
            }
        }
        return last! with
        {
            Target = string.Join(", ", candidates.Select(c => c.Target).Distinct()),
            Reason = JoinFailures(failures),
        };
    }

    /// <summary>"a: X; b: Y", or "a, b: X" when every candidate failed the same way.</summary>
    private static string JoinFailures(List<(string Target, string Reason)> failures) =>
        failures.Count > 1 && failures.All(f => f.Reason == failures[0].Reason)
            ? $"{string.Join(", ", failures.Select(f => f.Target))}: {failures[0].Reason}"
            : string.Join("; ", failures.Select(f => failures.Count > 1 ? $"{f.Target}: {f.Reason}" : f.Reason));

    // ---- uprobe_multi: raw BPF_LINK_CREATE on libc's getpid, for this process only ----

    private static HookProbeResult ProbeUprobeMulti(SystemFacts facts)
    {
        var attempt = new Attempt(ProbeHook.UprobeMulti, ProbeNames.LibcFunction, facts);
        try
        {
            attempt.Stage = "setup";
            var libc = ElfSymbols.LoadedLibrary("libc.so")
                ?? throw new KeyNotFoundException("no libc.so is mapped into this process (/proc/self/maps)");
            ulong offset = ElfSymbols.FileOffsetOf(libc, ProbeNames.LibcFunction);
            attempt.Target = $"{libc}:{ProbeNames.LibcFunction} (file offset 0x{offset:x}, this process only)";
            using var obj = attempt.Load(ProbeNames.UprobeMulti, o => UprobeMulti.PrepareForLoad(o, ProbeNames.UprobeMulti));
            attempt.Stage = "attach";
            ulong hits;
            using (UprobeMulti.Attach(obj.Program(ProbeNames.UprobeMulti), libc, [offset], Environment.ProcessId))
            {
                attempt.Stage = "trigger";
                for (int i = 0; i < 3; i++) ProbeTriggers.LibcGetpid();
                hits = ReadHits(obj);
            }
            return attempt.Works(hits > 0,
                hits > 0 ? $"attached (BPF_LINK_CREATE, BPF_TRACE_UPROBE_MULTI); ran {hits}× on 3 getpid() calls; detached"
                         : "attached (BPF_LINK_CREATE, BPF_TRACE_UPROBE_MULTI), but did not run on 3 getpid() calls; detached");
        }
        catch (Exception e) when (e is BpfException or KeyNotFoundException or InvalidDataException or IOException or InvalidOperationException)
        {
            return attempt.Failed(e);
        }
    }

    // ---- TC (netlink clsact) and TCX: only on a veth inside a private network namespace ----

    private static HookProbeResult ProbeTc(ProbeHook hook, SystemFacts facts)
    {
        var attempt = new Attempt(hook, "ingress of a veth in a private network namespace", facts);
        try
        {
            using var obj = attempt.Load(ProbeNames.Tc);
            var program = obj.Program(ProbeNames.Tc);
            attempt.Stage = "test_run";
            // 64 zero bytes: the program does not parse, it only has to run. -1 = TC_ACT_UNSPEC.
            var run = ProgramTestRun.Run(program, new byte[64]);
            string testRun = $"BPF_PROG_TEST_RUN returned {(int)run.ReturnValue}";

            attempt.Stage = "namespace";
            string kind;
            try
            {
                kind = PrivateNetworkNamespace.Run(() =>
                {
                    attempt.Stage = "setup";
                    // Unique names, though nothing else can see this namespace.
                    string name = $"vgd{Environment.ProcessId % 100000}a", peer = $"vgd{Environment.ProcessId % 100000}b";
                    int ifindex = Veth.Create(name, peer);
                    try
                    {
                        attempt.Stage = "attach";
                        using var attachment = hook == ProbeHook.Tcx
                            ? TcAttachment.AttachTcx(program, ifindex, TcDirection.Ingress)
                            : TcAttachment.AttachNetlink(program, ifindex, TcDirection.Ingress);
                        return attachment.Kind;
                    }
                    finally
                    {
                        Veth.Delete(name);
                    }
                }, ".doctor netns");
            }
            catch (BpfException e) when (attempt.Stage is "namespace" or "setup")
            {
                // Without CAP_SYS_ADMIN there is no private namespace (and without veth support no
                // interface in it); host interfaces are never used instead.
                return attempt.LoadedOnly(
                    $"not attached: {FirstLine(e.Message)}; loaded and ran with BPF_PROG_TEST_RUN instead (a weaker probe: attaching was not tried)",
                    testRun);
            }
            return attempt.Works(null, $"loaded; {testRun}; attached as {kind} to a veth in a private network namespace; detached; namespace removed");
        }
        catch (BpfException e)
        {
            return attempt.Failed(e);
        }
    }

    // ---- cgroup hooks: only on a new, empty child cgroup ----

    private static HookProbeResult ProbeCgroup(ProbeHook hook, SystemFacts facts, string program, string what,
        ConcurrentBag<string> leftovers)
    {
        var attempt = new Attempt(hook, "a new empty cgroup", facts);
        if (facts.CgroupV2Mount is null)
            return attempt.NotProbed("no cgroup v2 file system is mounted (see /proc/mounts)");
        var dir = Path.Combine(facts.CgroupV2Mount, $"vigil-doctor-{Environment.ProcessId}-{ProbeReport.NameOf(hook)}-{Guid.NewGuid().ToString("N")[..8]}");
        attempt.Target = $"a new empty cgroup under {facts.CgroupV2Mount}";
        try
        {
            using var obj = attempt.Load(program);
            attempt.Stage = "setup";
            try { Directory.CreateDirectory(dir); }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException)
            {
                // Never attach to a cgroup the doctor did not create: report what loading showed.
                string why = e is UnauthorizedAccessException
                    ? "was refused (EACCES: needs write access there, e.g. CAP_DAC_OVERRIDE)"
                    : $"failed ({e.Message})";
                return attempt.LoadedOnly(
                    $"not attached: creating a cgroup under {facts.CgroupV2Mount} {why}; loaded only (a weaker probe: attaching was not tried)",
                    TestRunEvidence(obj.Program(program)));
            }
            try
            {
                using var dirFd = FileDescriptor.OpenDirectory(dir, "probe cgroup");
                attempt.Stage = "attach";
                using (obj.Program(program).AttachCgroup(dirFd)) { }
                return attempt.Works(null, $"loaded; attached ({what}, BPF link) to the new empty cgroup {Path.GetFileName(dir)}; detached; cgroup removed");
            }
            finally
            {
                RemoveCgroup(dir, leftovers);
            }
        }
        catch (BpfException e)
        {
            return attempt.Failed(e);
        }
    }

    /// <summary>Runs the program once on 64 zero bytes where the program type allows BPF_PROG_TEST_RUN.</summary>
    private static string TestRunEvidence(BpfProgram program)
    {
        try
        {
            var run = ProgramTestRun.Run(program, new byte[64]);
            return $"loaded; BPF_PROG_TEST_RUN returned {(int)run.ReturnValue}";
        }
        catch (BpfException e)
        {
            return $"loaded; BPF_PROG_TEST_RUN not possible for this program type ({Errno.Name(e.Errno)})";
        }
    }

    private static void RemoveCgroup(string dir, ConcurrentBag<string> leftovers)
    {
        // rmdir of a cgroup can briefly report EBUSY while the kernel releases it: retry, bounded.
        for (int i = 0; i < 50; i++)
        {
            try
            {
                if (!Directory.Exists(dir)) return;
                Directory.Delete(dir);
                return;
            }
            catch (IOException) { Thread.Sleep(20); }
        }
        leftovers.Add($"cgroup {dir} could not be removed (rmdir it by hand)");
    }

    // ---- shared pieces ----

    private static void TriggerGetpid() => ProbeTriggers.LibcGetpid();

    private static void TriggerFileOpen() => File.OpenHandle("/proc/self/stat").Dispose();

    private static ulong ReadHits(BpfObject obj)
    {
        var bss = obj.Maps.First(m => m.Name.EndsWith(".bss", StringComparison.Ordinal));
        return bss.TryLookup(0u, out ulong hits) ? hits : 0;
    }

    /// <summary>Mirrors TcpInspectSensor's auto mode: the first of kprobe → fentry → tc → cgroup that works.
    /// A hook that loaded but could not be attached safely counts, with that caveat: the sensor itself
    /// attaches where the doctor may not (host interfaces, the root cgroup).</summary>
    private static (string? Hook, string Why) ChooseTcpHook(List<HookProbeResult> results)
    {
        HookProbeResult? Best(ProbeHook[] hooks) =>
            results.Where(r => hooks.Contains(r.Hook) && r.Works).FirstOrDefault()
            ?? results.Where(r => hooks.Contains(r.Hook) && r.Status == ProbeStatus.LoadedOnly).FirstOrDefault();
        var chain = new (string Name, ProbeHook[] Hooks)[]
        {
            ("kprobe", [ProbeHook.Kprobe]), ("fentry", [ProbeHook.Fentry]),
            ("tc", [ProbeHook.Tcx, ProbeHook.Tc]), ("cgroup", [ProbeHook.CgroupSkb]),
        };
        var skipped = new List<string>();
        foreach (var (name, hooks) in chain)
        {
            var best = Best(hooks);
            if (best is null)
            {
                skipped.Add(results.Any(r => hooks.Contains(r.Hook)) ? $"{name} unavailable" : $"{name} not probed");
                continue;
            }
            string why = (skipped.Count == 0 ? "" : string.Join(", ", skipped) + "; ")
                + (best.Works ? $"{name} works" : $"{name} loads, but attaching it was not probed");
            if (name == "tc")
            {
                var ifaces = NetworkNamespace.Interfaces().Where(i => i.Name != "lo").Select(i => i.Name).ToList();
                why += ifaces.Count > 0
                    ? $"; it attaches to the ingress of {string.Join(", ", ifaces)}"
                    : "; but this network namespace has no interface besides lo: name one with --iface or use --hook cgroup";
            }
            return (name, why);
        }
        return (null, $"no hook of the chain works ({string.Join(", ", skipped)})");
    }

    private static string FirstLine(string s) => s.Split('\n')[0];

    /// <summary>One probe attempt: remembers the stage it reached and turns failures into reasons.</summary>
    private sealed class Attempt(ProbeHook hook, string target, SystemFacts facts)
    {
        public string Stage { get; set; } = "open";
        public string Target { get; set; } = target;

        /// <summary>Opens a private copy of the probe object and loads exactly one program of it.</summary>
        public BpfObject Load(string program, Action<BpfObject>? beforeLoad = null)
        {
            Stage = "open";
            var obj = BpfObject.OpenMemory(EmbeddedObjects.Read(ProbeNames.Object), ProbeNames.Object);
            try
            {
                foreach (var p in obj.Programs) p.SetAutoload(p.Name == program);
                obj.Rodata.SetInitialValue((uint)Environment.ProcessId);
                beforeLoad?.Invoke(obj);
                Stage = "load";
                obj.Load();
                return obj;
            }
            catch
            {
                obj.Dispose();
                throw;
            }
        }

        public HookProbeResult Works(bool? fired, string evidence) => new()
        {
            Hook = hook, Status = ProbeStatus.Works, Target = Target, Fired = fired, Evidence = evidence,
        };

        public HookProbeResult LoadedOnly(string reason, string evidence) => new()
        {
            Hook = hook, Status = ProbeStatus.LoadedOnly, Target = Target, Reason = reason, Evidence = evidence, FailedStage = Stage,
        };

        public HookProbeResult NotProbed(string reason) => new()
        {
            Hook = hook, Status = ProbeStatus.NotProbed, Target = Target, Reason = reason, FailedStage = Stage,
        };

        public HookProbeResult Failed(Exception e)
        {
            if (e is not BpfException bpf)
                return new HookProbeResult
                {
                    Hook = hook, Status = ProbeStatus.Unavailable, Target = Target, FailedStage = Stage,
                    Reason = $"{Stage} failed: {FirstLine(e.Message)}",
                };
            var explanation = ProbeExplanations.Explain(hook, Stage, bpf, Target, facts);
            return new HookProbeResult
            {
                Hook = hook, Status = ProbeStatus.Unavailable, Target = Target, FailedStage = Stage,
                Errno = bpf.Errno, ErrnoName = Errno.Name(bpf.Errno),
                Reason = $"{Stage} failed: {Errno.Describe(bpf.Errno)}" + (explanation is null ? "" : $" — {explanation}"),
            };
        }
    }

    // ---- facts that are read, not probed ----

    public static SystemFacts ReadSystemFacts()
    {
        string? libbpfVersion = null, libbpfPath = null, libbpfProblem = null;
        try
        {
            var (major, minor) = LibbpfRuntime.EnsureLoaded();
            libbpfVersion = $"{major}.{minor}";
            libbpfPath = ElfSymbols.LoadedLibrary("libbpf.so");
        }
        catch (BpfException e) { libbpfProblem = FirstLine(e.Message); }

        var (lockdown, lockdownNote) = ReadLockdown();
        var caps = Capabilities.Current;
        return new SystemFacts
        {
            KernelRelease = ReadTrimmed("/proc/sys/kernel/osrelease") ?? Environment.OSVersion.Version.ToString(),
            KernelVersion = ReadTrimmed("/proc/sys/kernel/version") ?? "",
            Architecture = RuntimeInformation.OSArchitecture.ToString().ToLowerInvariant(),
            BtfPresent = File.Exists("/sys/kernel/btf/vmlinux"),
            CgroupV2Mount = Cgroups.FindV2Mount(),
            TracefsMount = MountOf("tracefs"),
            BpffsMount = BpfFs.FindMount(),
            Lockdown = lockdown,
            LockdownNote = lockdownNote,
            LibbpfVersion = libbpfVersion,
            LibbpfPath = libbpfPath,
            LibbpfProblem = libbpfProblem,
            EffectiveCapabilities = caps.Effective,
            CapabilitiesHeld = caps.Names().ToArray(),
            CapabilitiesMissing = MissingForWatch(caps),
        };
    }

    /// <summary>What <c>vigil watch</c> needs: CAP_BPF (load), CAP_PERFMON (tracing programs),
    /// CAP_NET_ADMIN (TC). CAP_SYS_ADMIN stands in for the first two on kernels before 5.8.</summary>
    private static string[] MissingForWatch(Capabilities caps)
    {
        var missing = new List<string>();
        if (!caps.Has(Capabilities.CAP_BPF) && !caps.Has(Capabilities.CAP_SYS_ADMIN)) missing.Add("CAP_BPF");
        if (!caps.Has(Capabilities.CAP_PERFMON) && !caps.Has(Capabilities.CAP_SYS_ADMIN)) missing.Add("CAP_PERFMON");
        if (!caps.Has(Capabilities.CAP_NET_ADMIN)) missing.Add("CAP_NET_ADMIN");
        return missing.ToArray();
    }

    private static (string? Mode, string? Note) ReadLockdown()
    {
        const string path = "/sys/kernel/security/lockdown";
        try
        {
            // "none [integrity] confidentiality": the active mode is bracketed.
            var text = File.ReadAllText(path);
            int open = text.IndexOf('['), close = text.IndexOf(']');
            return open >= 0 && close > open ? (text[(open + 1)..close], null) : (null, $"{path} has no bracketed mode: '{text.Trim()}'");
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return (null, MountOf("securityfs") is null
                ? "securityfs is not mounted (mount -t securityfs securityfs /sys/kernel/security would show it)"
                : $"{path} does not exist (the lockdown LSM is not built in)");
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            return (null, $"{path} is not readable ({e.Message})");
        }
    }

    internal static string? MountOf(string fsType)
    {
        foreach (var line in File.ReadLines("/proc/mounts"))
        {
            var f = line.Split(' ');
            if (f.Length > 2 && f[2] == fsType) return f[1];
        }
        return null;
    }

    private static string? ReadTrimmed(string path)
    {
        try { return File.ReadAllText(path).Trim(); }
        catch (IOException) { return null; }
    }
}
